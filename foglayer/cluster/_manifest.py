"""App manifests: a YAML file validated against a JSON schema, normalized into an app spec.

```yaml
name: kv                       # a-z, 0-9, '-', '_'
module: kvstore.wasm           # a local path (relative to the manifest); a .c file is built
kind: service                  # command (runs _start to completion) | service (a reactor)
args: [--verbose]
env: {LEVEL: debug}
secrets: [db_password, {name: API_TOKEN, env: true}]   # `fog secret put`; released only
                               # after an affirming attestation: /run/secrets/NAME (or env)
dirs: ["/data", "/cache:ro"]   # per-instance directories on the node (or {guest, readonly})
limits: {memory: 16MiB, fuel: 1000000000, timeout: 30, max_fds: 256}
replicas: 1
restart: on-failure            # always | on-failure | never (services default to always)
max_restarts: 10
on_partition: stay             # stay (default) | move: start it elsewhere while its site is cut off
mobility: live                 # live (services' default): fog drain / fog migrate move it running
                               # (a command runs checkpointable: its module rewritten at deploy);
                               # restart (commands' default): it restarts elsewhere
snapshots: after-invoke        # or {every: 5}: a service's state survives its node (a call is
                               # acknowledged once its snapshot is stored; or at most 5 s lost)
tenant: acme                   # who its usage is billed to (fog usage); default: default
constraints: {labels: {tier: edge}, min_memory: 8MiB, tee: tpm, arch: x86_64,
              features: [simd]}
preferences: {site: factory-1}          # or {low_latency_to: factory-1}
```

A bad field is a :class:`ManifestError` whose one line names the field and the reason. The
result is a typed :class:`~foglayer.cluster._spec.AppSpec`. YAML aliases are refused (a few
hundred bytes of nested aliases expand to gigabytes), and so is a manifest over 1 MiB.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from foglayer.cluster._protocol import NAME_RE
from foglayer.cluster._spec import (
    MAX_FDS,
    MAX_REPLICAS,
    SECRET_NAME,
    AppSpec,
    Constraints,
    DirSpec,
    Limits,
    Preferences,
    SecretRef,
    Snapshots,
)
from foglayer.errors import FogError
from foglayer.runtime import WASM_BASELINE as BASELINE  # noqa: F401 - the cluster's name
from foglayer.runtime import WASM_FEATURES as FEATURES  # noqa: F401 - the cluster's name
from foglayer.runtime import ModuleError
from foglayer.runtime import required_features as runtime_features
from foglayer.trust import BACKENDS

MAX_MANIFEST = 1 << 20
ARCHES = ("x86_64", "aarch64", "arm", "riscv64", "ppc64le", "s390x")

_SIZE = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1}]}
_NAME = {"type": "string", "pattern": f"^{NAME_RE.pattern}$"}
_LABELS = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]},
           "propertyNames": {"pattern": r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$"}}

_ENV = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]},
        "propertyNames": {"pattern": r"^[^=\s]+$"}}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "module"],
    "properties": {
        "name": _NAME,
        "module": {"type": "string", "minLength": 1},
        "kind": {"enum": ["command", "service"]},
        "args": {"type": "array", "items": {"type": ["string", "number"]}},
        "env": _ENV,
        "secrets": {"type": "array", "maxItems": 64, "items": {"oneOf": [
            {"type": "string", "pattern": SECRET_NAME},
            {"type": "object", "additionalProperties": False, "required": ["name"],
             "properties": {"name": {"type": "string", "pattern": SECRET_NAME},
                            "env": {"type": "boolean"}}}]}},
        "dirs": {"type": "array", "items": {"oneOf": [
            {"type": "string", "pattern": r"^/[^:]*(:ro)?$"},
            {"type": "object", "additionalProperties": False, "required": ["guest"],
             "properties": {"guest": {"type": "string", "pattern": "^/"},
                            "readonly": {"type": "boolean"}}}]}},
        "limits": {"type": "object", "additionalProperties": False, "properties": {
            "memory": _SIZE,
            "fuel": {"type": "integer", "minimum": 1, "maximum": (1 << 63) - 1},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 366 * 86400},
            "max_fds": {"type": "integer", "minimum": 8, "maximum": MAX_FDS}}},
        "replicas": {"type": "integer", "minimum": 0, "maximum": MAX_REPLICAS},
        "restart": {"enum": ["always", "on-failure", "never"]},
        "max_restarts": {"type": "integer", "minimum": 0},
        "on_partition": {"enum": ["stay", "move"]},
        "mobility": {"enum": ["live", "restart"]},
        "snapshots": {"oneOf": [
            {"enum": ["after-invoke"]},
            {"type": "object", "additionalProperties": False, "required": ["every"],
             "properties": {"every": {"type": "number", "minimum": 0.05, "maximum": 86400}}}]},
        "tenant": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
        "constraints": {"type": "object", "additionalProperties": False, "properties": {
            "labels": _LABELS,
            "min_memory": _SIZE,
            # a backend whose affirming attestation the node must have, or any of them
            "tee": {"enum": ["any", *BACKENDS]},
            "arch": {"enum": list(ARCHES)},
            "features": {"type": "array", "items": {"type": "string"}}}},
        "preferences": {"type": "object", "additionalProperties": False, "properties": {
            "site": {"type": "string", "minLength": 1},
            "low_latency_to": {"type": "string", "minLength": 1}}},
    },
}


class ManifestError(FogError):
    """A manifest that cannot be deployed: the message names the file, the field and why.

    Always one line: control characters from the file (a key with a newline) are escaped."""

    def __init__(self, message: str) -> None:
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in message))


def _where(path: list) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _reason(err) -> tuple[list, str]:
    path = list(err.absolute_path)
    v, val = err.validator, err.validator_value
    if v == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return path + [extra[0]] if extra else path, "unknown field"
    if v == "required":
        missing = next((r for r in val if r not in err.instance), val[0])
        return path + [missing], "required field is missing"
    if v == "enum":
        return path, f"must be one of {', '.join(map(str, val))} (got {err.instance!r})"
    if v == "type":
        kinds = val if isinstance(val, list) else [val]
        return path, f"expected {' or '.join(kinds)}, got {type(err.instance).__name__} {err.instance!r}"
    if v == "pattern":
        if path and path[0] == "name":
            return path, f"invalid name {err.instance!r}: use a-z, 0-9, '-' and '_'"
        return path, f"invalid value {err.instance!r}"
    if v == "propertyNames":
        return path, f"invalid key {err.instance!r}" if not isinstance(err.instance, dict) else "invalid key"
    if v in ("minimum", "exclusiveMinimum"):
        return path, f"must be greater than {'or equal to ' if v == 'minimum' else ''}{val} (got {err.instance})"
    if v == "maximum":
        return path, f"must be at most {val} (got {err.instance})"
    if v == "oneOf":
        if path and path[0] == "snapshots":
            return path, f"expected after-invoke or {{every: SECONDS}}, got {err.instance!r}"
        if path and path[0] == "dirs":
            return path, f"expected \"/guest\", \"/guest:ro\" or {{guest, readonly}}, got {err.instance!r}"
        if path and path[0] == "secrets":
            return path, ("expected a secret's name (letters, digits, '_', '.', '-') or "
                          f"{{name, env: true|false}}, got {err.instance!r}")
        return path, f"expected a size like 16MiB or a number of bytes, got {err.instance!r}"
    if v == "minLength":
        return path, "must not be empty"
    return path, err.message


@functools.cache
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(SCHEMA)


def validate(doc: object, where: str = "manifest") -> None:
    """Raise :class:`ManifestError` for the first problem with ``doc`` (a parsed manifest)."""
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: expected a mapping of fields (name, module, ...), "
                            f"got {type(doc).__name__}")
    errors = sorted(_validator().iter_errors(doc), key=lambda e: (list(e.absolute_path), e.validator))
    if errors:
        import jsonschema

        err = jsonschema.exceptions.best_match(errors)
        # best_match prefers the deepest oneOf branch; report on the field itself.
        while err.parent is not None and err.parent.validator == "oneOf":
            err = err.parent
        path, why = _reason(err)
        raise ManifestError(f"{where}: {_where(path)}: {why}")


def _size(value, field: str, where: str) -> int:
    from foglayer.runtime import parse_size

    if isinstance(value, int):
        return value
    try:
        return parse_size(value)
    except FogError:
        raise ManifestError(f"{where}: {field}: invalid size {value!r}: expected a number with "
                            "an optional unit, like 16MiB") from None


@dataclass
class Manifest:
    """A validated manifest: the spec to store, and the module bytes to upload."""

    spec: AppSpec
    wasm: bytes
    path: Path  # the module's
    where: str = "manifest"  # the manifest's name, for the errors found after parsing

    @property
    def name(self) -> str:
        return self.spec.name


def _loader():
    import yaml

    class NoAliases(yaml.SafeLoader):
        """A SafeLoader without aliases: ``*name`` would let a tiny file expand to gigabytes."""

        def compose_node(self, parent, index):  # type: ignore[override]
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not allowed in a manifest",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)

    return NoAliases


def _yaml(text: str, where: str) -> object:
    import yaml

    if len(text) > MAX_MANIFEST:
        raise ManifestError(f"{where}: {len(text)} bytes: a manifest is at most "
                            f"{MAX_MANIFEST >> 20} MiB")
    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ManifestError(f"{where}: not valid YAML: {at}{problem}") from None
    except RecursionError:
        raise ManifestError(f"{where}: not valid YAML: nested too deeply") from None


def normalize_guest(path: str) -> str:
    """A guest directory in one spelling: ``//a//b/`` and ``/a/b`` are the same directory."""
    return "/" + "/".join(p for p in re.split(r"/+", path) if p not in ("", "."))


