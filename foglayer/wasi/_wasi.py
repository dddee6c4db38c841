"""``Wasi``: the WASI preview 1 host of one instance, all 46 calls, by family.

The calls live in mixins over ``WasiCore`` (the descriptor table and helpers):
``_fd`` (fd_*), ``_path`` (path_*), ``_poll`` (poll_oneoff), ``_sock`` (sock_*) and
``_proc`` (args, environment, clocks, random, sched_yield, proc_*). ``_calls.CALLS`` is
the table of them all, as data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from foglayer.wasi._calls import CALLS
from foglayer.wasi._core import WasiCore
from foglayer.wasi._fd import FdCalls
from foglayer.wasi._memdir import MemoryDirs
from foglayer.wasi._path import PathCalls
from foglayer.wasi._paths import WasiError
from foglayer.wasi._poll import PollCalls
from foglayer.wasi._proc import ProcCalls
from foglayer.wasi._sock import SockCalls
from foglayer.wasi._state import WasiState
from foglayer.wasi.abi import E, from_oserror


class Wasi(FdCalls, PathCalls, PollCalls, SockCalls, ProcCalls, WasiCore):
    """The WASI host of one instance. ``state`` is its whole, serializable state."""

    @classmethod
    def restore(cls, state: WasiState, stdio: Sequence[int] = (0, 1, 2),
                memory_dirs: MemoryDirs | None = None) -> Wasi:
        """Re-open every descriptor of a state (at its recorded offset) inside its preopen:
        the state's preopens are the directories granted (``WasiState.remap`` moves them).
        The state is untrusted: it goes the snapshot's way (:func:`restore_saved`), by
        preopen and relative path through ``path_open``'s walk, so a descriptor outside its
        preopen is refused (``SavedStateError``), never opened at the host path it names.
        Files of memory directories come from ``memory_dirs`` (a state never holds them)."""
        from foglayer.wasi._saved import restore_saved, save_state

        return restore_saved(save_state(state), [p.host for p in state.preopens], stdio,
                             memory_dirs)

    def host_functions(self) -> dict[str, Callable[..., int]]:
        """The callables to bind, one per call of ``CALLS``: raw ints in, an errno out.

        None of them lets a ``WasiError``, ``OSError`` or ``OverflowError`` out: hot calls
        return their errno themselves, the others go through a guard that maps those to
        the errno. Only ``ProcExit`` (from ``proc_exit``) leaves, to end the run.
        """
        return {c.name: getattr(self, c.name) if c.hot else _guarded(getattr(self, c.name))
                for c in CALLS}


def _guarded(impl: Callable[..., int]) -> Callable[..., int]:
    def call(*args: int) -> int:
        try:
            return impl(*args)
        except WasiError as e:
            return e.errno
        except OSError as e:
            return from_oserror(e)
        except OverflowError:  # an argument the host cannot represent (e.g. an offset >= 2^63)
            return E.INVAL

    call.__name__ = call.__qualname__ = impl.__name__
    call.__wrapped__ = impl  # type: ignore[attr-defined]
    return call
