"""path_open (basic), fd_read, fd_write, fd_pread, fd_pwrite, fd_seek, fd_tell, fd_close,
fd_sync, fd_datasync, fd_advise, fd_allocate (program: fd_io.c)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def out(program_run):
    return program_run("fd_io")


def test_fd_io_program_runs_every_check_to_exit_0(out):
    assert out.run.code == 0, out.run.describe()


def test_reads_return_the_file_bytes_then_nothing_at_eof(out):
    out.expect(
        "open hello.txt rdonly ok: yes",
        "read 5 -> 5 [hello]",
        "read rest -> 5 [world]",
        "read at eof -> 0 []",
        "read past eof -> 0 []",
        "readv 3 iovecs: count in 1..11: yes, bytes are a prefix of the file: yes",
        "readv then read to eof -> 11 [hello world]",
        "raw fd_read with a zero-length iovec first -> 0 n=2 [he]",
        "read stdin (empty) -> 0",
    )


def test_read_on_closed_write_only_or_directory_fd_is_ebadf(out):
    out.expect(
        "read closed fd -> -1 errno=8",
        "read on O_WRONLY fd -> -1 errno=8",
        "read on dir fd -> -1 errno=8",
    )


def test_seek_moves_the_offset_and_refuses_a_negative_one(out):
    out.expect(
        "fd_seek cur+1 -> 6",
        "fd_seek end -> 11",
        "fd_seek end-5 -> 6",
        "read 3 after end-5 -> 3 [wor]",
        "fd_seek set 0 -> 0",
        "fd_seek set -1 -> -1 errno=28",
        "fd_seek cur-100 -> -1 errno=28",
        "position after failed seeks -> 0",
        "fd_seek set 100 (past eof) -> 100",
        "raw fd_seek whence=end delta=-1 -> 0 pos=10",
        "raw fd_seek closed fd -> 8",
    )


def test_tell_follows_reads_and_writes_but_not_pwrites(out):
    out.expect(
        "fd_tell -> 0 pos=5",
        "raw fd_tell closed fd -> 8",
        "tell after write -> 10",
        "tell after pwrite -> 10",
        "tell after pwrites -> 14",
    )


def test_pread_reads_at_an_offset_without_moving_the_file_position(out):
    out.expect(
        "pread 5 at 6 -> 5 [world]",
        "position after pread -> 2",
        "pread 5 at 9 (short) -> 2 [ld]",
        "pread at 1000 -> 0 []",
        'raw fd_pread 2 iovecs at 6 -> 0 count in 1..5: yes prefix of "world": yes',
        "pread on O_WRONLY fd -> -1 errno=8",
        "pread on dir fd -> -1 errno=8",
    )


def test_writes_land_and_need_write_access(out):
    out.expect(
        "write on O_RDONLY fd -> -1 errno=8",
        "open out.txt creat|wronly|trunc ok: yes",
        "write 10 -> 10",
        "writev 3 iovecs: count in 1..4: yes",
        "write on dir fd -> -1 errno=8",
        "raw fd_write to stdout",
        "raw fd_write stdout (2 iovecs, finished if short) -> 0 n=23",
        "write stderr -> 10",
    )
    assert out.run.stderr.startswith("to stderr\n") or "to stderr\n" in out.run.stderr


def test_pwrite_writes_at_an_offset_and_past_eof_leaves_a_hole(out):
    out.expect(
        "pwrite on O_RDONLY fd -> -1 errno=8",
        "pwrite 2 at 2 -> 2",
        "raw fd_pwrite 2 iovecs at 0 -> 0 count in 1..2: yes",
        r"contents of /sandbox/out.txt -> 14 [PQAB456789xyz\x0a]",
        "pwrite past eof at 12 -> 2",
        "hole.bin size -> 14",
        r"hole.bin pread all -> 14 [ab\x00\x00\x00\x00cd\x00\x00\x00\x00ZZ]",
        r"hole.bin read all (O_RDWR) -> 14 [ab\x00\x00\x00\x00cd\x00\x00\x00\x00ZZ]",
    )
    assert (out.world.sandbox / "out.txt").read_bytes() == b"PQAB456789xyz\n"
    assert (out.world.sandbox / "hole.bin").read_bytes() == b"ab\0\0\0\0cd\0\0\0\0ZZ"


def test_close_frees_a_descriptor_exactly_once(out):
    out.expect(
        "close -> 0",
        "close again -> -1 errno=8",
        "raw fd_close 1234 -> 8",
    )


def test_sync_and_datasync_succeed_raw_and_through_libc(out):
    out.expect("fd_sync -> 0", "fd_datasync -> 0", "raw fd_sync -> 0", "raw fd_datasync -> 0")


def test_every_advice_is_accepted(out):
    out.expect(
        "fd_advise normal -> 0",
        "fd_advise sequential -> 0",
        "fd_advise random -> 0",
        "fd_advise willneed -> 0",
        "fd_advise dontneed -> 0",
        "fd_advise noreuse -> 0",
        "posix_fadvise sequential -> 0",
        "fd_advise closed fd -> 8",
    )
    # advice never changes the data
    assert (out.world.sandbox / "alloc.bin").read_bytes() == b"12345"


def test_allocate_grows_the_file_or_is_refused_consistently(program_run):
    """Spec: the file grows to cover offset+len. wasmtime answers ENOTSUP (58) and leaves the
    file alone: both are accepted, but the result must be consistent with the file size."""
    o = program_run("fd_io", "allocate")
    assert o.run.code == 0, o.run.describe()
    first = o.line("fd_allocate 0+64 -> ")
    if first == "fd_allocate 0+64 -> 0 size=64":
        o.expect(
            "fd_allocate 2+1 (inside) -> 0 size=64",
            "posix_fallocate 100+28 -> 0 size=128",
        )
        assert o.line("fd_allocate on O_RDONLY fd -> ") in (
            "fd_allocate on O_RDONLY fd -> 8", "fd_allocate on O_RDONLY fd -> 76")
        data = (o.world.sandbox / "alloc2.bin").read_bytes()
        assert data == b"12345" + b"\0" * 123
    else:
        assert first == "fd_allocate 0+64 -> 58 size=5", o.run.describe()
        o.expect("posix_fallocate 100+28 -> 58 size=5")
    o.expect("fd_allocate closed fd -> 8")
