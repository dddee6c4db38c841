"""Property tests: whatever a manifest or a node's message says, what comes out is a spec, a
one-line error, or a dropped message that is counted – never a traceback."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
import wasmtime
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foglayer.cluster import ControllerConfig, ManifestError, parse_manifest
from foglayer.cluster._protocol import BadMessage, Heartbeat, Status, decode_node
from foglayer.cluster.controller import Controller

REACTOR = wasmtime.wat2wasm('(module (memory (export "memory") 1) (func (export "_initialize")))')

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20)

FIELDS = ["name", "module", "kind", "args", "env", "secrets", "dirs", "limits", "replicas",
          "restart", "max_restarts", "constraints", "preferences", "memory", "fuel", "timeout",
          "max_fds", "labels", "min_memory", "tee", "arch", "features", "guest", "readonly", "site"]
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=8))
docs = st.recursive(
    st.one_of(scalars, st.sampled_from(["app.wasm", "/data", "/a/b:ro", "16MiB", "service",
                                         "x86_64", "simd", "lots"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(keys, inner, max_size=6)),
    max_leaves=30)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    (d / "app.wasm").write_bytes(bytes(REACTOR))
    return d


def _one_line_or_spec(text: str, base) -> None:
    try:
        m = parse_manifest(text, "app.yaml", base)
    except ManifestError as e:
        assert str(e).startswith("app.yaml") and "\n" not in str(e), repr(str(e))
    else:
        assert m.spec.name and m.spec.digest


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.dictionaries(keys, docs, max_size=8),
       name=st.sampled_from(["app", "App", "a.b", "", "ok-1"]))
def test_any_manifest_document_is_a_spec_or_one_line(base, doc, name):
    doc = {"name": name, "module": "app.wasm", **doc}
    _one_line_or_spec(yaml.safe_dump(doc, allow_unicode=True), base)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_any_manifest_text_is_a_spec_or_one_line(base, text):
    _one_line_or_spec("name: app\nmodule: app.wasm\n" + text, base)
    _one_line_or_spec(text, base)


GOOD_HB = {"name": "n", "boot": "b", "seq": 1, "time": 1.0, "used_memory": 0,
           "caps": {"name": "n", "arch": "x86_64", "max_memory": 1 << 30, "cpus": 2,
                    "features": ["simd"], "tee": [], "labels": {"tier": "edge"},
                    "latency": {"edge": 5.0}, "speed": 1e9, "duty": 1.0},
           "instances": {"i": {"app": "a", "replica": 0, "state": "running"}}}


def _mutate(d: dict, path: list, value) -> dict:
    d = json.loads(json.dumps(d))
    cur = d
    for p in path[:-1]:
        cur = cur.get(p) if isinstance(cur, dict) else None
        if not isinstance(cur, dict):
            return d
    cur[path[-1]] = value
    return d


PATHS = [["name"], ["boot"], ["seq"], ["caps"], ["caps", "max_memory"], ["caps", "cpus"],
         ["caps", "features"], ["caps", "tee"], ["caps", "labels"], ["caps", "latency"],
         ["caps", "speed"], ["caps", "name"], ["instances"], ["instances", "i"],
         ["instances", "i", "replica"], ["instances", "i", "state"], ["used_memory"]]


def _controller() -> Controller:
    c = Controller(ControllerConfig(log=False))
    c.lease = SimpleNamespace(leader=False)  # a standby: decodes and counts, writes nothing
    return c


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(PATHS), value=json_values, raw=st.one_of(st.none(), st.binary(max_size=64)))
def test_any_heartbeat_is_typed_or_dropped_and_counted(path, value, raw):
    data = raw if raw is not None else json.dumps(_mutate(GOOD_HB, path, value)).encode()
    subject = "fog.node.n.hb"
    try:
        hb = decode_node(subject, data, Heartbeat)
    except BadMessage as e:
        assert "\n" not in str(e)
        hb = None
    else:
        assert hb.caps.max_memory >= 0 and isinstance(hb.caps.labels, dict)
    c = _controller()
    msg = SimpleNamespace(subject=subject, data=data, reply="")
    asyncio.run(c._on_heartbeat(msg))
    assert c.dropped["n"] == (hb is None)
    assert ("n" in c.hb) == (hb is not None)
    asyncio.run(c._on_status(SimpleNamespace(subject="fog.node.n.status", data=data, reply="")))
    try:
        decode_node("fog.node.n.status", data, Status)
        bad_status = 0
    except BadMessage:
        bad_status = 1
    assert c.dropped["n"] == (hb is None) + bad_status
