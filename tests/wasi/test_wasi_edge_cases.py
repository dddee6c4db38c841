"""Odd inputs: non-ASCII and over-long names, NUL and invalid UTF-8 in paths, big I/O,
zero-length I/O, directory seeks, O_RDONLY|O_TRUNC, many fds (program: edge_cases.c)."""

from __future__ import annotations

import pytest

NAMES = ["-dash", ".hidden", "emoji-😀.txt", "sp ace & semi;colon", "ünïcödé.txt", "日本語"]


@pytest.fixture(scope="module")
def out(program_run):
    return program_run("edge_cases")


def test_edge_case_program_runs_every_check_to_exit_0(out):
    assert out.run.code == 0, out.run.describe()


def test_non_ascii_names_round_trip(out):
    for name in NAMES:
        out.expect(f"create [{name}] -> 0 errno=0")
    out.expect("readdir names (6): " + " ".join(f"[{n}]" for n in NAMES))
    host = sorted(p.name for p in (out.world.sandbox / "names").iterdir())
    assert host == sorted(NAMES)
    for name in NAMES:
        assert (out.world.sandbox / "names" / name).read_text() == name


def test_name_length_limit(out):
    out.expect("create 255-byte name -> ok", "create 256-byte name -> -1 errno=37")
    assert (out.world.sandbox / ("L" * 255)).is_file()


def test_paths_no_host_can_hold(out):
    # invalid UTF-8: EILSEQ (25) from both; embedded NUL: wasmtime EINVAL (28), EILSEQ is as good
    out.expect(
        "path_open invalid UTF-8 \\xff\\xfe -> 25",
        "path_create_directory invalid UTF-8 -> 25",
        "path_filestat_get zero-length path -> 44",
        'path_open exact length "hello.txtGARBAGE" len 9 -> 0',
    )
    for prefix in ('path_open "hello.txt\\0x" (embedded NUL) -> ',
                   'path_open "hello.txt\\0" (trailing NUL in len) -> ',
                   "path_create_directory embedded NUL -> "):
        assert out.line(prefix).rsplit(" ", 1)[1] in ("28", "25")
    assert sorted(p.name for p in out.world.sandbox.iterdir() if p.name.startswith(("bad", "d", "nul"))) == [
        "dangling"
    ]


def test_megabyte_io_is_exact_and_takes_few_calls(out):
    out.expect(
        "write 4 MiB -> 4194304 bytes, calls<=64: yes",
        "read back 4 MiB -> 4194304 bytes, identical: yes",
        "pread 1 MiB at 3 MiB (looped) -> 1048576 identical: yes",
        "wrote 256 KiB line to stdout -> 262144",
    )
    assert ("x" * (256 * 1024 - 1)) in out.lines
    assert (out.world.sandbox / "big.bin").stat().st_size == 4 << 20


def test_zero_length_and_directory_io(out):
    out.expect(
        "read 0 bytes -> 0",
        "write 0 bytes -> 0",
        "pwrite 0 bytes at 100 -> 0",
        "size unchanged by 0-byte pwrite past eof: yes",
        "lseek on a directory -> -1 errno=8",
    )


def test_open_rdonly_trunc(out):
    """POSIX leaves O_RDONLY|O_TRUNC undefined; Linux and wasmtime truncate. A refusal is
    accepted too, but then the file must be intact."""
    ln = out.line("open O_RDONLY|O_TRUNC -> ")
    if ln == "open O_RDONLY|O_TRUNC -> 0 errno=0":
        out.expect("victim.txt size after O_RDONLY|O_TRUNC -> 0")
    else:
        assert ln.rsplit("=", 1)[1] in ("76", "63", "8", "28"), ln
        out.expect("victim.txt size after O_RDONLY|O_TRUNC -> 7")


def test_many_descriptors(out):
    out.expect(
        "open hello.txt 200 times -> 200 ok, all distinct: yes",
        "each reads independently -> 200",
    )
