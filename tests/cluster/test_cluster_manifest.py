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


def test_a_minimal_manifest_gets_the_documented_defaults(base):
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


BOMB = """\
name: bomb
module: app.wasm
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_a_yaml_alias_bomb_is_refused_with_one_line(base):
    assert len(BOMB) < 600  # 9^9 strings once expanded
    with pytest.raises(ManifestError) as e:
        parse(BOMB, base)
    assert str(e.value) == ("app.yaml: not valid YAML: line 4, column 8: aliases (*name) are not "
                            "allowed in a manifest")


def test_a_manifest_over_a_mebibyte_is_refused(base):
    with pytest.raises(ManifestError, match="a manifest is at most 1 MiB"):
        parse("name: a\nmodule: app.wasm\n#" + "x" * (1 << 20), base)


@pytest.mark.parametrize("dirs,error", [
    ('["/a/b:ro", "/a_b"]', None),  # different guest paths: different host directories
    ('["/a/b:ro", "//a//b//"]', "dirs[1]: '//a//b//' is the same directory as dirs[0] (/a/b)"),
    ('["/a/./b", "/a/b:ro"]', "dirs[1]: '/a/b' is the same directory as dirs[0] (/a/b)"),
    ('["/a", "/a/b:ro"]', "dirs[1]: '/a/b' overlaps dirs[0] (/a)"),
    ('["/a/../b"]', "dirs[0]: invalid guest path '/a/../b'"),
])
def test_colliding_dirs_are_refused(base, dirs, error):
    text = f"name: a\nmodule: app.wasm\ndirs: {dirs}\n"
    if error is None:
        assert [d.guest for d in parse(text, base).spec.dirs] == ["/a/b", "/a_b"]
        return
    with pytest.raises(ManifestError) as e:
        parse(text, base)
    assert str(e.value).startswith(f"app.yaml: {error}"), str(e.value)


def test_distinct_guest_paths_get_distinct_volumes_on_the_node(base):
    s = parse('name: a\nmodule: app.wasm\ndirs: ["/a/b:ro", "/a_b", "/a%2Fb"]\n', base).spec
    volumes = [d.volume for d in s.dirs]  # the agent's directory names
    assert len(set(volumes)) == 3 and all("/" not in v for v in volumes), volumes


def test_secrets_and_the_descriptor_limit(base):
    s = parse("name: a\nmodule: app.wasm\nsecrets: [TOKEN, {name: db, env: true}]\n"
              "limits: {max_fds: 64}\n", base).spec
    assert [(r.name, r.env) for r in s.secrets] == [("TOKEN", False), ("db", True)]
    assert s.needs_trust and s.limits.max_fds == 64
    for bad, why in (("{TOKEN: x}", "expected array"), ("[TOKEN, TOKEN]", "named twice"),
                     ("['../x']", "secrets")):
        with pytest.raises(ManifestError, match=why):
            parse(f"name: a\nmodule: app.wasm\nsecrets: {bad}\n", base)
    for bad, why in (("0", "must be greater than or equal to 8"), ("100000", "must be at most")):
        with pytest.raises(ManifestError, match=f"limits.max_fds: {why}"):
            parse(f"name: a\nmodule: app.wasm\nlimits: {{max_fds: {bad}}}\n", base)
    with pytest.raises(ManifestError, match="limits.fuel: must be at most"):
        parse(f"name: a\nmodule: app.wasm\nlimits: {{fuel: {1 << 64}}}\n", base)


@pytest.mark.parametrize("bad", ["['../x']", "[{name: a, env: maybe}]"])
def test_a_bad_secret_entry_is_named_as_a_secret_not_a_size(base, bad):
    with pytest.raises(ManifestError) as e:
        parse(f"name: a\nmodule: app.wasm\nsecrets: {bad}\n", base)
    assert "secrets[0]: expected a secret's name" in str(e.value) and "size" not in str(e.value)


def test_an_unknown_tee_is_refused_at_deploy_not_left_pending(base):
    with pytest.raises(ManifestError, match=r"constraints.tee: must be one of any, sim, tpm, tsm"):
        parse("name: a\nmodule: app.wasm\nconstraints: {tee: quantum}\n", base)
    assert parse("name: a\nmodule: app.wasm\nconstraints: {tee: tpm}\n", base).spec.constraints.tee == "tpm"
