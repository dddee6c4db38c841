"""Pre-copy in one process: two instances of one module, pages moving in rounds while the
source runs, then the last delta and the switch. The target treats all of it as untrusted."""

from __future__ import annotations

import json
import threading

import msgspec
import pytest
from _programs import build, fog

from foglayer.runtime import Instance, Limits, load_module, settings_for
from foglayer.snapshot import (
    CheckpointOptions,
    PageSink,
    PageStream,
    Session,
    SnapshotError,
    _format,
    command_state,
    finish_command,
    finish_service,
    make_checkpointable,
    parse_snapshot,
    service_state,
)
from foglayer.wasi import Preopen, Wasi

FNV, PRIME, MASK = 1469598103934665603, 1099511628211, (1 << 64) - 1


@pytest.fixture(scope="module")
def service():
    return load_module(build("snap_service", "-mexec-model=reactor"))


def _expected(values):
    d = FNV
    for v in values:
        d = ((d ^ v) * PRIME) & MASK
    return sum(values), d


def _source(service, data):
    inst = Instance(service, Wasi.create(["svc"], {}, [Preopen(str(data), "/data")]))
    inst.initialize()
    assert inst.call("open_journal") == 1
    return inst


def _move(stream: PageStream, sink: PageSink):
    r = stream.next_round()
    for chunk in r.chunks:
        sink.apply(chunk)
    return r


