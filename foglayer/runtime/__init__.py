"""The runtime: the only door to the engine (wasmtime). Engine settings, the AOT cache,
instances, limits and accounting, stopping a running guest, and the service ABI.

Public API:

- :func:`load_module` – compile (or fetch from the AOT cache) a module: a :class:`LoadedModule`;
  :func:`compile_ahead`, :func:`cache_path`.
- :class:`EngineSettings` – what changes machine code (fuel, epochs, opt level, SIMD);
  :func:`settings_for` chooses them from :class:`Limits` (the one place that does).
- :class:`Instance` – a module instantiated with our WASI: ``run()``, ``call()``,
  ``function(name)`` (a :class:`Function` for fast repeated calls), ``stats``; for
  snapshots: ``globals()`` (:class:`Global`), ``memory_pages()``, ``grow_memory()``,
  ``memory_view()``.
- :class:`Control` – when a running instance must stop: ``stop()``, a per-call deadline, a
  duty cycle; :func:`calibrate` (instructions per second, for a duty cycle from a fuel rate).
- :func:`run` – run a command module to completion, the Python form of ``fog run``.
- :class:`Service`, :class:`ServiceError`, :func:`check_function` – the service ABI
  (docs/service-abi.md).
- :func:`required_features` – the Wasm features a module uses beyond
  :data:`WASM_BASELINE`, among :data:`WASM_FEATURES`.
- :data:`NATIVE_CALLS` – the hot WASI calls in C, a :class:`foglayer.toolchain.NativeLibrary`
  (``.path(target, builds)`` readies it for another machine's cache: the arm64 root's);
  :func:`wasi_path` – the WASI path instances of this process take: "native" or "python".
- :class:`HostFunction` – an extra import (fast path); ``Instance.binding.gate`` can
  hold any WASI call back (checkpoints unwind there).
- :class:`Limits`, :class:`Stats`, :class:`RunResult`, :func:`parse_size`, :func:`format_size`.
- :class:`ModuleError`, :class:`Trapped`, :class:`LimitExceeded`, :class:`Stopped`.

Names are loaded on first use, so ``from foglayer.runtime import Limits`` does not import
the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "Binding": "_bind", "HostFunction": "_bind",
    "Control": "_control", "calibrate": "_control",
    "EngineSettings": "_engine", "LoadedModule": "_engine", "cache_path": "_engine",
    "compile_ahead": "_engine", "load_module": "_engine", "settings_for": "_engine",
    "LimitExceeded": "_errors", "ModuleError": "_errors", "Stopped": "_errors",
    "Trapped": "_errors",
    "WASM_BASELINE": ("_features", "BASELINE"), "WASM_FEATURES": ("_features", "FEATURES"),
    "required_features": "_features",
    "Function": "_instance", "Global": "_instance", "Instance": "_instance",
    "RunResult": "_instance", "run": "_instance",
    "Limits": "_limits", "Stats": "_limits", "format_size": "_limits", "parse_size": "_limits",
    "NATIVE_CALLS": ("_native", "LIBRARY"), "wasi_path": ("_native", "wasi_path"),
    "Service": "_service", "ServiceError": "_service", "check_function": "_service",
}

__all__ = [
    "Binding", "Control", "EngineSettings", "Function", "Global", "HostFunction", "Instance",
    "LimitExceeded", "Limits", "LoadedModule", "ModuleError", "NATIVE_CALLS", "RunResult",
    "Service", "ServiceError", "Stats", "Stopped", "Trapped", "WASM_BASELINE", "WASM_FEATURES",
    "cache_path", "calibrate", "check_function", "compile_ahead", "format_size", "load_module",
    "parse_size", "required_features", "run", "settings_for", "wasi_path",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'foglayer.runtime' has no attribute {name!r}")
    module, attr = where if isinstance(where, tuple) else (where, name)
    value = getattr(importlib.import_module(f"foglayer.runtime.{module}"), attr)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from foglayer.runtime._bind import Binding, HostFunction
    from foglayer.runtime._control import Control, calibrate
    from foglayer.runtime._engine import (
        EngineSettings,
        LoadedModule,
        cache_path,
        compile_ahead,
        load_module,
        settings_for,
    )
    from foglayer.runtime._errors import LimitExceeded, ModuleError, Stopped, Trapped
    from foglayer.runtime._features import BASELINE as WASM_BASELINE
    from foglayer.runtime._features import FEATURES as WASM_FEATURES
    from foglayer.runtime._features import required_features
    from foglayer.runtime._instance import Function, Global, Instance, RunResult, run
    from foglayer.runtime._limits import Limits, Stats, format_size, parse_size
    from foglayer.runtime._native import LIBRARY as NATIVE_CALLS
    from foglayer.runtime._native import wasi_path
    from foglayer.runtime._service import Service, ServiceError, check_function
