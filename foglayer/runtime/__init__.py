"""The runtime: engine settings, the AOT cache, instances, limits and accounting.

Public API:

- :func:`load_module` – compile (or fetch from the AOT cache) a module: a :class:`LoadedModule`.
- :class:`EngineSettings` – what changes machine code (fuel, epochs, opt level, SIMD).
- :class:`Instance` – a module instantiated with our WASI: ``run()``, ``call()``,
  ``function(name)`` (a :class:`Function` for fast repeated calls), ``stats``.
- :func:`run` – run a command module to completion, the Python form of ``fog run``.
- :class:`HostFunction` – an extra import (fast path); ``Instance.binding.gate`` can
  hold any WASI call back (checkpoints unwind there).
- :class:`Limits`, :class:`Stats`, :class:`RunResult`, :func:`parse_size`.
- :class:`ModuleError`, :class:`Trapped`, :class:`LimitExceeded`.
"""

from foglayer.runtime._bind import Binding, HostFunction
from foglayer.runtime._engine import (
    EngineSettings,
    LoadedModule,
    cache_path,
    compile_ahead,
    load_module,
)
from foglayer.runtime._errors import LimitExceeded, ModuleError, Trapped
from foglayer.runtime._instance import Function, Instance, RunResult, run
from foglayer.runtime._limits import Limits, Stats, format_size, parse_size

__all__ = [
    "Binding", "EngineSettings", "Function", "HostFunction", "Instance", "LimitExceeded", "Limits", "LoadedModule", "ModuleError",
    "RunResult", "Stats", "Trapped", "cache_path", "compile_ahead", "format_size", "load_module", "parse_size",
    "run",
]
