"""Manifests: the schema, one-line errors naming the field, and the module checks."""

from __future__ import annotations

import pytest
import wasmtime

from foglayer.cluster import ManifestError, load_manifest, parse_manifest
from foglayer.cluster._manifest import initial_memory, required_features
from foglayer.cluster._spec import DEFAULT_MAX_FDS, DirSpec, Limits

REACTOR = wasmtime.wat2wasm('(module (memory (export "memory") 2) (func (export "_initialize")))')
SIMD = wasmtime.wat2wasm('(module (memory (export "memory") 1) '
                         '(func (export "f") (result v128) v128.const i32x4 1 2 3 4))')


@pytest.fixture()
def base(tmp_path):
    (tmp_path / "app.wasm").write_bytes(bytes(REACTOR))
    (tmp_path / "simd.wasm").write_bytes(bytes(SIMD))
    (tmp_path / "text.wasm").write_text("hello")
    return tmp_path


def parse(text: str, base):
    return parse_manifest(text, "app.yaml", base)


def test_a_full_manifest_normalizes(base):
    m = parse("""
name: kv
module: app.wasm
kind: service
args: [--x, 3]
env: {A: 1, B: true}
dirs: ["/data", "/cache:ro", {guest: /logs, readonly: false}]
limits: {memory: 8MiB, fuel: 1000, timeout: 2.5}
replicas: 2
restart: never
constraints: {labels: {tier: edge}, min_memory: 1MiB, tee: any, arch: x86_64, features: [simd]}
preferences: {low_latency_to: iot}
""", base)
    s = m.spec
    assert s.args == ["--x", "3"] and s.env == {"A": "1", "B": "true"}
    assert s.dirs == [DirSpec("/data", False), DirSpec("/cache", True), DirSpec("/logs", False)]
    assert s.limits == Limits(memory=8 << 20, fuel=1000, timeout=2.5)
    assert s.constraints.features == ["simd"] and s.constraints.min_memory == 1 << 20
    assert s.restart == "never" and s.replicas == 2 and len(s.digest) == 64
    assert s.initial_memory == 2 * 65536


def test_defaults(base):
    s = parse("name: a\nmodule: app.wasm\n", base).spec
    assert s.kind == "command" and s.restart == "on-failure" and s.replicas == 1
    assert s.limits.max_fds == DEFAULT_MAX_FDS
    s = parse("name: a\nmodule: app.wasm\nkind: service\n", base).spec
    assert s.restart == "always"


@pytest.mark.parametrize("text,error", [
    ("name: KV\nmodule: app.wasm", "app.yaml: name: invalid name 'KV'"),
    ("module: app.wasm", "app.yaml: name: required field is missing"),
    ("name: a\nmodule: app.wasm\nkind: job", "app.yaml: kind: must be one of command, service (got 'job')"),
    ("name: a\nmodule: app.wasm\nlimits: {memory: lots}", "app.yaml: limits.memory: invalid size 'lots'"),
    ("name: a\nmodule: app.wasm\nlimits: {memry: 1}", "app.yaml: limits.memry: unknown field"),
    ("name: a\nmodule: app.wasm\ncolour: red", "app.yaml: colour: unknown field"),
    ("name: a\nmodule: app.wasm\nreplicas: -1", "app.yaml: replicas: must be greater than or equal to 0"),
    ("name: a\nmodule: app.wasm\nreplicas: two", "app.yaml: replicas: expected integer"),
    ("name: a\nmodule: app.wasm\ndirs: [data]", "app.yaml: dirs[0]: expected"),
    ("name: a\nmodule: app.wasm\nconstraints: {arch: mips}", "app.yaml: constraints.arch: must be one of"),
    ("name: a\nmodule: app.wasm\nconstraints: {labels: {tier: [1]}}", "app.yaml: constraints.labels.tier:"),
    ("name: a\nmodule: app.wasm\nlimits: {timeout: 0}", "app.yaml: limits.timeout: must be greater than 0"),
    ("name: a\nmodule: app.wasm\nlimits: {memory: 64KiB}", "app.yaml: limits.memory: 64.0 KiB is less than"),
    ("name: a\nmodule: nope.wasm", "app.yaml: module: "),
    ("name: a\nmodule: text.wasm", "not a WebAssembly module"),
    ("name: a\n module: x", "app.yaml: not valid YAML: line 2"),
    ("- a", "app.yaml: expected a mapping of fields"),
])
def test_bad_manifests_name_the_field(base, text, error):
    with pytest.raises(ManifestError) as e:
        parse(text, base)
    assert error in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_manifest_file(tmp_path):
    with pytest.raises(ManifestError, match="no such manifest file"):
        load_manifest(tmp_path / "nope.yaml")


def test_required_features_are_detected(base):
    assert required_features(bytes(SIMD)) == ["simd"]
    assert required_features(bytes(REACTOR)) == []
    s = parse("name: a\nmodule: simd.wasm", base).spec
    assert s.constraints.features == ["simd"]


def test_initial_memory_reads_the_memory_section():
    assert initial_memory(bytes(REACTOR)) == 2 * 65536
    imported = wasmtime.wat2wasm('(module (import "env" "memory" (memory 5)) (func))')
    assert initial_memory(bytes(imported)) == 5 * 65536
