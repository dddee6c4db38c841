"""The app spec: what a manifest becomes, what ``fog-apps`` stores, what a node is told to run.

Typed (``msgspec.Struct``), so that the manifest, the controller, the scheduler and the agent
share one contract instead of a dict, and so that a stored record is validated when it is read
back (:func:`decode_spec`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

DEFAULT_MEMORY = 32 << 20  # what an app without limits.memory reserves (and may use)
DEFAULT_MAX_FDS = 256  # descriptors one instance may hold open (limits.max_fds)
MAX_FDS = 65536
MAX_REPLICAS = 100

_Str = Annotated[str, msgspec.Meta(max_length=4096)]
_Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Per-instance limits. ``memory`` None: :data:`DEFAULT_MEMORY` (or the module's minimum)."""

    memory: Annotated[int, msgspec.Meta(ge=0)] | None = None  # 0 or None: the default
    fuel: Annotated[int, msgspec.Meta(ge=1, le=(1 << 63) - 1)] | None = None
    timeout: Annotated[float, msgspec.Meta(gt=0)] | None = None
    max_fds: Annotated[int, msgspec.Meta(ge=8, le=MAX_FDS)] = DEFAULT_MAX_FDS


class Constraints(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    labels: dict[str, str] = {}
    min_memory: Annotated[int, msgspec.Meta(ge=0)] | None = None
    tee: str | None = None
    arch: str | None = None
    features: list[str] = []


class Preferences(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    site: str | None = None
    low_latency_to: str | None = None


class DirSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A per-instance directory on the node, seen by the guest at ``guest``."""

    guest: _Str
    readonly: bool = False

    @property
    def volume(self) -> str:
        """The volume's directory name on the node: one per normalised guest path (quoted,
        so that ``/a/b`` and ``/a_b`` never share one)."""
        from urllib.parse import quote

        return quote(self.guest.strip("/"), safe="")


# The release name of an encrypted module's key (never a secret's name: those match
# SECRET_NAME); at rest it is sealed to the vault as module_key_name(digest), in fog-attest
# under modkey.<digest>.
MODULE_KEY = "__module_key__"


def module_key_name(digest: str) -> str:
    """The name an encrypted module's key is sealed under: bound to the module it opens."""
    return f"module.{digest}"


SECRET_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
SECRETS_DIR = "/run/secrets"


class SecretRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A secret the app needs (stored with ``fog secret put``, released after attestation):
    a read-only file ``/run/secrets/<name>`` held in memory, or with ``env`` an environment
    variable."""

    name: Annotated[str, msgspec.Meta(pattern=SECRET_NAME)]
    env: bool = False


class Snapshots(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Durable service state (manifest ``snapshots``): the node stores incremental snapshots
    (changed pages, deduplicated by hash) through the controller, after every call that is
    then acknowledged (``after-invoke``) or every ``every`` seconds; a lost node's service
    comes back elsewhere from the last one."""

    mode: Literal["after-invoke", "every"]
    every: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 0.0


class AppSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: _Name
    module: _Str = "app.wasm"
    kind: Literal["command", "service"] = "command"
    digest: _Str = ""
    size: int = 0
    initial_memory: int = 0
    args: list[str] = []
    env: dict[str, str] = {}
    # Secrets by name: released by the controller only after an affirming attestation of the
    # node that runs this module (the values are never in the spec).
    secrets: Annotated[list[SecretRef], msgspec.Meta(max_length=64)] = []
    dirs: list[DirSpec] = []
    limits: Limits = Limits()
    replicas: Annotated[int, msgspec.Meta(ge=0, le=MAX_REPLICAS)] = 1
    restart: Literal["always", "on-failure", "never"] = "on-failure"
    max_restarts: Annotated[int, msgspec.Meta(ge=0)] = 10
    # When the app's node sits in a site that the controller cannot reach: keep it there (it
    # runs on; nothing is duplicated) or start it elsewhere (two copies until the heal).
    on_partition: Literal["stay", "move"] = "stay"
    # How it leaves a node (fog drain, fog migrate): live (state, files and calls go with it)
    # or by a restart elsewhere. None: by its kind (services live, commands restart).
    mobility: Literal["live", "restart"] | None = None
    snapshots: Snapshots | None = None  # durable state (services only)
    # `fog deploy --encrypt`: the Object Store holds the module sealed (module_object); its
    # key is released like a secret, after an affirming attestation, and the node decrypts
    # the module in memory only.
    encrypted: bool = False
    tenant: _Name = "default"  # who is billed for its usage (fog usage)
    constraints: Constraints = Constraints()
    preferences: Preferences = Preferences()

    @property
    def memory(self) -> int:
        """The memory the app reserves on a node: its limit, at least its minimum."""
        mem = self.limits.memory or max(DEFAULT_MEMORY, self.initial_memory or 0)
        return max(mem, self.constraints.min_memory or 0)

    @property
    def moves_live(self) -> bool:
        return self.mobility == "live" if self.mobility else self.kind == "service"

    @property
    def checkpointable(self) -> bool:
        """A command that moves live: its module is the checkpointable (Asyncify) rewrite,
        made once at deploy, and a node runs it as a snapshot session."""
        return self.kind == "command" and self.moves_live

    @property
    def needs_trust(self) -> bool:
        """Whether only a trusted node may run it (secrets, or a TEE requirement): trusted by the
        operator (``fog node trust``) or by an affirming attestation."""
        return bool(self.secrets or self.constraints.tee or self.encrypted)

    @property
    def needs_attestation(self) -> bool:
        """Whether each start waits for an affirming attestation of the node."""
        return bool(self.secrets or self.constraints.tee or self.encrypted)

    @property
    def module_object(self) -> str:
        """The module's name in the Object Store: its digest, or for an encrypted module the
        digest with ``.sealed`` (the two never share an object)."""
        return f"{self.digest}.sealed" if self.encrypted else self.digest

    def to_dict(self) -> dict:
        return msgspec.to_builtins(self)


def app_memory(spec: AppSpec | dict) -> int:
    """The memory an app reserves on a node (see :attr:`AppSpec.memory`); a spec's JSON form
    (what :class:`~foglayer.cluster.Client` returns) is accepted too."""
    return (spec if isinstance(spec, AppSpec) else decode_spec(spec)).memory


def decode_spec(data: object) -> AppSpec:
    """An :class:`AppSpec` from its JSON form (bytes) or builtins; ``msgspec.ValidationError``."""
    if isinstance(data, bytes | bytearray | memoryview | str):
        return msgspec.json.decode(data, type=AppSpec)
    return msgspec.convert(data, AppSpec)


class AppRecord(msgspec.Struct, frozen=True):
    """What ``fog-apps`` holds for an app: its spec and which deploy of it this is."""

    spec: AppSpec
    generation: Annotated[int, msgspec.Meta(ge=1)] = 1
    deployed_at: float = 0.0