def _dirs(items: list, where: str) -> list[DirSpec]:
    out: list[DirSpec] = []
    for i, d in enumerate(items):
        if isinstance(d, str):
            guest, ro = (d[:-3], True) if d.endswith(":ro") else (d, False)
        else:
            guest, ro = d["guest"], bool(d.get("readonly", False))
        norm = normalize_guest(guest)
        if norm == "/" or ".." in norm.split("/") or "\0" in norm:
            raise ManifestError(f"{where}: dirs[{i}]: invalid guest path {guest!r}")
        for j, other in enumerate(out):
            if other.guest == norm:
                raise ManifestError(f"{where}: dirs[{i}]: {guest!r} is the same directory as "
                                    f"dirs[{j}] ({other.guest})")
            inner, outer = sorted((norm, other.guest), key=len, reverse=True)
            if inner.startswith(outer + "/"):
                raise ManifestError(f"{where}: dirs[{i}]: {guest!r} overlaps dirs[{j}] "
                                    f"({other.guest}): give each directory its own path")
        out.append(DirSpec(norm, ro))
    return out


def parse(text: str, where: str = "manifest", base: Path | None = None) -> Manifest:
    """Parse and validate manifest ``text``; the module is read (or built) from ``base``."""
    doc = _yaml(text, where)
    validate(doc, where)
    assert isinstance(doc, dict)
    kind = doc.get("kind", "command")
    limits = doc.get("limits", {})
    cons = doc.get("constraints", {})
    memory = _size(limits["memory"], "limits.memory", where) if "memory" in limits else None
    min_memory = _size(cons["min_memory"], "constraints.min_memory", where) if "min_memory" in cons else None
    if memory is not None and memory < 64 << 10:
        raise ManifestError(f"{where}: limits.memory: must be at least 64KiB (one Wasm page)")
    dirs = _dirs(doc.get("dirs", []), where)
    module_path = Path(doc["module"])
    if base is not None and not module_path.is_absolute():
        module_path = base / module_path
    wasm = _read_module(module_path, kind, where)
    if kind == "command" and doc.get("mobility") == "live":
        wasm = _checkpointable(wasm, where)
    features = sorted(set(required_features(wasm, where)) | set(cons.get("features", [])))
    initial = initial_memory(wasm, where)
    if memory is not None and initial > memory:
        from foglayer.runtime import format_size

        raise ManifestError(f"{where}: limits.memory: {format_size(memory)} is less than the "
                            f"module's initial memory ({format_size(initial)})")
    spec = AppSpec(
        name=doc["name"],
        kind=kind,
        module=module_path.name,
        digest=hashlib.sha256(wasm).hexdigest(),
        size=len(wasm),
        initial_memory=initial,
        args=[str(a) for a in doc.get("args", [])],
        env={k: _scalar(v) for k, v in doc.get("env", {}).items()},
        secrets=_secrets(doc.get("secrets", []), where),
        dirs=dirs,
        limits=Limits(memory=memory, fuel=limits.get("fuel"), timeout=limits.get("timeout"),
                      **({"max_fds": limits["max_fds"]} if "max_fds" in limits else {})),
        replicas=doc.get("replicas", 1),
        restart=doc.get("restart", "always" if kind == "service" else "on-failure"),
        max_restarts=doc.get("max_restarts", 10),
        on_partition=doc.get("on_partition", "stay"),
        mobility=doc.get("mobility"),
        snapshots=_snapshots(doc.get("snapshots"), doc, kind, where),
        tenant=doc.get("tenant", "default"),
        constraints=Constraints(
            labels={k: _scalar(v) for k, v in cons.get("labels", {}).items()},
            min_memory=min_memory,
            tee=cons.get("tee"),
            arch=cons.get("arch"),
            features=features,
        ),
        preferences=Preferences(**doc.get("preferences", {})),
    )
    return Manifest(spec, wasm, module_path, where)