def test_service_moves_in_rounds_and_keeps_its_state_and_files(service, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    values = [(i * 2654435761) & 0xFFFFFFFF for i in range(30000)]
    src = _source(service, data)
    for v in values[:20000]:
        src.call("push", v)
    stream = PageStream(src.memory_view)
    target = Instance(service, Wasi.create(["placeholder"]))  # prepared early
    sink = PageSink(target)
    first = _move(stream, sink)
    for v in values[20000:25000]:  # the source goes on between rounds
        src.call("push", v)
    second = _move(stream, sink)
    assert 0 < second.pages < first.pages  # only what changed
    for v in values[25000:27000]:
        src.call("push", v)
    src.call("flush_journal")
    last = _move(stream, sink)  # the source is stopped now (between calls)
    state = service_state(src, stream)
    src.close()
    assert len(state) < 64 << 10 and last.pages <= second.pages
    moved = finish_service(sink, state, dirs={"/data": str(data)})
    for v in values[27000:]:
        moved.call("push", v)
    moved.call("flush_journal")
    total, digest = _expected(values)
    assert moved.call("sum") == total and moved.call("digest") & MASK == digest
    assert (data / "journal.txt").read_text() == "".join(f"push {v}\n" for v in values)
    moved.close()


def test_command_moves_while_it_runs_and_resumes_byte_identical(tmp_path):
    compute = build("snap_compute")
    ref = fog("run", compute, "40")
    assert ref.returncode == 3, ref.stderr
    rw = make_checkpointable(compute, progress=False)
    loaded = load_module(rw.path, settings_for(Limits()))
    out1, out2 = open(tmp_path / "out1", "wb"), open(tmp_path / "out2", "wb")
    try:
        src = Session(rw, loaded, Wasi.create(["snap_compute", "40"], stdio=(0, out1.fileno(), 2)),
                      options=CheckpointOptions(countdown=4096))
        src.reserve_buffer()
        stream = PageStream(src.view)
        target = Session(rw, loaded, Wasi.create(["placeholder"]),
                         options=CheckpointOptions(countdown=4096))
        sink = PageSink(target.inst)
        result: list = []
        runner = threading.Thread(target=lambda: result.append(src.run()))
        runner.start()
        rounds = [_move(stream, sink) for _ in range(3)]  # while it computes
        src.halt()
        runner.join(60)
        assert src.stopped and result[0].exit_code == 0
        _move(stream, sink)  # the last delta
        state = command_state(src, stream)
        finish_command(target, sink, state, stdio=(0, out2.fileno(), 2))
        assert target.run().exit_code == 3
        assert rounds[0].pages > 0
    finally:
        out1.close()
        out2.close()
    moved = (tmp_path / "out1").read_bytes() + (tmp_path / "out2").read_bytes()
    assert moved == ref.stdout.encode()


# -- untrusted on the receiving side ----------------------------------------------------


@pytest.fixture
def pair(service, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    src = _source(service, data)
    for v in range(5000):
        src.call("push", v)
    stream = PageStream(src.memory_view)
    sink = PageSink(Instance(service, Wasi.create(["placeholder"])))
    yield src, stream, sink, data
    src.close()
    sink.inst.close()


def test_tampered_chunk_is_refused_and_changes_nothing(pair):
    _src, stream, sink, _data = pair
    chunk = bytearray(stream.next_round().chunks[0])
    chunk[len(chunk) // 2] ^= 1
    before = bytes(sink.inst.memory_view())
    with pytest.raises(SnapshotError, match="does not match its hash"):
        sink.apply(bytes(chunk))
    assert bytes(sink.inst.memory_view()) == before and sink.have == {}


def _rechunk(chunk: bytes, edit, data: bytes | None = None) -> bytes:
    """A chunk re-made by the chunk writer after its header was edited (a forger's)."""
    import hashlib
    import struct

    from foglayer.snapshot._precopy import _HEAD

    _m, _v, n = _HEAD.unpack_from(chunk, 0)
    head = json.loads(chunk[_HEAD.size:_HEAD.size + n])
    body = chunk[_HEAD.size + n:-32] if data is None else data
    edit(head)
    raw = json.dumps(head).encode()
    out = struct.pack("<8sII", b"FOGPAGE\0", 1, len(raw)) + raw + body
    return out + hashlib.sha256(out).digest()


def test_forged_chunks_are_refused_in_one_line(pair):
    from _crafted import zstd_bomb

    _src, stream, sink, _data = pair
    chunk = stream.next_round().chunks[0]
    bomb = zstd_bomb(256 << 20)
    cases = {
        "outside memory": lambda h: h["pages"][0].__setitem__(0, h["memory_pages"]),
        "memory_pages": lambda h: h.__setitem__("memory_pages", 1 << 17),
        "compression": lambda h: h.__setitem__("compression", "xz"),
        "past the chunk": lambda h: h["pages"][0].__setitem__(2, 1 << 20),
    }
    for words, edit in cases.items():
        with pytest.raises(SnapshotError) as e:
            sink.apply(_rechunk(chunk, edit))
        assert "\n" not in str(e.value) and words in str(e.value), str(e.value)
    small = PageSink(Instance(sink.inst.module, Wasi.create(["x"])), max_pages=2)
    with pytest.raises(SnapshotError, match="over the limit"):
        small.apply(chunk)
    small.inst.close()

    def to_bomb(h):
        h["pages"] = [[0, h["pages"][0][1], 0, len(bomb)]]
        h["data_length"] = len(bomb)

    with pytest.raises(SnapshotError, match="64 KiB"):
        sink.apply(_rechunk(chunk, to_bomb, bomb))
    assert sink.have == {}


def test_forged_state_cannot_reach_outside_the_targets_dirs(pair, tmp_path):
    src, stream, sink, data = pair
    for chunk in stream.next_round().chunks:
        sink.apply(chunk)
    state = service_state(src, stream)
    (tmp_path / "canary").write_bytes(b"secret")
    snap = parse_snapshot(state)
    meta = msgspec.to_builtins(snap.meta)
    body = bytes(snap.data)
    snap.close()
    journal = next(d for d in meta["wasi"]["fds"] if d["path"] == "journal.txt")
    journal["path"] = "../canary"
    forged = _reframe(meta, body)
    with pytest.raises(SnapshotError, match="not a plain path"):
        finish_service(sink, forged, dirs={"/data": str(data)})
    journal["path"] = "journal.txt"
    meta["stream_digest"] = "0" * 64  # a chunk missing
    with pytest.raises(SnapshotError, match="not the source's"):
        finish_service(sink, _reframe(meta, body), dirs={"/data": str(data)})
    assert (tmp_path / "canary").read_bytes() == b"secret"


def _reframe(meta: dict, body: bytes) -> bytes:
    import io

    f = io.BytesIO()
    _format.write_parts(f, json.dumps(meta).encode(), [body], sign=False)
    return f.getvalue()


def test_dirty_set_names_only_pages_that_changed(pair):
    src, stream, sink, _data = pair
    for chunk in stream.next_round().chunks:
        sink.apply(chunk)
    assert stream.dirty() == []
    src.call("push", 7)
    dirty = stream.dirty()
    assert 0 < len(dirty) <= 4


def test_forged_command_state_cannot_reach_outside_the_targets_dirs(tmp_path):
    """A live command's state (as a cluster move sends it) with a descriptor pointed outside
    the target's directory: refused, nothing opened; the true one resumes."""
    rw = make_checkpointable(build("cluster_mover"), progress=False)
    loaded = load_module(rw.path, settings_for(Limits()))
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "canary").write_bytes(b"secret")
    src = Session(rw, loaded, Wasi.create(["m", "3", "1"], preopens=[Preopen(str(data), "/data")]))
    stream = PageStream(src.view)
    result: list = []
    runner = threading.Thread(target=lambda: result.append(src.run()))
    runner.start()
    out_txt = data / "out.txt"
    while not (out_txt.exists() and out_txt.read_bytes()):  # past step 0: waiting at gate 1
        threading.Event().wait(0.01)
    src.halt()
    runner.join(60)
    assert src.stopped
    target = Session(rw, loaded, Wasi.create(["placeholder"]))
    sink = PageSink(target.inst)
    _move(stream, sink)
    state = command_state(src, stream)
    snap = parse_snapshot(state)
    meta = msgspec.to_builtins(snap.meta)
    body = bytes(snap.data)
    snap.close()
    out = next(d for d in meta["wasi"]["fds"] if d["path"] == "out.txt")
    out["path"] = "../canary"
    with pytest.raises(SnapshotError, match="not a plain path"):
        finish_command(target, sink, _reframe(meta, body), dirs={"/data": str(data)})
    assert (tmp_path / "canary").read_bytes() == b"secret"
    (data / "go1").touch()
    finish_command(target, sink, state, dirs={"/data": str(data)})
    assert target.run().exit_code == 7
    assert (data / "out.txt").read_text().count("\n") == 3


def test_dirty_scan_in_c_names_the_same_pages_as_the_per_page_path(monkeypatch):
    import mmap

    from foglayer.snapshot import warm_dirty_scan
    from foglayer.snapshot._dirty import differing

    assert warm_dirty_scan()  # ziglang is a dependency: the native scan builds here
    mem, shadow = mmap.mmap(-1, 64 << 16), mmap.mmap(-1, 64 << 16)
    for i, at in enumerate((0, 5 << 16, (6 << 16) - 1, (40 << 16) + 7, (64 << 16) - 1)):
        mem[at] = i + 1
    shadow[9 << 16] = 1
    want = [0, 5, 9, 40, 63]
    assert differing(memoryview(mem), memoryview(shadow), 64) == want
    monkeypatch.setenv("FOG_DIRTY_NATIVE", "0")
    assert differing(memoryview(mem), memoryview(shadow), 64) == want
