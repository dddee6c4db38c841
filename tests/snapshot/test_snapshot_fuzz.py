"""Property: whatever a snapshot's metadata says, inspect and restore end in one line.

Real snapshots (a command and a service), their metadata mutated at random places with
random JSON (hypothesis), re-framed by the format's writer. Restore goes as far as it
can without running the guest: instance, memory, globals, WASI state, open files.
"""

from __future__ import annotations

import copy
import io
import json
import os

import pytest
from _crafted import meta_dict
from _programs import build
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from foglayer.errors import FogError
from foglayer.runtime import Instance, load_module
from foglayer.snapshot import (
    CheckpointOptions,
    _format,
    open_session,
    parse_snapshot,
    restore_instance,
    run_checkpointable,
    snapshot_instance,
)
from foglayer.snapshot._inspect import _describe
from foglayer.wasi import Preopen, Wasi

DELETE = object()
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-(1 << 70), 1 << 70)
    | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                  max_size=3),
    max_leaves=6)
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def command(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    (d / "data").mkdir()
    path = d / "c.fogsnap"
    with open(os.devnull, "wb") as null:
        run_checkpointable(build("snap_compute"), ["6"], stdio=(0, null.fileno(), 2),
                           preopens=[Preopen(str(d / "data"), "/data")], progress=False,
                           options=CheckpointOptions(path=str(path), countdown=4096,
                                                     after_safepoints=5, stop_after=True))
    return d, path


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzzsvc")
    (d / "data").mkdir()
    module = load_module(build("snap_service", "-mexec-model=reactor"))
    inst = Instance(module, Wasi.create(["svc"], {}, [Preopen(str(d / "data"), "/data")]))
    inst.initialize()
    inst.call("open_journal")
    for v in range(50):
        inst.call("push", v)
    inst.call("flush_journal")
    path = d / "s.fogsnap"
    path.write_bytes(snapshot_instance(inst))
    inst.close()
    return d, path, module


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _similar(value):
    """Values of the same JSON type as ``value``: they get past the types, into the checks."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(-2, 2).map(lambda d: value + d) | st.integers(-(1 << 64), 1 << 64) \
            | st.sampled_from([0, 1, 65536, value * 2, value // 2, (1 << 32) - 1])
    if isinstance(value, str):
        return st.text(max_size=12) | st.sampled_from(["..", "/", "../x", "a/../..", "/etc"])
    return JSON


def _mutate(data, base: dict) -> bytes:
    meta = copy.deepcopy(base)
    paths = [p for p in _paths(base) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        orig = base
        try:
            for key in path:
                orig = orig[key]
        except (KeyError, IndexError, TypeError):
            orig = None
        value = data.draw(_similar(orig) | JSON | st.just(DELETE))
        node = meta
        try:
            for key in path[:-1]:
                node = node[key]
            if value is DELETE:
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation moved it
    f = io.BytesIO()
    snap = parse_snapshot(_SOURCE[id(base)])
    body = bytes(snap.data)
    snap.close()
    _format.write_parts(f, json.dumps(meta).encode(), [body], sign=False)
    return f.getvalue()


_SOURCE: dict[int, bytes] = {}


def _one_line_only(fn) -> None:
    try:
        fn()
        event("restored")
    except FogError as e:
        assert "\n" not in str(e) and str(e), repr(e)
        event("refused: " + ("bad metadata" if "bad metadata" in str(e) else "later"))


def _dirs(snap, root) -> dict[str, str]:
    out = {}
    for k, p in enumerate(snap.meta.wasi.preopens):
        d = root / f"p{k}"
        d.mkdir(exist_ok=True)
        out[p.guest] = str(d)
    return out


@FUZZ
@given(data=st.data())
def test_any_command_metadata_gives_one_line_or_restores(command, tmp_path, data):
    root, path = command
    base = meta_dict(path)
    _SOURCE[id(base)] = path.read_bytes()
    raw = _mutate(data, base)

    def attempt() -> None:
        snap = parse_snapshot(raw, "fuzzed")
        try:
            _describe(snap, len(raw))
            session = open_session(snap, dirs=_dirs(snap, tmp_path), force=True)
            session.inst.wasi.close()
            session.inst.close()
        finally:
            snap.close()

    _one_line_only(attempt)


@FUZZ
@given(data=st.data())
def test_any_service_metadata_gives_one_line_or_restores(service, tmp_path, data):
    root, path, module = service
    base = meta_dict(path)
    _SOURCE[id(base)] = path.read_bytes()
    raw = _mutate(data, base)

    def attempt() -> None:
        snap = parse_snapshot(raw, "fuzzed")
        dirs = _dirs(snap, tmp_path)
        _describe(snap, len(raw))
        snap.close()
        inst = restore_instance(module, raw, dirs=dirs, force=True)
        inst.wasi.close()
        inst.close()

    _one_line_only(attempt)
