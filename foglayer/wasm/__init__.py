"""The one reader (and small writer) of the WebAssembly binary format, below everything else
(it imports nothing of foglayer but its errors): the manifest's checks, the checkpointable
rewrite and the import checks all read modules through it.

- :func:`sections`, :func:`imports`, :func:`initial_memory`, :func:`global_count`,
  :func:`export_names`, :func:`custom_name` – reading;
- :func:`add_global_exports`, :func:`strip_custom` – rewriting;
- :func:`leb_u`, :func:`enc_u` – LEB128; :class:`WasmFormatError` – a malformed module.
"""

from foglayer.wasm._binary import (
    KIND_FUNC,
    KIND_GLOBAL,
    KIND_MEMORY,
    KIND_TABLE,
    KIND_TAG,
    MAGIC,
    PAGE,
    SEC_CUSTOM,
    SEC_EXPORT,
    SEC_GLOBAL,
    SEC_IMPORT,
    SEC_MEMORY,
    WasmFormatError,
    add_global_exports,
    custom_name,
    enc_u,
    export_names,
    global_count,
    imports,
    initial_memory,
    leb_u,
    sections,
    strip_custom,
)

__all__ = [
    "KIND_FUNC", "KIND_GLOBAL", "KIND_MEMORY", "KIND_TABLE", "KIND_TAG", "MAGIC", "PAGE",
    "SEC_CUSTOM", "SEC_EXPORT", "SEC_GLOBAL", "SEC_IMPORT", "SEC_MEMORY", "WasmFormatError",
    "add_global_exports", "custom_name", "enc_u", "export_names", "global_count", "imports",
    "initial_memory", "leb_u", "sections", "strip_custom",
]
