"""Errors of checkpoint and restore: each message is one line that says what and where."""

from foglayer.errors import FogError


class SnapshotError(FogError):
    """A snapshot cannot be read, is corrupted, or does not fit what it is restored into."""


class RewriteError(FogError):
    """The module cannot be made checkpointable (or a rewriting tool is missing)."""


class FilesChanged(SnapshotError):
    """A file the snapshot had open differs from the one on disk now."""
