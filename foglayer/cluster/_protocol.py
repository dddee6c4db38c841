"""The cluster's wire protocol: every subject, bucket, header and error kind, and the typed
messages that nodes, controllers and clients exchange.

Subjects:

- ``fog.node.<node>.hb`` – a node's heartbeat (:class:`Heartbeat`), every ``heartbeat`` s;
- ``fog.node.<node>.status`` – an instance changed state (:class:`Status`);
- ``fog.node.<node>.module`` – a node asks the leading controller for a module it was told to
  run (:class:`ModuleRequest`); the answer is a series of chunks on the node's own inbox;
- ``fog.node.<node>.logs.<app>.<replica>.<stdout|stderr>`` – an instance's output;
- ``fog.cmd.<node>.start|stop|ping`` – requests to a node (:class:`StartRequest`, ...);
- ``fog.cmd.<node>.invoke.<app>.<function>`` – a service call (the reply's data is the result,
  or the ``Fog-Error*`` headers);
- ``fog.events.<kind>`` – the controller's events (stream ``FOG_EVENTS``).

Only node ``<node>`` may publish on ``fog.node.<node>.>`` and read ``fog.cmd.<node>.>`` (the
server's permissions, see :mod:`._server`), so the node name in such a subject is authenticated;
the *bodies* are not: everything a node sends is decoded with :func:`decode_node`, which bounds
every field and drops (and counts) what does not fit.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Literal

import msgspec

from foglayer.cluster._spec import MAX_REPLICAS, AppSpec

# -- names ----------------------------------------------------------------------------------

APPS, PLACEMENTS, NODES, DECISIONS, LEADER, TRUST, INSTANCES = (
    "fog-apps", "fog-placements", "fog-nodes", "fog-decisions", "fog-leader", "fog-trust",
    "fog-instances")
MODULES = "fog-modules"
# Durable services (see ._durable): snapshot records by <app>.<replica> (KV), their pages by
# hash (Object Store).
SNAPSHOTS, SNAP_PAGES = "fog-snapshots", "fog-snap-pages"
# Every server with JetStream serves it in this domain, and every client asks for it: a client
# at a leaf site then reaches the hub's JetStream through the leaf link ($JS.fog.API).
JS_DOMAIN = "fog"
# Attestation (foglayer.trust): keys ``policy``, ``reg.<node>`` (attestation key, first join),
# ``result.<node>`` (the latest EAR, a JWT), ``secret.<name>`` (sealed under the controller's
# master key). Nodes have no JetStream access: only controllers and the operator read it.
ATTEST = "fog-attest"
CORDON = "fog-cordon"  # nodes that take no new work (fog drain; fog uncordon lifts it)
LOGS_STREAM, EVENTS_STREAM = "FOG_LOGS", "FOG_EVENTS"
# Usage, durable: every node publishes its instances' running totals each heartbeat.
USAGE_STREAM = "FOG_USAGE"
EVENTS = "fog.events"

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
FUNCTION_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
STREAMS = ("stdout", "stderr")


def node_out(node: str) -> str:
    """The subject prefix a node publishes on."""
    return f"fog.node.{node}"


def node_cmd(node: str) -> str:
    """The subject prefix a node listens on."""
    return f"fog.cmd.{node}"


def node_inbox(node: str) -> str:
    """A node's own inbox prefix: its replies cannot be read by other nodes."""
    return f"_INBOX_{node}"


def hb_subject(node: str) -> str:
    return f"{node_out(node)}.hb"


def status_subject(node: str) -> str:
    return f"{node_out(node)}.status"


def module_subject(node: str) -> str:
    return f"{node_out(node)}.module"


def log_subject(node: str, app: str, replica: int, stream: str) -> str:
    return f"{node_out(node)}.logs.{app}.{replica}.{stream}"


def cmd_subject(node: str, verb: str) -> str:
    return f"{node_cmd(node)}.{verb}"


def invoke_subject(node: str, app: str, function: str) -> str:
    return f"{node_cmd(node)}.invoke.{app}.{function}"


def app_logs_filter(app: str) -> str:
    """Every node's output of ``app`` (a stream subject filter)."""
    return f"fog.node.*.logs.{app}.>"