def _checkpointable(wasm: bytes, where: str) -> bytes:
    """A command with ``mobility: live`` runs its checkpointable rewrite (safepoints,
    Asyncify; made once, cached by content): every node runs these very bytes, so a
    snapshot taken on one resumes on another."""
    from foglayer.snapshot import RewriteError, make_checkpointable

    try:
        return make_checkpointable(wasm, progress=False).path.read_bytes()
    except RewriteError as e:
        raise ManifestError(f"{where}: mobility: live: {e}") from None


def _snapshots(value, doc: dict, kind: str, where: str) -> Snapshots | None:
    if value is None:
        return None
    if kind != "service":
        raise ManifestError(f"{where}: snapshots: only a service's state is snapshotted "
                            "(a command restarts)")
    if doc.get("secrets") or doc.get("constraints", {}).get("tee"):
        raise ManifestError(f"{where}: snapshots: not for an app with secrets or a TEE in this "
                            "version (its state would be stored unsealed)")
    if isinstance(value, str):
        return Snapshots("after-invoke")
    return Snapshots("every", float(value["every"]))


def _secrets(items: list, where: str) -> list[SecretRef]:
    refs = [SecretRef(i) if isinstance(i, str) else SecretRef(i["name"], i.get("env", False))
            for i in items]
    names = [r.name for r in refs]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ManifestError(f"{where}: secrets: {dup!r} is named twice")
    return refs


