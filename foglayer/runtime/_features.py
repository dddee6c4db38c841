"""Which Wasm features a module uses, found by validating it with each feature turned off."""

from __future__ import annotations

import functools

import wasmtime

from foglayer.runtime._errors import ModuleError

# Features a module may need beyond the baseline every node has, and what each implies.
FEATURES: dict[str, tuple[str, ...]] = {
    "simd": ("relaxed_simd",), "relaxed_simd": (), "threads": (), "tail_call": (),
    "multi_memory": (), "memory64": (), "exceptions": (), "gc": (),
    "function_references": ("gc",), "wide_arithmetic": (),
}
BASELINE = ("bulk_memory", "multi_value", "mutable_globals", "nontrapping_fptoint",
            "reference_types", "sign_ext")


@functools.cache
def _engine_without(feature: str) -> wasmtime.Engine:
    cfg = wasmtime.Config()
    for f in (feature, *FEATURES[feature]):
        setattr(cfg, f"wasm_{f}", False)
    return wasmtime.Engine(cfg)


@functools.cache
def _engine_all() -> wasmtime.Engine:
    cfg = wasmtime.Config()
    for f in FEATURES:
        setattr(cfg, f"wasm_{f}", True)
    return wasmtime.Engine(cfg)


def required_features(wasm: bytes, where: str = "module") -> list[str]:
    """The features of :data:`FEATURES` that ``wasm`` uses; :class:`ModuleError` if invalid."""
    try:
        wasmtime.Module.validate(_engine_all(), wasm)
    except wasmtime.WasmtimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid"
        raise ModuleError(f"{where}: invalid WebAssembly module: {first}") from None
    out = []
    for f in FEATURES:
        try:
            wasmtime.Module.validate(_engine_without(f), wasm)
        except wasmtime.WasmtimeError:
            out.append(f)
    return out
