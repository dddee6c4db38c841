"""Where foglayer keeps its caches and data (platformdirs, overridable by env)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _user_dir(kind: str) -> Path:
    # On Linux, the XDG rule platformdirs applies, without importing it on the start path.
    if sys.platform.startswith("linux"):
        env, default = {"cache": ("XDG_CACHE_HOME", ".cache"),
                        "data": ("XDG_DATA_HOME", ".local/share")}[kind]
        return Path(os.environ.get(env) or Path.home() / default) / "foglayer"
    import platformdirs

    fn = platformdirs.user_cache_dir if kind == "cache" else platformdirs.user_data_dir
    return Path(fn("foglayer"))


def _dir(kind: str, env: str, parts: tuple[str, ...]) -> Path:
    base = os.environ.get(env)
    path = (Path(base) if base else _user_dir(kind)).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(*parts: str) -> Path:
    """The user cache directory, or ``$FOG_CACHE_DIR`` when set."""
    return _dir("cache", "FOG_CACHE_DIR", parts)


def data_dir(*parts: str) -> Path:
    """The user data directory, or ``$FOG_DATA_DIR`` when set."""
    return _dir("data", "FOG_DATA_DIR", parts)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename: never half-written.

    The temp file is created with ``O_EXCL`` and a random name in ``path``'s own directory
    (``mkstemp``), so a planted file or symlink can never be written through.
    """
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode != 0o600:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
