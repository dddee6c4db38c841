"""The AOT cache: compiled machine code on disk, authenticated before it is run.

An entry is ``MAGIC | tag | artifact``, where ``tag`` is HMAC-SHA256 under a per-user secret
over the module's digest, the engine settings' key and the artifact. An entry therefore
cannot be forged without the secret, nor moved to another module's or settings' name: it is
refused and rebuilt. The cache directory is the user's own (refused otherwise) and 0700; the
secret is a 0600 file in it, created with ``O_EXCL``; entries are written through ``O_EXCL``
temp files in the same directory and renamed into place, and read with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

from foglayer.errors import FogError

MAGIC = b"FOGAOT02"
_TAG = 32
_KEY = "key"
_KEY_BYTES = 32


class CacheError(FogError):
    """The AOT cache directory cannot be trusted (another user's, or not a directory)."""


def _check_dir(path: Path) -> None:
    try:
        st = os.lstat(path)
    except OSError as e:
        raise CacheError(f"{path}: cannot use the AOT cache: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise CacheError(f"{path}: the AOT cache is not a directory: refusing to use it")
    if st.st_uid != os.getuid():
        raise CacheError(f"{path}: the AOT cache belongs to uid {st.st_uid}, not to you "
                         f"(uid {os.getuid()}): refusing to use it")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def root() -> Path:
    """The cache directory, checked: the user's own, mode 0700."""
    from foglayer._dirs import cache_dir

    path = cache_dir("aot")
    _check_dir(path)
    return path


def _open_private(path: Path) -> int | None:
    """``path`` opened for reading if it is our own regular file (no symlink), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        os.close(fd)
        return None
    return fd


def _read_all(fd: int) -> bytearray:
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        buf = bytearray(size)
        n = f.readinto(buf)
        return buf if n == size else buf[:n]


def _secret(directory: Path) -> bytes:
    path = directory / _KEY
    for _ in range(3):
        fd = _open_private(path)
        if fd is not None:
            key = _read_all(fd)
            if len(key) == _KEY_BYTES:
                return bytes(key)
        # Missing, or not trustworthy (loose mode, a symlink, wrong size): make a new one.
        # Every entry tagged with the old secret is then refused and rebuilt.
        if fd is not None or os.path.lexists(path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        tmp = _write_temp(directory, os.urandom(_KEY_BYTES))
        try:
            os.link(tmp, path)  # atomic and O_EXCL-like: a concurrent creator wins once
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    raise CacheError(f"{path}: cannot create the AOT cache's secret")


def _write_temp(directory: Path, data: bytes) -> str:
    """A new 0600 file (``O_EXCL``, random name) in ``directory`` holding ``data``."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _tag(key: bytes, digest: str, settings_key: str, artifact: bytes | memoryview) -> bytes:
    mac = hmac.new(key, MAGIC + f"{digest}|{settings_key}|".encode(), hashlib.sha256)
    mac.update(artifact)
    return mac.digest()


def entry_path(directory: Path, digest: str, settings_key: str, suffix: str = ".cwasm") -> Path:
    return directory / f"{digest}-{settings_key}{suffix}"


def load(digest: str, settings_key: str, suffix: str = ".cwasm") -> memoryview | None:
    """The artifact cached for this module and these settings, if present and authentic
    (a bad entry is deleted: the caller compiles and stores a new one)."""
    directory = root()
    path = entry_path(directory, digest, settings_key, suffix)
    fd = _open_private(path)
    if fd is None:
        return None
    blob = _read_all(fd)
    head = len(MAGIC) + _TAG
    artifact = memoryview(blob)[head:]
    if blob[:len(MAGIC)] != MAGIC or not hmac.compare_digest(
            blob[len(MAGIC):head], _tag(_secret(directory), digest, settings_key, artifact)):
        path.unlink(missing_ok=True)
        return None
    return artifact


def store(digest: str, settings_key: str, artifact: bytes | bytearray,
          suffix: str = ".cwasm") -> Path:
    """Cache ``artifact`` (through an ``O_EXCL`` temp file and a rename); its path."""
    directory = root()
    tag = _tag(_secret(directory), digest, settings_key, artifact)
    path = entry_path(directory, digest, settings_key, suffix)
    tmp = _write_temp(directory, MAGIC + tag + bytes(artifact))
    os.replace(tmp, path)
    return path


def drop(digest: str, settings_key: str) -> None:
    """Forget an entry the engine refused (made by another engine build)."""
    entry_path(root(), digest, settings_key).unlink(missing_ok=True)
