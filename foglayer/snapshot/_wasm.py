"""The rewrite's view of the Wasm binary reader, :mod:`foglayer.wasm` (one reader for the whole
project): the same functions, with a malformed module reported as a :class:`RewriteError`."""

from __future__ import annotations

import functools

from foglayer import wasm as _reader
from foglayer.snapshot._errors import RewriteError
from foglayer.wasm import KIND_FUNC, KIND_GLOBAL, MAGIC, SEC_CUSTOM, SEC_EXPORT, enc_u  # noqa: F401


def _as_rewrite_error(fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _reader.WasmFormatError as e:
            raise RewriteError(str(e)) from None

    return call


leb_u = _as_rewrite_error(_reader.leb_u)
sections = _as_rewrite_error(_reader.sections)
imports = _as_rewrite_error(_reader.imports)
global_count = _as_rewrite_error(_reader.global_count)
export_names = _as_rewrite_error(_reader.export_names)
add_global_exports = _as_rewrite_error(_reader.add_global_exports)
strip_custom = _as_rewrite_error(_reader.strip_custom)
custom_name = _as_rewrite_error(_reader.custom_name)
