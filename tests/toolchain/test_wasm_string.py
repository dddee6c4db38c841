"""Every Wasm program is linked with the toolchain's string routines (wasm_string.c): they
give libc's answers (checked against byte loops in the guest, up to the last byte of
linear memory), on the SIMD128 path and the scalar one, and a program's own definition of
one of them still wins."""

from __future__ import annotations

import pytest
from _programs import PROGRAMS, fog

from foglayer.toolchain import compile_c
from foglayer.wasm import sections


def _name_section(wasm: bytes) -> bytes:
    """The custom "name" section (the linker's function names); the DWARF sections also
    mention Zig's routines, so only this one says which were linked."""
    for sid, start, end in sections(wasm):
        if sid == 0 and wasm[start:end].startswith(b"\x04name"):
            return wasm[start:end]
    raise AssertionError("no name section")


@pytest.mark.parametrize("flags", [["-O2"], ["-O3", "-msimd128"]], ids=["scalar", "simd128"])
def test_string_routines_give_libc_answers_at_every_length_alignment_and_memory_end(flags):
    wasm = compile_c([PROGRAMS / "string_routines.c"], flags=flags)
    r = fog("run", wasm)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ok "), r.stdout
    # Ours replaced Zig's byte loops (the name section names Zig's by their Zig namespace).
    names = _name_section(wasm.read_bytes())
    assert b"memcmp" in names and b"strcspn" in names
    assert b"compiler_rt.memcmp" not in names and b"c.string.strcspn" not in names


def test_a_program_defining_strchr_itself_keeps_its_own(tmp_path):
    src = tmp_path / "own_strchr.c"
    src.write_text('#include <stdio.h>\n#include <string.h>\n'
                   'char *strchr(const char *s, int c) { (void)s; (void)c; return (char *)"mine"; }\n'
                   'int main(int argc, char **argv) { (void)argc; '
                   'puts(strchr(argv[0], 0x78)); return 0; }\n')
    wasm = compile_c([src], flags=["-O2", "-msimd128"])
    r = fog("run", wasm)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "mine\n"
