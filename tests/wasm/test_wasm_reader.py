"""The one Wasm binary reader (foglayer.wasm): what the manifest reads, and malformed bytes as
one-line errors, never an IndexError."""

from __future__ import annotations

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from foglayer.wasm import WasmFormatError, imports, initial_memory, sections

MODULE = bytes(wasmtime.wat2wasm(
    '(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))'
    ' (import "env" "memory" (memory 3)) (func (export "_start")))'))


def test_the_reader_sees_imports_and_the_initial_memory():
    assert imports(MODULE) == [("wasi_snapshot_preview1", "fd_write", 0), ("env", "memory", 2)]
    assert initial_memory(MODULE) == 3 * 65536


@settings(max_examples=300, deadline=None)
@given(cut=st.integers(0, len(MODULE)), flip=st.integers(0, len(MODULE) - 1),
       byte=st.integers(0, 255))
def test_malformed_modules_are_one_line_errors(cut, flip, byte):
    bad = bytearray(MODULE[:cut] if cut < len(MODULE) else MODULE)
    if flip < len(bad):
        bad[flip] = byte
    for read in (sections, imports, initial_memory):
        try:
            read(bytes(bad))
        except WasmFormatError as e:
            assert "\n" not in str(e)


def test_a_section_running_past_the_end_is_named():
    with pytest.raises(WasmFormatError, match="runs past the end"):
        sections(MODULE[:-3])
