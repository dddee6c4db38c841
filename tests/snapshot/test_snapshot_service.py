"""Service (reactor) instances: snapshot between two calls, restore into a fresh instance."""

from __future__ import annotations

import pytest
from _programs import build

from foglayer.runtime import Instance, load_module
from foglayer.snapshot import SnapshotError, restore_instance, snapshot_instance
from foglayer.wasi import Preopen, Wasi

FNV, PRIME, MASK = 1469598103934665603, 1099511628211, (1 << 64) - 1


@pytest.fixture(scope="module")
def service():
    return load_module(build("snap_service", "-mexec-model=reactor"))


def _expected(values):
    d = FNV
    for v in values:
        d = ((d ^ v) * PRIME) & MASK
    return len(values), sum(values), d


def test_state_built_over_many_calls_survives_snapshot_and_restore(service, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    values = [(i * 2654435761) & 0xFFFFFFFF for i in range(3000)]
    wasi = Wasi.create(["svc"], {}, [Preopen(str(data), "/data")])
    inst = Instance(service, wasi)
    inst.initialize()
    assert inst.call("open_journal") == 1
    for v in values[:2000]:
        inst.call("push", v)
    inst.call("flush_journal")
    blob = snapshot_instance(inst)
    inst.close()

    restored = restore_instance(service, blob)
    for v in values[2000:]:
        n = restored.call("push", v)
    restored.call("flush_journal")
    count, total, digest = _expected(values)
    assert n == count
    assert restored.call("sum") == total
    assert restored.call("digest") & MASK == digest  # i64 comes back signed
    # The journal file stayed open across the restore, at the right offset.
    assert (data / "journal.txt").read_text() == "".join(f"push {v}\n" for v in values)
    restored.close()


def test_restore_into_another_directory(service, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    inst = Instance(service, Wasi.create(["svc"], {}, [Preopen(str(a), "/data")]))
    inst.initialize()
    inst.call("open_journal")
    for v in range(100):
        inst.call("push", v)
    inst.call("flush_journal")
    blob = snapshot_instance(inst)
    inst.close()
    a.rename(b)
    restored = restore_instance(service, blob, dirs={"/data": str(b)})
    restored.call("push", 100)
    restored.call("flush_journal")
    assert restored.call("sum") == sum(range(101))
    assert (b / "journal.txt").read_text().splitlines()[-1] == "push 100"
    restored.close()


def test_bad_service_snapshots_are_refused(service, tmp_path):
    inst = Instance(service, Wasi.create(["svc"]))
    inst.initialize()
    inst.call("push", 1)
    blob = snapshot_instance(inst)
    inst.close()
    other = load_module(build("rt_counter", "-mexec-model=reactor"))
    with pytest.raises(SnapshotError, match="not the module of this snapshot"):
        restore_instance(other, blob)
    with pytest.raises(SnapshotError, match="corrupted"):
        restore_instance(service, blob[:100] + bytes([blob[100] ^ 1]) + blob[101:])
    with pytest.raises(SnapshotError, match="truncated"):
        restore_instance(service, blob[:-20])