def site_echo(site: str) -> str:
    """Answered at site ``site`` (its nodes, and ``fog up``'s sentinel there): a request here
    measures the round trip to that site, and tells whether the site is reachable at all."""
    return f"fog.site.{site}.echo"


ALL_SITE_ECHO = "fog.site.*.echo"
def usage_subject(node: str) -> str:
    return f"{node_out(node)}.usage"


ALL_USAGE = "fog.node.*.usage"


def sealkey_subject(node: str) -> str:
    """Where a process on node ``node`` (``fog run --seal``, ``fog restore`` of a sealed
    snapshot, with the node's credentials) asks the leading controller for a snapshot's data
    key: :class:`SealKeyRequest`, then :class:`SealKeyAttest`; answers :class:`SealKeyReply`."""
    return f"{node_out(node)}.sealkey"


ALL_SEALKEY = "fog.node.*.sealkey"
ALL_HB = "fog.node.*.hb"
ALL_STATUS = "fog.node.*.status"
ALL_MODULE = "fog.node.*.module"
ALL_LOGS = "fog.node.*.logs.>"


def subject_node(subject: str) -> str:
    """The (server-authenticated) node of a ``fog.node.<node>.…`` subject."""
    return subject.split(".")[2]


# -- headers and error kinds ----------------------------------------------------------------

H_ERROR = "Fog-Error"
H_ERROR_KIND = "Fog-Error-Kind"
H_BACKTRACE = "Fog-Backtrace"
H_INSTANCE = "Fog-Instance"
H_CHUNK = "Fog-Chunk"  # "<index>/<count>" of a module answer


class ErrorKind(enum.StrEnum):
    """What went wrong with a service call (header ``Fog-Error-Kind``)."""

    USAGE = "usage"  # a bad request (function name, payload)
    APP = "app"  # the service reported an error
    TRAP = "trap"  # the guest trapped
    LIMIT = "limit"  # a limit fired (timeout, fuel, memory, descriptors)
    UNAVAILABLE = "unavailable"  # no running instance here: try another node


def error_headers(kind: ErrorKind, message: str, backtrace: str = "") -> dict[str, str]:
    headers = {H_ERROR: message.replace("\n", " ")[:2000], H_ERROR_KIND: str(kind)}
    if backtrace:
        headers[H_BACKTRACE] = backtrace.replace("\n", " | ")[:4000]
    return headers


# -- what a node says (untrusted: bounded) --------------------------------------------------

_Short = Annotated[str, msgspec.Meta(max_length=256)]
_Text = Annotated[str, msgspec.Meta(max_length=2000)]
_Name = Annotated[str, msgspec.Meta(pattern=f"^{NAME_RE.pattern}$")]
_Count = Annotated[int, msgspec.Meta(ge=0, le=1 << 62)]
_Time = Annotated[float, msgspec.Meta(ge=0, le=1e11)]
MAX_INSTANCES = 10_000  # instances one heartbeat may report


class Caps(msgspec.Struct, frozen=True):
    """What a node *claims* about itself (the scheduler's input; never a reason to trust it)."""

    name: _Name
    arch: _Short
    max_memory: _Count
    os: _Short = ""
    cpu_model: _Short = ""
    cpus: Annotated[int, msgspec.Meta(ge=1, le=1 << 20)] = 1
    memory: _Count = 0
    engine: _Short = ""
    engine_version: _Short = ""
    features: Annotated[list[_Short], msgspec.Meta(max_length=64)] = []
    tee: Annotated[list[_Short], msgspec.Meta(max_length=16)] = []
    labels: Annotated[dict[_Short, _Short], msgspec.Meta(max_length=64)] = {}
    latency: Annotated[dict[_Short, Annotated[float, msgspec.Meta(ge=0, le=1e9)]],
                       msgspec.Meta(max_length=256)] = {}
    speed: Annotated[float, msgspec.Meta(ge=0, le=1e15)] = 0.0
    fuel_rate: Annotated[float, msgspec.Meta(gt=0, le=1e15)] | None = None
    duty: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    max_fds: _Count = 0  # descriptors the node gives its instances (0: not said)
    # Which code does the hot WASI calls and a move's dirty-page scan: "native" (host-built C)
    # or "python"; "" until the node has loaded them (in the background, after it joins).
    wasi_path: Literal["", "native", "python"] = ""
    dirty_scan: Literal["", "native", "python"] = ""
    # The TEE backend's attestation public key (base64 DER), registered at first join.
    tee_key: Annotated[str, msgspec.Meta(max_length=4096)] = ""

    def to_dict(self) -> dict:
        return msgspec.to_builtins(self)


