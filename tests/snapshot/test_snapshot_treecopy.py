"""Volumes move with an app: trees pre-copied in rounds of changed 64 KiB blocks; the target
trusts nothing."""

from __future__ import annotations

import json
import os

import pytest

from foglayer.snapshot import SnapshotError, TreeSink, TreeStream
from foglayer.snapshot._precopy import frame, unframe
from foglayer.snapshot._treecopy import (
    BLOCK,
    PIECE,
    TREE_MAGIC,
    TreeHeader,
    _decoder,
    _manifest_frame,
)


def _tree(root) -> dict[str, object]:
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            out[rel] = (os.readlink(p) if os.path.islink(p) else
                        None if os.path.isdir(p) else open(p, "rb").read())
    return out


def _move(stream, sink):
    r = stream.next_round()
    for c in r.chunks:
        sink.apply(c)
    return r


def test_tree_moves_in_rounds_and_ends_identical(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "big.bin").write_bytes(os.urandom(PIECE + 12345))  # spans chunks
    (src / "sub" / "a.txt").write_bytes(b"alpha")
    (src / "empty").write_bytes(b"")
    (src / "sub" / "link").symlink_to("a.txt")
    stream, sink = TreeStream(src), TreeSink(dst)
    first = _move(stream, sink)
    assert _tree(dst) == _tree(src) and first.files == 2  # (the empty file has no block)
    (src / "sub" / "a.txt").write_bytes(b"alpha, changed")
    (src / "empty").unlink()
    (src / "sub" / "deeper" / "new").write_bytes(b"new")
    second = _move(stream, sink)
    assert second.files == 2 and second.blocks == 2  # big.bin not again
    assert _tree(dst) == _tree(src)
    os.utime(src / "big.bin")  # touched, not changed: its bytes are not sent again
    assert _move(stream, sink).files == 0


