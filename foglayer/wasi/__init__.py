"""Our WASI preview 1 (``wasi_snapshot_preview1``), with a state that is plain data.

Public API:

- :class:`Wasi` – the host side of one instance: ``Wasi.create(...)``, ``Wasi.restore(state)``,
  one method per WASI function (raw ints in, errno out), ``host_functions()`` (the callables
  to bind: they never raise but ``ProcExit`` and ``Interrupted``), ``close()``.
- :class:`WasiState`, :class:`Descriptor`, :class:`Preopen` – the serializable state.
- :class:`SavedWasi`, :func:`save_state`, :func:`check_saved`, :func:`restore_saved`,
  :func:`adopt` (into a Wasi an instance is already bound to) – the
  state as a snapshot stores it (descriptors by preopen + relative path) and its sandboxed,
  untrusted way back in (:class:`SavedStateError`).
- :class:`GuestMemory` – the only thing WASI needs from an engine: a base address and a size.
- :data:`CALLS` (the call table: :class:`Call`), :data:`SIGNATURES`, :data:`HOT`,
  :data:`MODULE` – the imports the runtime binds.
- :class:`Errno`, :class:`Rights`, :class:`Filetype` and the module :mod:`foglayer.wasi.abi`
  – the ABI's types and constants.
- :class:`ProcExit`, :class:`WasiError` – how a call leaves early; :class:`PreopenError` –
  preopens that cannot be granted as given (``Wasi.create``); :data:`DEFAULT_MAX_FDS` – the
  default cap on a guest's open descriptors (``Wasi.max_fds``, ``create(max_fds=)``).
- :class:`Interrupt` – what a blocking call also waits on (``Wasi.interrupt``, set by the
  runtime: a stop descriptor and the deadline); :class:`Interrupted` – raised when it fires.
"""

from foglayer.wasi import abi
from foglayer.wasi._calls import CALL, CALLS, HOT, MODULE, SIGNATURES, Call
from foglayer.wasi._core import DEFAULT_MAX_FDS, PreopenError, ProcExit
from foglayer.wasi._memdir import MemoryDirs
from foglayer.wasi._memory import GuestMemory, Interrupt, Interrupted
from foglayer.wasi._paths import WasiError
from foglayer.wasi._state import Descriptor, Preopen, WasiState
from foglayer.wasi._wasi import Wasi
from foglayer.wasi.abi import Errno, Filetype, Rights

__all__ = [
    "CALL", "CALLS", "Call", "DEFAULT_MAX_FDS", "Descriptor", "Errno", "Filetype", "GuestMemory", "HOT",
    "Interrupt", "Interrupted", "MODULE", "MemoryDirs", "Preopen", "PreopenError", "ProcExit", "Rights",
    "SIGNATURES", "SavedFd", "SavedPreopen", "SavedStateError", "SavedWasi", "Wasi",
    "WasiError", "WasiState", "abi", "adopt", "check_saved", "restore_saved", "save_state",
]

_SAVED = {"SavedFd", "SavedPreopen", "SavedStateError", "SavedWasi", "adopt", "check_saved",
          "restore_saved", "save_state"}


def __getattr__(name: str) -> object:
    # Loaded on first use: msgspec costs tens of ms, and a plain ``fog run`` never saves.
    if name in _SAVED:
        from foglayer.wasi import _saved

        return getattr(_saved, name)
    raise AttributeError(f"module 'foglayer.wasi' has no attribute {name!r}")
