"""fd_readdir through wasi-libc (opendir/readdir/rewinddir/seekdir/telldir/scandir) and raw,
with cookies and short buffers (program: readdir.c)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def out(program_run):
    return program_run("readdir")


def listing(out, path: str) -> list[str]:
    """The sorted entries printed for ``path``, without '.' and '..' (optional in WASI)."""
    lines = out.lines
    head = next(i for i, ln in enumerate(lines) if ln.startswith(f"listing {path} ("))
    entries = []
    for ln in lines[head + 1:]:
        if not ln.startswith("  "):
            break
        entries.append(ln.strip())
    for dot in (". dir", ".. dir"):
        if dot in entries:
            entries.remove(dot)
    assert not [e for e in entries if e.split()[0] in (".", "..")], entries
    assert lines[head].endswith("errno=0):"), lines[head]
    return entries


def test_readdir_program_runs_every_check_to_exit_0(out):
    assert out.run.code == 0, out.run.describe()


def test_readdir_root_lists_every_kind(out):
    assert listing(out, "/sandbox") == [
        "dangling symlink", "empty dir", "esc_abs symlink", "esc_abs_dir symlink",
        "esc_deep symlink", "esc_rel symlink", "esc_rel_dir symlink", "hello.txt file",
        "link_hello symlink", "link_sub symlink", "loop_a symlink", "loop_b symlink",
        "self_loop symlink", "sub dir", "victim.txt file",
    ]


def test_readdir_subdirs(out):
    assert listing(out, "/sandbox/sub") == ["a.txt file", "b.txt file", "deeper dir"]
    assert listing(out, "/sandbox/empty") == []
    assert listing(out, "/sandbox/link_sub") == ["a.txt file", "b.txt file", "deeper dir"]
    assert listing(out, "/ro") == ["emptydir dir", "readme.txt file", "rodir dir"]


def test_opendir_on_a_file_or_missing_dir_fails_with_its_errno(out):
    out.expect(
        "opendir /sandbox/hello.txt -> NULL errno=54",
        "opendir /sandbox/missing -> NULL errno=44",
    )


def test_readdir_large_directory_and_cookies(out):
    saw = out.line("many: readdir saw ")
    dots = out.line("many: '.' and '..' entries: ")
    n_dots = int(dots.rsplit(" ", 1)[1])
    assert saw == f"many: readdir saw {150 + n_dots} entries"
    out.expect(
        "many: all 150 seen once: yes (missing=0 dup=0 other=0)",
        "many: rewinddir re-reads the same count: yes",
        "many: seekdir(telldir after 10) resumes at entry 11: yes",
        "many: entries after seekdir = count-10: yes",
        f"many after unlink+mkdir: {150 + n_dots} entries",
    )
    names = sorted(p.name for p in (out.world.sandbox / "many").iterdir())
    assert len(names) == 150 and names[-1] == "zz-subdir"


def test_d_ino_matches_stat(out):
    out.expect("d_ino == lstat st_ino for every entry: yes")


def test_scandir_lists_the_directory_sorted(out):
    ln = out.line("scandir sub -> ")
    assert ln.replace(" . ..", "").replace("-> 5:", "-> 3:") == "scandir sub -> 3: a.txt b.txt deeper"


def test_raw_readdir_fills_buffers_exactly_and_resumes_at_cookies(out):
    out.expect(
        "raw fd_readdir sub big buffer -> 0 short (end reached): yes",
        "raw fd_readdir entries fill the buffer exactly: yes",
        "raw fd_readdir d_next cookies distinct: yes",
        "raw fd_readdir from cookie #2 -> 0 first is entry #3: yes count=n-2: yes",
        "raw fd_readdir from last cookie -> 0 used=0",
        # a buffer too small for the next entry is filled to the brim (truncated entry)
        "raw fd_readdir 20-byte buffer -> 0 used=20 untouched after: yes",
        "raw fd_readdir 0-byte buffer -> 0 used=0",
        "raw fd_readdir closed fd -> 8",
    )
    ln = out.line("raw fd_readdir sub (")
    body = ln.split(":", 1)[1].replace(" [. dir]", "").replace(" [.. dir]", "")
    assert body == " [a.txt file] [b.txt file] [deeper dir]", ln


def test_readdir_on_a_file_is_ebadf_or_enotdir(out):
    # wasmtime: EBADF (8); POSIX-style ENOTDIR (54) is as good
    assert out.line("raw fd_readdir on a file -> ") in (
        "raw fd_readdir on a file -> 8", "raw fd_readdir on a file -> 54")
    assert out.line("fdopendir on a file -> ") in (
        "fdopendir on a file -> NULL errno=8", "fdopendir on a file -> NULL errno=54")