def test_an_append_or_a_rewrite_in_place_sends_only_the_blocks_it_changed(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    log = src / "journal"
    log.write_bytes(os.urandom(64 * BLOCK + 100))  # 4 MiB and a bit: 65 blocks
    stream, sink = TreeStream(src), TreeSink(dst)
    assert _move(stream, sink).blocks == 65
    for _ in range(3):
        with open(log, "ab") as f:
            f.write(b"a line of the journal\n")
        rnd = _move(stream, sink)
        assert (rnd.files, rnd.blocks) == (1, 1) and rnd.bytes < 2 * BLOCK  # the last block
        assert _tree(dst) == _tree(src)
    with open(log, "r+b") as f:  # a rewrite in place, across a block boundary
        f.seek(10 * BLOCK - 4)
        f.write(b"12345678")
    assert _move(stream, sink).blocks == 2
    os.truncate(log, 3 * BLOCK + 7)  # cut: only the new last block, the rest is cut away
    assert _move(stream, sink).blocks == 1
    assert _tree(dst) == _tree(src)
    log.unlink()
    log.mkdir()  # a file became a directory, and back
    _move(stream, sink)
    log.rmdir()
    log.write_bytes(b"again")
    _move(stream, sink)
    assert _tree(dst) == _tree(src)


def test_a_round_built_chunk_by_chunk_while_the_files_change_stays_consistent(tmp_path):
    """A live move's rounds read their blocks when asked for (never held whole): what is
    written, rewritten or cut in between still settles on the target (the manifest says what
    it was sent) and goes again next round; the last round, taken still, ends identical."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    grows, cut, gone = src / "grows", src / "cut", src / "gone"
    grows.write_bytes(os.urandom(3 * BLOCK))
    cut.write_bytes(os.urandom(PIECE + 5 * BLOCK))  # two chunks of blocks
    gone.write_bytes(b"soon gone")
    stream, sink = TreeStream(src), TreeSink(dst)
    rnd = stream.open_round()
    assert rnd.count == 3 and rnd.blocks == 3 + PIECE // BLOCK + 5 + 1
    with open(grows, "r+b") as f:  # rewritten and grown after the scan, before the read
        f.write(b"changed")
        f.seek(0, 2)
        f.write(b"grown")
    os.truncate(cut, BLOCK + 1)
    gone.unlink()
    for seq in range(rnd.count):
        sink.apply(stream.build(rnd, seq))
    assert (dst / "grows").read_bytes()[:7] == b"changed"  # as sent
    assert not (dst / "cut").exists()  # cut short meanwhile: left out, and sent next round
    with pytest.raises(ValueError):
        stream.build(rnd, 0)  # each chunk once, in order
    last = stream.next_round()
    for c in last.chunks:
        sink.apply(c)
    assert _tree(dst) == _tree(src)
    assert last.blocks == 1 + 2  # grows: its last block; cut: whole (2 blocks)


def test_a_spooled_round_waits_on_disk_past_its_memory_bound(tmp_path):
    """A durable snapshot's round is built whole between two calls; past a few MiB its chunks
    wait in an unlinked file beside the volumes, not in memory; over its bound it fails."""
    src, spool = tmp_path / "src", tmp_path / "spool"
    src.mkdir()
    spool.mkdir()
    (src / "big").write_bytes(os.urandom(2 * PIECE + 3))
    stream = TreeStream(src)
    with pytest.raises(SnapshotError, match="changed by more than"):
        stream.spooled_round(spool, max_bytes=PIECE)
    rnd = stream.spooled_round(spool, max_bytes=4 * PIECE, in_memory=BLOCK)
    try:
        assert rnd.count == 4 and not list(spool.iterdir())  # (on disk, unlinked)
        sink = TreeSink(tmp_path / "dst")
        for seq in range(rnd.count):
            sink.apply(rnd.chunk(seq))
        assert _tree(tmp_path / "dst") == _tree(src)
    finally:
        rnd.close()


def _forge(chunk: bytes, edit) -> bytes:
    head, data = unframe(chunk, TREE_MAGIC, _decoder, "volume chunk", "t")
    raw = json.loads(__import__("msgspec").json.encode(head))
    edit(raw)
    return frame(TREE_MAGIC, raw, [bytes(data)])  # (not validated: the receiver must)


def test_forged_volume_chunks_never_write_outside(tmp_path):
    from foglayer.snapshot import TreeEntry

    src, dst = tmp_path / "src", tmp_path / "box" / "dst"
    src.mkdir()
    (src / "f").write_bytes(b"data")
    (tmp_path / "canary").write_bytes(b"secret")
    chunks = TreeStream(src).next_round().chunks
    for path in ("../../canary", "/etc/x", "a/../../canary", "./f", "a//f"):
        def piece(h, path=path):
            h["pieces"][0][0] = path

        with pytest.raises(SnapshotError, match="not a plain relative path"):
            TreeSink(dst).apply(_forge(chunks[0], piece))

    def wrong_hash(h):
        h["pieces"][0][4] = "0" * 64

    with pytest.raises(SnapshotError, match="does not match its sha256"):
        TreeSink(dst).apply(_forge(chunks[0], wrong_hash))

    def misaligned(h):
        h["pieces"][0][1] = 3

    with pytest.raises(SnapshotError, match="multiple of"):
        TreeSink(dst).apply(_forge(chunks[0], misaligned))
    sha = __import__("hashlib").sha256(b"data").hexdigest()
    with pytest.raises(SnapshotError, match="points outside"):
        TreeSink(dst).apply(_manifest_frame(0, 1, [TreeEntry("l", "link", 0, 0, "../../canary")]))
    sink = TreeSink(dst)
    sink.apply(chunks[0])
    for lie, why in (([TreeEntry("f", "file", 0o644, 4, "", ("0" * 64,))], "does not match"),
                     ([TreeEntry("f", "file", 0o644, BLOCK + 4, "", (sha,))], "names 1 blocks"),
                     ([TreeEntry("f", "file", 0o644, 4, "", ())], "names 0 blocks"),
                     ([TreeEntry("f", "file", 0o644, 4, sha)], "kept whole"),
                     ([TreeEntry("../f", "file", 0o644, 4, "", (sha,))], "plain relative")):
        with pytest.raises(SnapshotError, match=why):
            sink.apply(_manifest_frame(0, 1, lie))
    (dst / "f").unlink()
    (dst / "f").symlink_to(tmp_path / "canary")  # planted: the sink must not follow it
    sink.apply(chunks[0])  # (the link is replaced, never written through)
    assert (tmp_path / "canary").read_bytes() == b"secret"
    (dst / "f").unlink()
    os.link(tmp_path / "canary", dst / "f")  # a hard link planted: not written through
    sink.apply(chunks[0])
    assert (tmp_path / "canary").read_bytes() == b"secret" and (dst / "f").read_bytes() == b"data"
    with pytest.raises(SnapshotError, match="limit"):
        TreeSink(tmp_path / "small", max_bytes=2).apply(chunks[0])
    bad = bytearray(chunks[0])
    bad[-40] ^= 1
    with pytest.raises(SnapshotError, match="hash"):
        TreeSink(dst).apply(bytes(bad))
    assert (tmp_path / "canary").read_bytes() == b"secret"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box", "canary", "small", "src"]
    assert isinstance(_decoder.decode(b'{"round":0,"seq":0,"data_length":0}'), TreeHeader)


def test_a_tree_stored_by_block_comes_back_identical(tmp_path):
    """What a durable snapshot does with volumes: a collector hands each round's blocks over
    as they come (a block that did not change is not sent again; one block for two files
    alike is one), and the stored manifest rebuilds the tree through a sink, chunk by chunk
    from the blocks."""
    from foglayer.snapshot import TreeCollector, TreePlan, block_lengths

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "big.bin").write_bytes(os.urandom(PIECE + 99))
    (src / "sub" / "a.txt").write_bytes(b"alpha")
    (src / "sub" / "same.txt").write_bytes(b"alpha")  # one block for both
    (src / "sub" / "link").symlink_to("a.txt")
    stream, store = TreeStream(src), {}

    def store_round():
        col = TreeCollector(max_bytes=64 << 20)
        new = {}
        for c in stream.next_round().chunks:
            new.update(col.apply(c))
        manifest = col.finish(block_lengths(held) if (held := prev[0]) else {})
        store.update(new)
        prev[0] = manifest
        return manifest, new

    prev: list = [None]
    manifest, new = store_round()
    assert len(new) == PIECE // BLOCK + 2
    with open(src / "big.bin", "ab") as f:
        f.write(b"appended")
    (src / "sub" / "a.txt").write_bytes(b"alpha, changed")
    manifest, new = store_round()
    assert sorted(map(len, new.values())) == [14, 107]  # a.txt, big.bin's last block
    plan = TreePlan(manifest)
    dst = tmp_path / "dst"
    sink = TreeSink(dst)
    for seq in range(plan.count):
        sink.apply(plan.chunk(seq, {sha: store[sha] for sha in plan.needs(seq)}))
    assert _tree(dst) == _tree(src)
    with pytest.raises(SnapshotError, match="does not match its sha256"):
        plan.chunk(0, {sha: b"x" for sha in plan.needs(0)})  # a store that lies
    col = TreeCollector(max_bytes=64 << 20)  # a round naming blocks it never sent
    (src / "sub" / "a.txt").write_bytes(b"beta")
    for c in TreeStream(src).next_round().chunks[-1:]:
        col.apply(c)
    with pytest.raises(SnapshotError, match="neither came nor is stored"):
        col.finish(block_lengths(manifest))


def test_a_stored_manifest_pointing_outside_the_volume_is_refused(tmp_path):
    from foglayer.snapshot import TreeEntry, TreePlan

    sha = __import__("hashlib").sha256(b"x").hexdigest()
    for bad in ([TreeEntry("../escape", "file", 0o644, 1, "", (sha,))],
                [TreeEntry("/etc/escape", "file", 0o644, 1, "", (sha,))],
                [TreeEntry("a/../../escape", "file", 0o644, 1, "", (sha,))],
                [TreeEntry("l", "link", 0, 0, "../../outside")],
                [TreeEntry("l", "link", 0, 0, "/etc")],
                [TreeEntry("f", "file", 0o644, 1, "", (sha,))] * 2,
                [TreeEntry("f", "file", 0o644, 1, sha)]):  # kept whole: a record from before
        with pytest.raises(SnapshotError):
            TreePlan(bad)
    # A link inside, then a file "through" it: the sink walks without following links.
    (tmp_path / "outside").mkdir()
    inside = [TreeEntry("d", "link", 0, 0, "."), TreeEntry("d/f", "file", 0o644, 1, "", (sha,))]
    plan = TreePlan(inside)
    with pytest.raises(SnapshotError):
        sink = TreeSink(tmp_path / "box")
        sink.apply(_manifest_frame(0, 0, inside[:1]))
        for seq in range(plan.count):
            sink.apply(plan.chunk(seq, {sha: b"x"}))
    assert not list((tmp_path / "outside").iterdir())
