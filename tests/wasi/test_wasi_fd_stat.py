"""fd_fdstat_get, fd_fdstat_set_flags, fd_fdstat_set_rights, fd_filestat_get,
fd_filestat_set_size, fd_filestat_set_times, path_filestat_get, path_filestat_set_times
(program: fd_stat_flags.c)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def out(program_run):
    return program_run("fd_stat_flags")


def test_fd_stat_program_runs_every_check_to_exit_0(out):
    assert out.run.code == 0, out.run.describe()


def test_fdstat_reports_each_descriptors_type_flags_and_rights(out):
    out.expect(
        "fd_fdstat_get preopen /sandbox -> 0 type=dir flags=0x0 path_open=yes readdir=yes",
        "fd_fdstat_get preopen /ro -> 0 type=dir flags=0x0 path_open=yes readdir=yes",
        "fd_fdstat_get closed 1234 -> 8",
        "fd_fdstat_get stdout -> 0",
        "fd_fdstat_get stderr -> 0",
        "fd_fdstat_get O_RDONLY file -> 0 type=file flags=0x0 read=yes write=no seek=yes",
        "fd_fdstat_get O_WRONLY file -> 0 type=file flags=0x0 read=no write=yes seek=yes",
        "fd_fdstat_get O_RDWR file -> 0 type=file flags=0x0 read=yes write=yes seek=yes",
        "fd_fdstat_get dir -> 0 type=dir flags=0x0 path_open=yes readdir=yes",
        "fd_fdstat_get O_APPEND file -> 0 type=file flags=0x1 read=no write=yes seek=yes",
        "fcntl F_GETFL O_APPEND file: append=yes accmode_wronly=yes",
        "fcntl F_GETFL O_RDWR file: accmode_rdwr=yes",
    )


def test_append_flag_can_be_set_and_cleared(out):
    out.expect(
        "fcntl F_SETFL O_APPEND -> 0",
        "fd_fdstat_get after set APPEND -> 0 type=file flags=0x1 read=no write=yes seek=yes",
        "tell after append write -> 13",
        "raw fd_fdstat_set_flags 0 -> 0",
        "fd_fdstat_get after clear APPEND -> 0 type=file flags=0x0 read=no write=yes seek=yes",
        "raw fd_fdstat_set_flags NONBLOCK -> 0",
        "fd_fdstat_get after set NONBLOCK -> 0 type=file flags=0x4 read=no write=yes seek=yes",
        "raw fd_fdstat_set_flags closed fd -> 8",
        r"contents of /sandbox/append.txt -> 13 [First\x0asecond\x0a]",
    )
    assert (out.world.sandbox / "append.txt").read_bytes() == b"First\nsecond\n"


def test_rights_can_only_be_dropped(program_run):
    """Spec: rights can only be dropped; a dropped right then fails the call, and adding one
    back is ENOTCAPABLE (76). wasmtime no longer implements it: ENOTSUP (58), rights unchanged.
    Both accepted."""
    o = program_run("fd_stat_flags", "rights")
    assert o.run.code == 0, o.run.describe()
    if o.line("fd_fdstat_set_rights drop FD_WRITE -> ") == "fd_fdstat_set_rights drop FD_WRITE -> 0":
        o.expect("after drop: write right=no")
        assert o.line("write after drop -> ") in ("write after drop -> -1 errno=76",
                                                  "write after drop -> -1 errno=8")
        o.expect("fd_fdstat_set_rights add FD_WRITE back -> 76")
        assert (o.world.sandbox / "rights.txt").read_bytes() == b""
    else:
        o.expect(
            "fd_fdstat_set_rights drop FD_WRITE -> 58",
            "after drop: write right=yes",
            "write after drop -> 1 errno=0",
            "fd_fdstat_set_rights add FD_WRITE back -> 58",
        )


def test_sync_open_flags_are_honoured_or_refused(program_run):
    """DSYNC/RSYNC/SYNC on path_open: supported (and reported by fd_fdstat_get), or refused
    with ENOTSUP (58) as wasmtime does."""
    o = program_run("fd_stat_flags", "sync-flags")
    assert o.run.code == 0, o.run.describe()
    for name in ("dsync", "rsync", "sync"):
        assert o.line(f"path_open fdflags {name} -> ") in (
            f"path_open fdflags {name} -> 0 reported: yes write -> 0",
            f"path_open fdflags {name} -> 58",
        )


def test_filestat_reports_type_size_and_links(out):
    out.expect(
        "fd_filestat_get O_RDONLY file -> 0 type=file size=11 nlink=1",
        "fd_filestat_get dir -> 0 type=dir",
        "fd_filestat_get closed 1234 -> 8",
    )


def test_truncate_and_grow_change_the_size_not_the_offset(out):
    out.expect(
        "ftruncate 4 -> 0",
        "fd_filestat_get after truncate 4 -> 0 type=file size=4 nlink=1",
        "tell after truncate -> 10",
        "raw fd_filestat_set_size 8 -> 0",
        "fd_filestat_get after grow 8 -> 0 type=file size=8 nlink=1",
        "ftruncate -1 -> -1 errno=28",
        r"contents of /sandbox/trunc.txt -> 8 [0123\x00\x00\x00\x00]",
    )
    # wasmtime passes the host's EINVAL through; EBADF (no write access) is as good
    assert out.line("raw fd_filestat_set_size on O_RDONLY fd -> ") in (
        "raw fd_filestat_set_size on O_RDONLY fd -> 28",
        "raw fd_filestat_set_size on O_RDONLY fd -> 8",
        "raw fd_filestat_set_size on O_RDONLY fd -> 76",
    )
    out.expect(
        "raw fd_filestat_set_size on dir fd -> 8",
        "raw fd_filestat_set_size closed fd -> 8",
        "hello.txt untouched: contents of /sandbox/hello.txt -> 11 [hello world]",
    )
    assert (out.world.sandbox / "trunc.txt").read_bytes() == b"0123\0\0\0\0"


def test_descriptor_times_are_set_exactly_or_to_now(out):
    out.expect(
        "fd_filestat_set_times atim+mtim -> 0 atim exact: yes mtim exact: yes",
        "fd_filestat_set_times mtim only -> 0 atim kept: yes mtim set: yes",
        "fd_filestat_set_times mtim_now -> 0 mtim is now (+-2s): yes atim kept: yes",
        "futimens atime=2e9s+5ns mtime=OMIT -> 0 atime exact: yes mtime kept: yes",
        "fd_filestat_set_times closed fd -> 8",
        "fd_filestat_set_times atim+atim_now -> 28",
    )


def test_path_stat_follows_symlinks_only_when_asked(out):
    out.expect(
        "path_filestat_get hello.txt follow -> 0 type=file size=11 nlink=1",
        "path_filestat_get sub follow -> 0 type=dir",
        "path_filestat_get sub/deeper/c.txt nofollow -> 0 type=file size=2 nlink=1",
        "path_filestat_get link_hello follow -> 0 type=file size=11 nlink=1",
        "path_filestat_get link_hello nofollow -> 0 type=symlink size=9 nlink=1",
        "path_filestat_get link_sub follow -> 0 type=dir",
        "path_filestat_get link_sub nofollow -> 0 type=symlink size=3 nlink=1",
        "path_filestat_get dangling follow -> 44",
        "path_filestat_get dangling nofollow -> 0 type=symlink size=14 nlink=1",
        "path_filestat_get missing follow -> 44",
        "path_filestat_get hello.txt/x follow -> 54",
        "path_filestat_get sub/ (trailing slash) follow -> 0 type=dir",
        "path_filestat_get hello.txt/ (trailing slash) follow -> 54",
        "path_filestat_get .  follow -> 0 type=dir",
        "path_filestat_get sub/..  follow -> 0 type=dir",
        "path_filestat_get empty string follow -> 44",
        "path_filestat_get via dir fd a.txt follow -> 0 type=file size=4 nlink=1",
        "path_filestat_get via unused fd 5000 follow -> 8",
        "path_filestat_get readme.txt in /ro follow -> 0 type=file size=10 nlink=1",
        "stat sub/b.txt -> 0 size=7 regular=yes",
        "lstat link_sub -> 0 symlink=yes",
        "stat nope -> -1 errno=44",
    )


def test_path_times_are_set_exactly_and_through_symlinks(out):
    out.expect(
        "path_filestat_set_times times.txt -> 0 atim exact: yes mtim exact: yes",
        "path_filestat_set_times link_hello follow -> 0 target mtim set: yes",
        "utimensat sub (dir) -> 0 mtime exact: yes",
        "path_filestat_set_times missing -> 44",
        "path_filestat_set_times dangling follow -> 44",
        "path_filestat_set_times atim+atim_now -> 28",
        "path_filestat_set_times mtim+mtim_now -> 28",
        "times.txt unchanged by invalid calls: yes",
    )
    # and the host sees the guest's timestamps
    st = os.stat(out.world.sandbox / "times.txt")
    assert (st.st_atime_ns, st.st_mtime_ns) == (1500000000 * 10**9, 1600000000 * 10**9)
    assert os.stat(out.world.sandbox / "hello.txt").st_mtime_ns == 1100000000 * 10**9
    assert os.stat(out.world.sandbox / "sub").st_mtime_ns == 1400000001 * 10**9