InstanceState = Literal["starting", "running", "exited", "failed", "stopped"]


class InstanceReport(msgspec.Struct, frozen=True):
    app: _Name
    replica: Annotated[int, msgspec.Meta(ge=0, lt=MAX_REPLICAS)]
    state: InstanceState
    generation: _Count = 0
    exit_code: Annotated[int, msgspec.Meta(ge=-(1 << 31), lt=1 << 32)] | None = None
    error: _Text | None = None
    started: _Time | None = None
    ended: _Time | None = None
    calls: _Count = 0
    # A live move froze it and holds its calls: that move's id (the controller resolves a
    # freeze whose release never reached this node: the placement record says who is live).
    held: Annotated[str, msgspec.Meta(pattern=r"^([0-9a-f]{8,32})?$")] = ""


class Heartbeat(msgspec.Struct, frozen=True):
    name: _Name
    boot: _Short
    caps: Caps
    seq: _Count = 0
    time: _Time = 0.0
    used_memory: _Count = 0
    instances: Annotated[dict[_Short, InstanceReport], msgspec.Meta(max_length=MAX_INSTANCES)] = {}
    # Round trips this node measured to each site's echo subject, in ms (not in Caps: they
    # change every beat, and the registry rewrites a node's record when its Caps change).
    rtt: Annotated[dict[_Short, Annotated[float, msgspec.Meta(ge=0, le=1e6)]],
                   msgspec.Meta(max_length=256)] = {}
    # Connected through a leaf-node server (its server has no JetStream): the node sits in a
    # site whose link to the hub can be cut, so its silence may be a partition, not a death.
    leaf: bool = False


class Status(InstanceReport, frozen=True):
    name: _Name = ""
    boot: _Short = ""
    instance: _Short = ""


class ModuleRequest(msgspec.Struct, frozen=True):
    name: _Name
    instance: _Short
    digest: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


_Digest = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class SealKeyRequest(msgspec.Struct, frozen=True, tag="request"):
    """RCAR step 1 for a sealed snapshot: a challenge, please. ``wrapped`` empty: a new data
    key (sealing); else the file's wrapped data key (restoring)."""

    name: _Name
    module: _Digest  # the snapshot's module (original digest): what the node will measure
    key_id: _Name = "default"  # the controller's sealing key (a KBS-style resource)
    wrapped: Annotated[str, msgspec.Meta(max_length=256)] = ""  # base64


class SealKeyAttest(msgspec.Struct, frozen=True, tag="attest"):
    """RCAR step 2: evidence binding the challenge's nonce and an ephemeral X25519 key
    (``foglayer.trust.Attestation`` bytes, as text)."""

    name: _Name
    attestation: Annotated[str, msgspec.Meta(max_length=512 * 1024)]


SealKeyMessage = SealKeyRequest | SealKeyAttest


class SealKeyReply(msgspec.Struct, frozen=True, omit_defaults=True):
    """The controller's answer: a challenge (step 1), or the signed attestation result and,
    if it affirms, the data key released to the ephemeral key (step 2). Errors come in
    ``Fog-Error``."""

    challenge: str = ""
    result: str = ""  # the EAR (a JWT signed by the controller)
    release: str = ""  # the data key, encrypted to the ephemeral key (a JWT)
    wrapped: str = ""  # sealing: the new data key wrapped under the sealing key (base64)
    policy: str = ""  # the policy it was appraised under


NodeMessage = Heartbeat | Status | ModuleRequest

# -- what is said to a node -----------------------------------------------------------------


