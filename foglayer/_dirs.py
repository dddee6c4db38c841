"""Where foglayer keeps its caches and data (platformdirs, overridable by env)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The user cache directory, or ``$FOG_CACHE_DIR`` when set."""
    base = os.environ.get("FOG_CACHE_DIR")
    if base:
        root = Path(base)
    else:
        # Imported lazily: keeps platformdirs off the `fog run` start path.
        import platformdirs

        root = Path(platformdirs.user_cache_dir("foglayer"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(*parts: str) -> Path:
    """The user data directory, or ``$FOG_DATA_DIR`` when set."""
    base = os.environ.get("FOG_DATA_DIR")
    if base:
        root = Path(base)
    else:
        import platformdirs

        root = Path(platformdirs.user_data_dir("foglayer"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
