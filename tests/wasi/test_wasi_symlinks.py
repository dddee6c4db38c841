"""path_symlink, path_readlink, and symlink handling by the other path calls, inside the
sandbox (escapes: test_sandbox_escapes.py) (program: symlinks.c)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def out(program_run):
    return program_run("symlinks")


def test_symlink_program_runs_every_check_to_exit_0(out):
    assert out.run.code == 0, out.run.describe()


def test_symlinks_are_created_once_and_only_in_existing_dirs(out):
    out.expect(
        "symlink hello.txt <- s1 -> 0 errno=0",
        "symlink s1 <- s2 (chain) -> 0 errno=0",
        "symlink onto existing name -> -1 errno=20",
        "symlink onto existing symlink -> -1 errno=20",
        "symlink in missing dir -> -1 errno=44",
        "symlink ../hello.txt <- sub/up (stays inside) -> 0 errno=0",
        "symlink deeper/c.txt <- sub/down -> 0 errno=0",
        "symlink to missing target (dangling) -> 0 errno=0",
        "lstat /sandbox/s_dangling -> symlink",
        "symlink sub <- s_dir -> 0 errno=0",
        "raw path_symlink hello.txt <- raw_s -> 0",
        "readlink /sandbox/raw_s -> 9 [hello.txt]",
        "raw path_symlink closed fd -> 8",
        "raw path_symlink empty target -> 44",
        "raw path_symlink empty link name -> 44",
    )
    sb = out.world.sandbox
    assert os.readlink(sb / "raw_s") == "hello.txt"
    assert os.readlink(sb / "sub" / "down") == "deeper/c.txt"


def test_readlink_returns_the_target_truncated_to_the_buffer(out):
    out.expect(
        "readlink /sandbox/s1 -> 9 [hello.txt]",
        "readlink /sandbox/s2 -> 2 [s1]",
        "raw path_readlink s1 -> 0 used=9 [hello.txt] no NUL added: yes",
        # a short buffer gets a truncated target, never more than its size
        "raw path_readlink s1 into 4 bytes -> 0 used=4 [hell] byte 4 untouched: yes",
        "raw path_readlink regular file -> 28",
        "raw path_readlink missing -> 44",
        "raw path_readlink directory -> 28",
        "raw path_readlink closed fd -> 8",
        "readlink /sandbox/link_sub -> 3 [sub]",
        "readlink /sandbox/dangling -> 14 [does-not-exist]",
        "readlink /sandbox/loop_a -> 6 [loop_b]",
        "readlink /sandbox/sub/up -> 12 [../hello.txt]",
    )


def test_following_in_tree_links(out):
    out.expect(
        "cat /sandbox/s1 -> [hello world]",
        "cat /sandbox/s2 -> [hello world]",
        "cat /sandbox/sub/up -> [hello world]",
        "cat /sandbox/sub/down -> [c|]",
        "cat /sandbox/s_dangling -> errno=44",
        "cat /sandbox/s_dir/a.txt -> [aaa|]",
        "cat /sandbox/link_sub/deeper/c.txt -> [c|]",
        "mkdir through dir symlink s_dir/made -> 0 errno=0",
        "lstat /sandbox/sub/made -> dir",
        "cat /sandbox/chain19 -> [hello world]",
    )


def test_nofollow_and_loops(out):
    out.expect(
        "cat /sandbox/s1 -> errno=32",  # O_NOFOLLOW on a symlink: ELOOP
        "cat /sandbox/hello.txt -> [hello world]",
        "raw path_open dir symlink nofollow -> 32",
        "raw path_open dir symlink follow O_DIRECTORY -> 0",
        "raw path_open through dir symlink in the middle, nofollow -> 0",
        "cat /sandbox/loop_a -> errno=32",
        "cat /sandbox/self_loop -> errno=32",
        "stat loop_a -> -1 errno=32",
        "lstat loop_a -> 0 symlink=yes",
    )


def test_nofollow_directory_on_dir_symlink(program_run):
    """O_DIRECTORY without follow on a symlink to a dir: Linux ENOTDIR (54), wasmtime ELOOP
    (32). Either refuses."""
    o = program_run("symlinks", "quirks")
    assert o.line("raw path_open dir symlink nofollow O_DIRECTORY -> ").rsplit(" ", 1)[1] in ("32", "54")


def test_creat_through_dangling_link(out):
    out.expect(
        "open O_CREAT through dangling in-tree link -> ok errno=0",
        "lstat /sandbox/does-not-exist -> file",
        "lstat /sandbox/dangling -> symlink",
        "open O_CREAT|O_EXCL on a symlink -> -1 errno=20",
    )
    assert (out.world.sandbox / "does-not-exist").read_bytes() == b"made via link\n"


def test_unlink_rename_rmdir_act_on_the_link(out):
    out.expect(
        "unlink s2 -> 0 errno=0",
        "lstat /sandbox/s2 -> missing",
        "lstat /sandbox/s1 -> symlink",
        "rename s1 -> s1_renamed -> 0 errno=0",
        "readlink /sandbox/s1_renamed -> 9 [hello.txt]",
        "cat /sandbox/s1_renamed -> [hello world]",
        "rmdir s_dir (symlink to dir) -> -1 errno=54",
        "unlink s_dir (symlink to dir) -> 0 errno=0",
        "lstat /sandbox/s_dir -> missing",
        "lstat /sandbox/sub -> dir",
        "unlink s_dangling -> 0 errno=0",
        "rename sub/up -> sub/deeper/up -> 0 errno=0",
        "readlink /sandbox/sub/deeper/up -> 12 [../hello.txt]",
        "cat /sandbox/sub/deeper/up -> errno=44",
    )
    sb = out.world.sandbox
    assert (sb / "hello.txt").read_bytes() == b"hello world"
    assert sorted(p.name for p in sb.iterdir() if p.name.startswith(("s1", "s2", "s_", "chain"))) == [
        "s1_renamed"
    ]
