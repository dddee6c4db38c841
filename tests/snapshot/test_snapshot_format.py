"""The snapshot format: what it holds, page diffs, and every kind of bad input."""

from __future__ import annotations

import json
import os
import struct

import msgspec
import pytest
from _programs import build, fog

from foglayer.snapshot import (
    FORMAT_VERSION,
    CheckpointOptions,
    SnapshotError,
    _format,
    describe,
    diff_pages,
    load_snapshot,
    parse_snapshot,
    run_checkpointable,
)

ROUNDS = "6"


@pytest.fixture(scope="module")
def compute():
    return build("snap_compute")


@pytest.fixture(scope="module")
def snapshot(compute, tmp_path_factory):
    """A snapshot of snap_compute stopped at its 5th safepoint (and the stdout before it)."""
    d = tmp_path_factory.mktemp("snap")
    path = d / "s.fogsnap"
    with open(d / "out1", "wb") as out:
        o = run_checkpointable(compute, [ROUNDS], stdio=(0, out.fileno(), 2), progress=False,
                               options=CheckpointOptions(path=str(path), countdown=4096,
                                                         after_safepoints=5, stop_after=True))
    assert o.stopped and path.exists()
    return path


def test_snapshot_holds_what_the_issue_lists(snapshot, compute):
    snap = load_snapshot(snapshot)
    try:
        m = snap.meta
        assert m.format == FORMAT_VERSION and m.kind == "command"
        import hashlib

        assert m.module.original_digest == hashlib.sha256(compute.read_bytes()).hexdigest()
        assert len(m.module.digest) == 64
        assert m.memory.pages > m.memory.stored > 0  # zero pages left out
        pages = dict(snap.pages())
        for e in m.memory.table:
            assert _format.page_hash(pages[e.index]) == e.hash
            assert bytes(pages[e.index]) != _format.ZERO_PAGE
        assert {g.index for g in m.globals} == set(range(len(m.globals)))
        assert m.asyncify.used > 8  # the call stack is in there
        assert m.wasi.args[1:] == [ROUNDS] and m.wasi.monotonic_ns > 0
        assert snap.blob("module", 1 << 30) is not None  # restores where it is not cached
        assert snap.trusted  # written by this user here
        json.loads(msgspec.json.encode(m))  # plain data only
    finally:
        snap.close()


def test_inspect_shows_digest_memory_globals_descriptors_version(snapshot):
    r = fog("inspect", snapshot)
    assert r.returncode == 0, r.stderr
    for word in (f"format         version {FORMAT_VERSION}", "sha256", "memory", "stored", "globals",
                 "global 0", "descriptors", "fd 1", "asyncify"):
        assert word in r.stdout
    assert describe(snapshot) == r.stdout.rstrip("\n")


def _bad(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _one_line_error(r, *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fog: error: "), r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_truncated_snapshot_is_refused(snapshot, tmp_path):
    data = snapshot.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 30, 5):
        p = _bad(tmp_path, f"cut{cut}", data[:cut])
        _one_line_error(fog("restore", p), "snapshot")
        with pytest.raises(SnapshotError):
            parse_snapshot(p.read_bytes())
    r = fog("restore", _bad(tmp_path, "cut", data[:len(data) // 2]))
    assert "truncated" in r.stderr


def test_corrupted_snapshot_is_refused(snapshot, tmp_path):
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0x40
    r = fog("restore", _bad(tmp_path, "flip", bytes(data)))
    _one_line_error(r, "corrupted")
    r = fog("inspect", _bad(tmp_path, "flip2", bytes(data)))
    _one_line_error(r, "corrupted")


def test_newer_format_version_is_refused(snapshot, tmp_path):
    data = bytearray(snapshot.read_bytes())
    struct.pack_into("<I", data, 8, FORMAT_VERSION + 1)
    r = fog("restore", _bad(tmp_path, "newer", bytes(data)))
    _one_line_error(r, "newer", "upgrade foglayer")


def test_not_a_snapshot_is_refused(tmp_path, compute):
    _one_line_error(fog("restore", _bad(tmp_path, "empty", b"")), "not a foglayer snapshot")
    _one_line_error(fog("restore", compute), "not a foglayer snapshot")
    _one_line_error(fog("restore", tmp_path / "missing"), "no such file")
    _one_line_error(fog("inspect", tmp_path), "")


def test_snapshot_of_another_module_is_refused(snapshot, tmp_path):
    other = build("snap_files")
    r = fog("restore", "--module", other, snapshot)
    _one_line_error(r, "not the module of this snapshot")


def test_diff_pages_names_exactly_the_pages_to_send(compute, tmp_path):
    metas, memories = [], []
    for k in (3, 12):
        with open(os.devnull, "wb") as out:
            path = tmp_path / f"s{k}"
            run_checkpointable(compute, [ROUNDS], stdio=(0, out.fileno(), 2), progress=False,
                               options=CheckpointOptions(path=str(path), countdown=4096,
                                                         after_safepoints=k, stop_after=True))
        snap = load_snapshot(path)
        metas.append(snap.meta)
        memories.append({i: bytes(p) for i, p in snap.pages()})
        snap.close()
    d = diff_pages(metas[0], metas[1])
    assert d.changed and d.unchanged > 0  # the code and data pages did not move
    rebuilt = {i: p for i, p in memories[0].items() if i not in d.zeroed}
    rebuilt.update({i: memories[1][i] for i in d.changed})
    assert rebuilt == memories[1]
    assert diff_pages(metas[1], metas[1]).changed == []


def test_a_checkpointable_module_runs_as_is(snapshot, tmp_path):
    """The module a snapshot carries is itself runnable checkpointable (no second rewrite)."""
    snap = load_snapshot(snapshot)
    wasm = snap.blob("module", 1 << 30)
    snap.close()
    (tmp_path / "cp.wasm").write_bytes(wasm)
    with open(os.devnull, "wb") as out:
        o = run_checkpointable(tmp_path / "cp.wasm", [ROUNDS], stdio=(0, out.fileno(), 2),
                               progress=False, options=CheckpointOptions(path=str(tmp_path / "s")))
    assert o.exit_code == 3
