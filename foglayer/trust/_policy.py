"""The appraisal policy: which backends are accepted, reference values, maximum evidence age.

A YAML file (``fog policy set FILE``), read with ``yaml.safe_load`` semantics and aliases
refused (no billion-laughs), bounded in size, every field checked::

    backends: [tpm, tsm]        # accepted evidence backends
    allow_sim: false            # sim proves nothing: a policy must opt in to accept it
    max_age: 300                # seconds a nonce and a result stay valid
    modules: any                # or a list of accepted module SHA-256 digests
    tpm:
      pcrs: {0: <hex>, 7: <hex>}   # further PCR reference values (PCR 16 holds the module)
    tsm:
      providers: [tdx_guest]       # accepted configfs-tsm providers
      measurements: [<hex>]        # accepted launch measurements (48-byte hex)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from foglayer.trust._backend import BACKEND_NAMES
from foglayer.trust._errors import PolicyError
from foglayer.trust._keys import sha256

_MAX_POLICY = 256 * 1024
_HEX = re.compile(r"(?:[0-9a-f]{2})+")


class _NoAliasLoader(yaml.SafeLoader):
    """safe_load that refuses anchors and aliases (exponential expansion)."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise PolicyError(f"line {event.start_mark.line + 1}: aliases are not allowed")
        return super().compose_node(parent, index)


@dataclass(frozen=True)
class Policy:
    """An appraisal policy. The default is strict: real backends only, sim refused."""

    backends: tuple[str, ...] = ("tpm", "tsm")
    allow_sim: bool = False
    max_age: float = 300.0
    modules: tuple[str, ...] | None = None          # None: any module digest
    tpm_pcrs: dict[int, str] = field(default_factory=dict)
    tsm_providers: tuple[str, ...] = ()             # empty: any provider
    tsm_measurements: tuple[str, ...] = ()          # empty: any measurement
    source: str = ""                                # the YAML text it came from

    def __post_init__(self) -> None:
        unknown = sorted(set(self.backends) - set(BACKEND_NAMES))
        if unknown:
            raise PolicyError(f"policy: unknown backend {unknown[0]!r} "
                              f"(known: {', '.join(BACKEND_NAMES)})")
        if "sim" in self.backends and not self.allow_sim:
            raise PolicyError("policy: backends lists sim but allow_sim is not true "
                              "(sim proves nothing: opt in explicitly)")
        if not self.max_age > 0:
            raise PolicyError("policy: max_age must be a positive number of seconds")

    @property
    def id(self) -> str:
        """``ear.appraisal-policy-id``: the hash of the policy as written."""
        return "sha256:" + sha256(self.to_yaml().encode()).hex()

    def accepts_sim(self) -> bool:
        return self.allow_sim and "sim" in self.backends

    def to_yaml(self) -> str:
        if self.source:
            return self.source
        doc: dict = {"backends": list(self.backends), "allow_sim": self.allow_sim,
                     "max_age": self.max_age,
                     "modules": "any" if self.modules is None else list(self.modules)}
        if self.tpm_pcrs:
            doc["tpm"] = {"pcrs": dict(self.tpm_pcrs)}
        if self.tsm_providers or self.tsm_measurements:
            doc["tsm"] = {"providers": list(self.tsm_providers),
                          "measurements": list(self.tsm_measurements)}
        return yaml.safe_dump(doc, sort_keys=False)


#: What ``fog up`` uses: sim accepted, and results say it proves nothing.
DEV_POLICY = Policy(backends=("sim", "tpm", "tsm"), allow_sim=True)


def _str_list(value: object, what: str, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > 10_000:
        raise PolicyError(f"policy: {what} must be a list")
    out = []
    for i, v in enumerate(value):
        if not isinstance(v, str) or (pattern and not pattern.fullmatch(v.lower())):
            raise PolicyError(f"policy: {what}[{i}] is not {'hex' if pattern else 'a string'}")
        out.append(v.lower() if pattern else v)
    return tuple(out)


def _section(doc: dict, name: str, keys: set[str]) -> dict:
    sec = doc.get(name) or {}
    if not isinstance(sec, dict):
        raise PolicyError(f"policy: {name} must be a mapping")
    extra = sorted(set(sec) - keys)
    if extra:
        raise PolicyError(f"policy: unknown key {name}.{extra[0]}")
    return sec


def parse_policy(text: str, where: str = "policy") -> Policy:
    """A :class:`Policy` from YAML text; PolicyError names what is wrong and where."""
    if len(text) > _MAX_POLICY:
        raise PolicyError(f"{where}: larger than {_MAX_POLICY // 1024} KiB")
    try:
        doc = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except PolicyError as e:
        raise PolicyError(f"{where}: {e}") from None
    except yaml.YAMLError as e:
        # worded as a manifest's error is: FILE: not valid YAML: line L, column C: problem
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise PolicyError(f"{where}: not valid YAML: {at}{problem}") from None
    try:
        return _from_doc(doc, text)
    except PolicyError as e:
        raise PolicyError(f"{where}: {str(e).removeprefix('policy: ')}") from None


def _from_doc(doc: object, text: str) -> Policy:
    if not isinstance(doc, dict):
        raise PolicyError("policy: must be a mapping")
    extra = sorted(set(doc) - {"backends", "allow_sim", "max_age", "modules", "tpm", "tsm"})
    if extra:
        raise PolicyError(f"policy: unknown key {extra[0]!r}")
    allow_sim = doc.get("allow_sim", False)
    if not isinstance(allow_sim, bool):
        raise PolicyError("policy: allow_sim must be true or false")
    max_age = doc.get("max_age", 300)
    if isinstance(max_age, bool) or not isinstance(max_age, int | float):
        raise PolicyError("policy: max_age must be a number of seconds")
    modules = doc.get("modules", "any")
    if modules == "any":
        mods = None
    else:
        mods = _str_list(modules, "modules", re.compile(r"[0-9a-f]{64}"))
    tpm = _section(doc, "tpm", {"pcrs"})
    pcrs_in = tpm.get("pcrs") or {}
    if not isinstance(pcrs_in, dict):
        raise PolicyError("policy: tpm.pcrs must map PCR index to hex value")
    pcrs: dict[int, str] = {}
    for k, v in pcrs_in.items():
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= 23 or k == 16:
            raise PolicyError(f"policy: tpm.pcrs key {k!r} is not a PCR index 0-23 other "
                              "than 16 (16 holds the module)")
        if not isinstance(v, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", v):
            raise PolicyError(f"policy: tpm.pcrs.{k} is not a 64-digit hex SHA-256 value")
        pcrs[k] = v.lower()
    tsm = _section(doc, "tsm", {"providers", "measurements"})
    backends = _str_list(doc.get("backends", ["tpm", "tsm"]), "backends")
    return Policy(backends=backends, allow_sim=allow_sim, max_age=float(max_age),
                  modules=mods, tpm_pcrs=pcrs,
                  tsm_providers=_str_list(tsm.get("providers", []), "tsm.providers"),
                  tsm_measurements=_str_list(tsm.get("measurements", []),
                                             "tsm.measurements", _HEX),
                  source=text)


def load_policy(path: Path) -> Policy:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError(f"{path}: cannot read policy ({getattr(e, 'strerror', None) or e})") \
            from None
    return parse_policy(text, str(path))
