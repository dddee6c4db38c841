"""Errors of the runtime: each message is one line that says what and where."""

from foglayer.errors import FogError


class ModuleError(FogError):
    """The module cannot be read, is not valid Wasm, or is not a WASI module we can run."""


class Trapped(FogError):
    """The guest trapped. ``backtrace`` holds the Wasm frames, innermost first."""

    def __init__(self, message: str, backtrace: list[str] | None = None, *,
                 remedy: str | None = None) -> None:
        super().__init__(message, remedy=remedy)
        self.backtrace = backtrace or []


# The Limits field that each limit comes from: what a user raises to get past it.
_LIMIT_FIELD = {"memory": "max_memory", "fuel": "fuel", "timeout": "timeout"}


class LimitExceeded(Trapped):
    """The guest ran past a limit: ``limit`` is ``memory``, ``fuel`` or ``timeout``; ``value``
    the cap it hit (bytes, instructions, seconds) when known. ``remedy`` is the
    :class:`Limits` field to raise."""

    def __init__(self, limit: str, message: str, backtrace: list[str] | None = None,
                 value: float | None = None) -> None:
        super().__init__(message, backtrace, remedy=_LIMIT_FIELD.get(limit))
        self.limit = limit
        self.value = value


class Stopped(Trapped):
    """The instance was stopped while it ran: ``reason`` is ``stopped`` (``fog stop``, a
    node shutting down) or ``interrupted`` (Ctrl-C)."""

    def __init__(self, reason: str, message: str, backtrace: list[str] | None = None) -> None:
        super().__init__(message, backtrace)
        self.reason = reason
