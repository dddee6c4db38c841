"""The root of every error a user can cause. The CLI prints these as one line."""


class FogError(Exception):
    """A user-facing error: its message is one line that says what and where."""
