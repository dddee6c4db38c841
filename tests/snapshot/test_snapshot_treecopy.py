"""Volumes move with an app: trees pre-copied by content hash; the target trusts nothing."""

from __future__ import annotations

import json
import os

import pytest

from foglayer.snapshot import SnapshotError, TreeSink, TreeStream
from foglayer.snapshot._precopy import frame, unframe
from foglayer.snapshot._treecopy import PIECE, TREE_MAGIC, TreeHeader, _decoder


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
    assert _tree(dst) == _tree(src) and first.files == 3
    (src / "sub" / "a.txt").write_bytes(b"alpha, changed")
    (src / "empty").unlink()
    (src / "sub" / "deeper" / "new").write_bytes(b"new")
    second = _move(stream, sink)
    assert second.files == 2 and second.bytes < first.bytes // 100  # big.bin not again
    assert _tree(dst) == _tree(src)
    os.utime(src / "big.bin")  # touched, not changed: its bytes are not sent again
    assert _move(stream, sink).files == 0


def _forge(chunk: bytes, edit) -> bytes:
    head, data = unframe(chunk, TREE_MAGIC, _decoder, "volume chunk", "t")
    raw = json.loads(__import__("msgspec").json.encode(head))
    edit(raw)
    return frame(TREE_MAGIC, _decoder.decode(json.dumps(raw)), [bytes(data)])


def test_forged_volume_chunks_never_write_outside(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "box" / "dst"
    src.mkdir()
    (src / "f").write_bytes(b"data")
    (tmp_path / "canary").write_bytes(b"secret")
    chunks = TreeStream(src).next_round().chunks
    for path in ("../../canary", "/etc/x", "a/../../canary", "./f", "a//f"):
        def piece(h, path=path):
            h["pieces"][0][0] = path

        with pytest.raises(SnapshotError):
            TreeSink(dst).apply(_forge(chunks[0], piece))

    def link_out(h):
        h["manifest"] = [["l", "link", 0, 0, "../../canary"]]

    with pytest.raises(SnapshotError, match="points outside"):
        TreeSink(dst).apply(_forge(chunks[-1], link_out))

    def lies(h):
        h["manifest"][0][4] = "0" * 64

    sink = TreeSink(dst)
    sink.apply(chunks[0])
    with pytest.raises(SnapshotError, match="sha256"):
        sink.apply(_forge(chunks[-1], lies))
    (dst / "f").unlink()
    (dst / "f").symlink_to(tmp_path / "canary")  # planted: the sink must not follow it
    with pytest.raises(SnapshotError):
        sink.apply(chunks[0])
    with pytest.raises(SnapshotError, match="limit"):
        TreeSink(tmp_path / "small", max_bytes=2).apply(chunks[0])
    bad = bytearray(chunks[0])
    bad[-40] ^= 1
    with pytest.raises(SnapshotError, match="hash"):
        TreeSink(dst).apply(bytes(bad))
    assert (tmp_path / "canary").read_bytes() == b"secret"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box", "canary", "small", "src"]
    assert isinstance(_decoder.decode(b'{"round":0,"seq":0,"data_length":0}'), TreeHeader)


def test_a_tree_stored_by_content_hash_comes_back_identical(tmp_path):
    """What a durable snapshot does with volumes: a collector keeps each round's new files
    by sha256 (a file that did not change is not sent again), and the stored manifest plus
    those blobs rebuild the tree through a sink."""
    from foglayer.snapshot import TreeCollector, tree_chunks

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "big.bin").write_bytes(os.urandom(PIECE + 99))
    (src / "sub" / "a.txt").write_bytes(b"alpha")
    (src / "sub" / "same.txt").write_bytes(b"alpha")  # one blob for both
    (src / "sub" / "link").symlink_to("a.txt")
    stream, store = TreeStream(src), {}

    def store_round():
        col = TreeCollector(max_bytes=64 << 20)
        for c in stream.next_round().chunks:
            col.apply(c)
        new = col.blobs()
        store.update(new)
        return col.manifest, new

    manifest, new = store_round()
    assert len(new) == 2
    (src / "sub" / "a.txt").write_bytes(b"alpha, changed")
    manifest, new = store_round()
    assert list(new.values()) == [b"alpha, changed"]  # big.bin and same.txt not again
    dst = tmp_path / "dst"
    sink = TreeSink(dst)
    for c in tree_chunks(manifest, lambda sha, size: store[sha]):
        sink.apply(c)
    assert _tree(dst) == _tree(src)


def test_a_stored_manifest_pointing_outside_the_volume_is_refused(tmp_path):
    from foglayer.snapshot import TreeEntry, tree_chunks

    sha = __import__("hashlib").sha256(b"x").hexdigest()
    for bad in ([TreeEntry("../escape", "file", 0o644, 1, sha)],
                [TreeEntry("/etc/escape", "file", 0o644, 1, sha)],
                [TreeEntry("a/../../escape", "file", 0o644, 1, sha)],
                [TreeEntry("l", "link", 0, 0, "../../outside")],
                [TreeEntry("l", "link", 0, 0, "/etc")],
                [TreeEntry("f", "file", 0o644, 1, sha), TreeEntry("f", "file", 0o644, 1, sha)]):
        with pytest.raises(SnapshotError):
            tree_chunks(bad, lambda s, n: b"x")
    # A link inside, then a file "through" it: the sink walks without following links.
    (tmp_path / "outside").mkdir()
    inside = [TreeEntry("d", "link", 0, 0, "."), TreeEntry("d/f", "file", 0o644, 1, sha)]
    with pytest.raises(SnapshotError):
        for c in tree_chunks(inside, lambda s, n: b"x"):
            TreeSink(tmp_path / "box").apply(c)
    assert not list((tmp_path / "outside").iterdir())