class StartRequest(msgspec.Struct, frozen=True):
    instance: str
    app: str
    replica: int
    spec: AppSpec
    generation: int = 0
    release: str = ""  # the app's secrets, encrypted to the attested session's ephemeral key
    session: str = ""  # that attestation session


class AttestRequest(msgspec.Struct, frozen=True):
    """A challenge (``foglayer.trust.Challenge`` bytes, as text) for the module to measure;
    the node answers with ``foglayer.trust.Attestation`` bytes (errors in ``Fog-Error``)."""

    challenge: str
    module: str


class StopRequest(msgspec.Struct, frozen=True):
    instance: str


class Reply(msgspec.Struct, frozen=True, omit_defaults=True):
    ok: bool
    error: str | None = None
    already: bool = False
    known: bool = False
    boot: str | None = None
    links: int = 0  # (ping) times the node reconnected to the bus since it started


# -- what the controller keeps ---------------------------------------------------------------


class NodeRecord(msgspec.Struct):
    """A node in the registry (``fog-nodes``). ``trusted`` is the operator's word, not the node's."""

    name: _Name
    caps: Caps
    state: Literal["ready", "lost", "unreachable"] = "ready"  # unreachable: its site is cut off
    boot: _Short = ""
    since: float = 0.0
    joined: float = 0.0


class PlacementRecord(msgspec.Struct, frozen=True):
    """The fields of a stored placement (``fog-placements``) that the controller relies on.

    Placements are kept as dicts in memory (a placement grows fields as it moves); this type
    checks a stored one before it is used: one that does not fit is skipped, never a crash."""

    app: _Name
    replica: Annotated[int, msgspec.Meta(ge=0, lt=MAX_REPLICAS)]
    generation: _Count
    instance: _Short
    state: _Short
    node: _Name | None = None


class InstanceRecord(msgspec.Struct, frozen=True):
    """Which node an instance was placed on (``fog-instances``): who may write its logs."""

    app: str
    replica: int
    node: str


# -- encoding and decoding ------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
encode = _encoder.encode
_decoders: dict[type, msgspec.json.Decoder] = {}


class BadMessage(ValueError):
    """A message that does not fit its type: the reason is one line."""


def decode(data: bytes, typ: type):
    """``data`` as ``typ``, or :class:`BadMessage` naming the field."""
    dec = _decoders.get(typ)
    if dec is None:
        dec = _decoders[typ] = msgspec.json.Decoder(typ)
    try:
        return dec.decode(data)
    except msgspec.DecodeError as e:  # ValidationError is a DecodeError
        raise BadMessage(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


MAX_NODE_MESSAGE = 1 << 20


def decode_node(subject: str, data: bytes, typ: type):
    """A node's message: bounded, typed, and named by the node its subject belongs to."""
    if len(data) > MAX_NODE_MESSAGE:
        raise BadMessage(f"{len(data)} bytes (at most {MAX_NODE_MESSAGE})")
    msg = decode(data, typ)
    node = subject_node(subject)
    if msg.name != node:
        raise BadMessage(f"claims to be node {msg.name!r}")
    if isinstance(msg, Heartbeat) and msg.caps.name != node:
        raise BadMessage(f"capabilities of node {msg.caps.name!r}")
    return msg


class Usage(msgspec.Struct, frozen=True):
    """What one instance has consumed since it started: running totals, so that a lost or a
    repeated report changes nothing (the latest one counts)."""

    instance: _Short
    app: _Name
    tenant: _Name = "default"
    replica: Annotated[int, msgspec.Meta(ge=0, lt=MAX_REPLICAS)] = 0
    time: _Time = 0.0
    fuel: _Count = 0  # Wasm instructions
    invocations: _Count = 0
    wasi_calls: _Count = 0
    memory_seconds: Annotated[float, msgspec.Meta(ge=0, le=1e18)] = 0.0  # reserved bytes x s
    volume_bytes: _Count = 0  # bytes in the instance's volumes


class UsageReport(msgspec.Struct, frozen=True):
    name: _Name
    boot: _Short
    seq: _Count = 0
    items: Annotated[list[Usage], msgspec.Meta(max_length=MAX_INSTANCES)] = []
