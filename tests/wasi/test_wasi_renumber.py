"""fd_renumber, fd_prestat_get, fd_prestat_dir_name (program: renumber.c)."""

from __future__ import annotations

import pytest

PRE = "tag=0 name_len={n} dir_name -> 0 [{name}] no NUL written: yes big buffer -> 0 1-byte buffer -> 37"


@pytest.fixture(scope="module")
def out(program_run):
    return program_run("renumber")


def test_renumber_prestat_program_runs_every_check_to_exit_0(out):
    assert out.run.code == 0, out.run.describe()


def test_fd_prestat_get_and_dir_name(out):
    out.expect(
        "fd_prestat_get 0 -> 8",
        "fd_prestat_get 1 -> 8",
        "fd_prestat_get 2 -> 8",
        "fd_prestat_get 3 -> 0 " + PRE.format(n=8, name="/sandbox"),
        "fd_prestat_get 4 -> 0 " + PRE.format(n=3, name="/ro"),
        "fd_prestat_get 5 -> 8",
        "fd_prestat_get 6 -> 8",
        "fd_prestat_get opened dir (not a preopen) -> 8",
        "fd_prestat_dir_name closed fd -> 8",
    )


def test_renumber_moves_a_descriptor_and_frees_the_old_number(out):
    out.expect(
        "two files open on distinct fds: yes",
        "before, b: pread fd -> 0 [aaa|]",
        "fd_renumber a -> b -> 0",
        "after, b: pread fd -> 0 [hello world]",
        "after, a: pread fd -> 8 []",
        "fd_close a after renumber -> 8",
        "fd_renumber b -> b (same) -> 0",
        "after self-renumber, b: pread fd -> 0 [hello world]",
        "fd_renumber closed -> b -> 8",
        "b survives failed renumber: pread fd -> 0 [hello world]",
        "fd_renumber b -> unused fd 1234 -> 8",
        "b after renumber to unused: pread fd -> 0 [hello world]",
        "fd_renumber c(pos 6) -> d -> 0",
        "read d continues at 6 -> 5 [world]",
    )


def test_fd_renumber_over_stderr(out):
    out.expect(
        "fd_renumber file -> 2 (stderr) -> 0",
        "write fd 2 -> 17",
        "fd_fdstat_get 2 -> 0 type=file",
        "write old fd -> -1 errno=8",
    )
    assert (out.world.sandbox / "stderr.txt").read_bytes() == b"written via fd 2\n"
    assert "written via fd 2" not in out.run.stderr


def test_fd_renumber_moves_a_preopen(out):
    out.expect(
        "fd_renumber 4 (/ro preopen) -> g -> 0",
        "fd_prestat_get old preopen fd 4 -> 8",
        "fd_prestat_get g (now /ro) -> 0 " + PRE.format(n=3, name="/ro"),
        "path_open readme.txt relative to g -> 0",
        "readme via renumbered preopen: pread fd -> 0 [read only|]",
    )