def _scalar(v) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def load(path: str | os.PathLike) -> Manifest:
    """Read and validate the manifest at ``path``."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_MANIFEST + 1)
        text = raw.decode()
    except FileNotFoundError:
        raise ManifestError(f"{p}: no such manifest file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{p}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    return parse(text, str(p), p.parent)


def _read_module(path: Path, kind: str, where: str) -> bytes:
    if path.suffix == ".c":
        from foglayer.toolchain import compile_c

        flags = ["-O2", "-s", "-Wl,-z,stack-size=1048576"] + (
            ["-mexec-model=reactor"] if kind == "service" else [])
        try:
            path = compile_c([path], flags=flags)
        except FogError as e:
            raise ManifestError(f"{where}: module: {e}") from None
    try:
        wasm = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"{where}: module: {path}: no such file") from None
    except IsADirectoryError:
        raise ManifestError(f"{where}: module: {path}: is a directory") from None
    except OSError as e:
        raise ManifestError(f"{where}: module: {path}: cannot read: {e.strerror}") from None
    if wasm[:4] != b"\0asm":
        raise ManifestError(f"{where}: module: {path}: not a WebAssembly module (bad magic number)")
    return wasm


def required_features(wasm: bytes, where: str = "module") -> list[str]:
    """The Wasm features beyond the baseline that ``wasm`` uses (probed by the runtime)."""
    try:
        return runtime_features(wasm)
    except ModuleError as e:
        raise ManifestError(f"{where}: module: {str(e).removeprefix('module: ')}") from None


def initial_memory(wasm: bytes, where: str = "module") -> int:
    """The bytes of linear memory the module starts with (see :func:`foglayer.wasm.initial_memory`)."""
    from foglayer.wasm import WasmFormatError
    from foglayer.wasm import initial_memory as read

    try:
        return read(wasm)
    except WasmFormatError as e:
        raise ManifestError(f"{where}: module: {e}") from None
