"""The standard streams: fd_read on stdin to EOF, fd_write to stdout/stderr, fd_fdstat_get
on fds 0-2 (program: stdio.c). stdin is a file under wasmtime and a pipe under fog."""

from __future__ import annotations

import pytest
from _support import RUNNERS, make_world


def fnv1a(data: bytes) -> int:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


DATA = (b"hello stdin\n" + b"".join(b"line %d \xc3\xbc\n" % i for i in range(20000))
        + b"no newline at end")


@pytest.mark.parametrize(("label", "data"), [("large", DATA), ("empty", b""), ("none", None)])
def test_stdin_is_read_to_eof_and_echoed(runtime_name, build, tmp_path, label, data):
    world = make_world(tmp_path / "world")
    run = RUNNERS[runtime_name](build("stdio"), [], world.dirs, {}, stdin=data)
    assert run.code == 0, run.describe()
    body = data or b""
    first = body.split(b"\n", 1)[0].decode()
    nlines = body.count(b"\n")
    expected = (
        "fd_fdstat_get 0 -> 0 read=yes write=no\n"
        "fd_fdstat_get 1 -> 0 read=no write=yes\n"
        "fd_fdstat_get 2 -> 0 read=no write=yes\n"
        f"first line: [{first}]\n"
        f"stdin: {len(body)} bytes, {nlines} lines, fnv1a={fnv1a(body):08x}\n"
        "fd_read after eof -> 0 n=0\n"
    ).encode() + body + b"done\n"
    assert run.stdout.encode() == expected
    assert run.stderr.endswith("stderr line\n"), run.stderr[-500:]
