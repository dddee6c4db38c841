"""Errors of the runtime: each message is one line that says what and where."""

from foglayer.errors import FogError


class ModuleError(FogError):
    """The module cannot be read, is not valid Wasm, or is not a WASI module we can run."""


class Trapped(FogError):
    """The guest trapped. ``backtrace`` holds the Wasm frames, innermost first."""

    def __init__(self, message: str, backtrace: list[str] | None = None) -> None:
        super().__init__(message)
        self.backtrace = backtrace or []


class LimitExceeded(Trapped):
    """The guest ran past a limit: ``limit`` is ``memory``, ``fuel`` or ``timeout``."""

    def __init__(self, limit: str, message: str, backtrace: list[str] | None = None) -> None:
        super().__init__(message, backtrace)
        self.limit = limit
