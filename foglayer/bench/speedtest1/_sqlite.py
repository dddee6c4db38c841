"""The pinned SQLite amalgamation: ``sqlite3.c``/``sqlite3.h`` from the npm package better-sqlite3.

npm is the one registry here that carries the amalgamation, so :func:`amalgamation_dir` runs
``npm pack better-sqlite3@VERSION``, takes ``package/deps/sqlite3/sqlite3.{c,h}`` out of the
tarball, checks both against the SHA-256 values below and caches them per version.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from foglayer._dirs import atomic_write, cache_dir
from foglayer.errors import FogError

PACKAGE = "better-sqlite3"
VERSION = "13.2.0"  # ships SQLite 3.54.1
SHA256 = {
    "sqlite3.c": "75a4760a7b9727a4c4c877aec92eacf39e52a8f2921ce00bd33be6d3a8e8e254",
    "sqlite3.h": "d6c84557261893439b341d2e6c35187ae3ea24fbfd843ad94616f72d89242b8c",
}
_MEMBER = "package/deps/sqlite3/"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verified(d: Path) -> bool:
    return all((d / n).is_file() and _sha256((d / n).read_bytes()) == h for n, h in SHA256.items())


def _npm_pack(dest: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise FogError(f"npm not found: it is needed once to fetch SQLite ({PACKAGE}@{VERSION})")
    spec = f"{PACKAGE}@{VERSION}"
    proc = subprocess.run(
        [npm, "pack", spec, "--json", "--pack-destination", str(dest)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        err = next((ln for ln in proc.stderr.splitlines() if "ERR" in ln), proc.stderr.strip())
        raise FogError(f"npm pack {spec} failed: {err[:200]}")
    try:
        return dest / json.loads(proc.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError) as e:
        raise FogError(f"npm pack {spec}: unexpected output") from e


@functools.cache
def amalgamation_dir() -> Path:
    """A directory holding the verified ``sqlite3.c`` and ``sqlite3.h``; fetched on first use."""
    d = cache_dir("sqlite", VERSION)
    if _verified(d):
        return d
    with tempfile.TemporaryDirectory(prefix="fog-sqlite-") as tmp:
        tgz = _npm_pack(Path(tmp))
        files = {}
        with tarfile.open(tgz, "r:gz") as tar:
            for name, want in SHA256.items():
                try:
                    f = tar.extractfile(_MEMBER + name)
                except KeyError:
                    f = None
                if f is None:
                    raise FogError(f"{PACKAGE}@{VERSION}: no {_MEMBER}{name} in the package")
                data = f.read()
                if _sha256(data) != want:
                    raise FogError(f"{PACKAGE}@{VERSION}: SHA-256 mismatch for {name}: got {_sha256(data)}")
                files[name] = data
    for name, data in files.items():
        atomic_write(d / name, data)
    return d


def sqlite_version() -> str:
    """The SQLite version of the amalgamation, e.g. ``"3.54.1"`` (``SQLITE_VERSION`` in sqlite3.h)."""
    text = (amalgamation_dir() / "sqlite3.h").read_text(encoding="utf-8", errors="replace")
    m = re.search(r'^#define SQLITE_VERSION\s+"([^"]+)"', text, re.M)
    if m is None:
        raise FogError("sqlite3.h: no SQLITE_VERSION")
    return m.group(1)
