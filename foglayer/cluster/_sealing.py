"""Sealed snapshot files whose key only the controller releases (``fog run --seal``).

A process on a foglayer node (``fog run --checkpoint-to F --seal``, ``fog restore F``) acts
as that node's attester: it reads the node's profile (``attester.json`` in the node's data
dir, written by ``fog node --tee ...``: its name, credentials with the controller's public
key, and where its TEE backend is), opens the same backend (same registered attestation key),
and runs the RCAR handshake with the leading controller (:mod:`.controller._sealing`):

- sealing: the controller releases a fresh data key (and its wrapped form, which goes into
  the file's header) after an affirming appraisal of this node measuring the snapshot's
  module; the snapshot is sealed in memory, only the sealed bytes reach the disk;
- restoring: the file's wrapped key goes back to the controller, which unwraps it only for
  an affirming appraisal of the module it was sealed for, and releases it to the ephemeral
  key; the snapshot is opened in memory.

No controller, no node profile, a refusal: one line, never a fallback to a weaker key
(``--seal-local`` is the explicit, weaker, machine-local mode: :mod:`foglayer.trust`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
import nats.errors

from foglayer.cluster._bus import BusError, Creds, connect
from foglayer.cluster._protocol import (
    H_ERROR,
    BadMessage,
    SealKeyAttest,
    SealKeyReply,
    SealKeyRequest,
    decode,
    encode,
    node_inbox,
    sealkey_subject,
)
from foglayer.errors import FogError
from foglayer.trust import (
    SEAL_DATA_KEY,
    SIM_WARNING,
    Attester,
    Challenge,
    EvidenceError,
    SealError,
    SealHeader,
    TrustError,
    controller_key,
    is_local_seal,
    is_released_seal,
    open_backend,
    open_released,
    seal_released,
    seal_snapshot_locally,
    sealed_header,
    unseal_snapshot_locally,
)

PROFILE = "attester.json"
REQUEST_TIMEOUT = 15.0  # a TPM quote through tpm2-tools takes a few hundred ms on a busy box
NEEDS = "sealing needs a controller"
RESTORE_NEEDS = "restoring a sealed snapshot needs a controller"


class NodeProfile(msgspec.Struct, frozen=True):
    """What another process on a node needs to attest as that node (``attester.json``)."""

    name: str
    tee: str
    creds: dict[str, str]  # foglayer.cluster.Creds fields (with the controller's public key)
    tpm_tcti: str | None = None
    tsm_root: str | None = None


def write_profile(node_dir: Path, name: str, tee: str, creds: Creds, server: str | None,
                  controller: bytes, location: dict[str, str]) -> None:
    """``fog node --tee``: say, in the node's private data dir (0600), how to attest as it."""
    from foglayer._dirs import atomic_write

    fields = {k: v for k, v in creds.__dict__.items() if v is not None}
    fields["controller_key"] = base64.b64encode(controller).decode()
    if server:
        fields["server"] = server
    profile = NodeProfile(name, tee, fields, location.get("tcti"), location.get("tsm_root"))
    atomic_write(Path(node_dir) / PROFILE, msgspec.json.encode(profile))


def _profile(node_dir: str | os.PathLike | None, needs: str = NEEDS
             ) -> tuple[Path, NodeProfile]:
    from foglayer._dirs import data_dir

    given = node_dir or os.environ.get("FOG_NODE_DIR")
    if given:
        path = Path(given) / PROFILE
    else:
        found = sorted(data_dir("nodes").glob(f"*/{PROFILE}"))
        if len(found) > 1:
            raise FogError(f"{needs}: several nodes on this machine "
                           f"({', '.join(p.parent.name for p in found)}): choose one with "
                           "FOG_NODE_DIR=<its data dir>")
        path = found[0] if found else data_dir("nodes") / "*" / PROFILE
    try:
        data = path.read_bytes()
    except OSError:
        raise FogError(f"{needs}: this machine is not a foglayer node with a TEE ({path} not "
                       "found: run `fog node --tee sim|tpm|tsm` here, or set FOG_NODE_DIR to "
                       "its --data-dir); --seal-local seals under a local key instead "
                       "(weaker)") from None
    try:
        return path.parent, msgspec.json.decode(data, type=NodeProfile)
    except msgspec.DecodeError as e:
        raise FogError(f"{path}: not a node profile ({e})") from None


def _data_key(module: str, *, wrapped: bytes | None = None, key_id: str = "default",
              node_dir: str | os.PathLike | None = None) -> tuple[bytes, SealHeader, bool]:
    """The RCAR handshake for one snapshot's data key: new (``wrapped`` None) or the file's;
    and whether the evidence it was released to proves nothing (sim)."""
    needs = NEEDS if wrapped is None else RESTORE_NEEDS  # (a restore's line says restoring)
    directory, profile = _profile(node_dir, needs)
    where = directory / PROFILE
    try:
        creds = Creds(**profile.creds)
        controller = controller_key(base64.b64decode(creds.controller_key or "", validate=True))
    except (TypeError, ValueError, TrustError) as e:
        raise FogError(f"{where}: bad credentials or controller_key ({e})") from None
    # (sim's "proves nothing" comes with the result: in the refusal, or as a warning below)
    backend = open_backend(profile.tee, directory / "tee", tcti=profile.tpm_tcti,
                           tsm_root=profile.tsm_root, quiet=True)
    try:
        attester = Attester(profile.name, backend, controller)
        return asyncio.run(_handshake(attester, creds, module, wrapped, key_id, needs))
    finally:
        backend.close()


async def _handshake(attester: Attester, creds: Creds, module: str, wrapped: bytes | None,
                     key_id: str, needs: str) -> tuple[bytes, SealHeader, bool]:
    node = attester.node
    try:
        nc = await connect(creds=creds, name=f"fog-seal-{node}", inbox_prefix=node_inbox(node),
                           reconnect=False)
    except BusError as e:
        raise FogError(f"{needs}: {e}") from None
    try:
        first = await _ask(nc, node, needs, SealKeyRequest(
            node, module, key_id, base64.b64encode(wrapped).decode() if wrapped else ""))
        challenge = Challenge.from_bytes(first.challenge.encode())
        loop = asyncio.get_running_loop()
        att, session = await loop.run_in_executor(None, attester.answer, challenge, module)
        second = await _ask(nc, node, needs, SealKeyAttest(node, att.to_bytes().decode()))
        result = session.open_result(second.result)  # signed by our controller, our nonce
        if not result.affirming:
            raise SealError(f"the controller released no sealing key to node {node}: "
                            f"attestation {result.why()}")
        key = session.open_secrets(second.release, [SEAL_DATA_KEY])[SEAL_DATA_KEY]
        header = SealHeader(key_id, module, base64.b64decode(second.wrapped), node,
                            second.policy)
        return key, header, result.proves_nothing
    except (EvidenceError, ValueError) as e:
        raise TrustError(f"sealing: malformed answer from the controller ({e})") from None
    finally:
        await nc.close()


async def _ask(nc, node: str, needs: str, body) -> SealKeyReply:
    try:
        msg = await nc.request(sealkey_subject(node), encode(body), timeout=REQUEST_TIMEOUT)
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError):
        raise FogError(f"{needs}: no leading controller answered on the bus") from None
    if msg.headers and H_ERROR in msg.headers:
        raise TrustError(f"the controller refused the sealing key: {msg.headers[H_ERROR]}")
    try:
        return decode(msg.data, SealKeyReply)
    except BadMessage as e:
        raise TrustError(f"sealing: malformed answer from the controller ({e})") from None


def snapshot_sealer(module: str | os.PathLike, *, node_dir: str | os.PathLike | None = None
                    ) -> Callable[[bytes], bytes]:
    """``fog run --seal``: a data key released for ``module`` (attested now, before the run);
    each snapshot is sealed under it in memory."""
    try:
        digest = hashlib.sha256(Path(module).read_bytes()).hexdigest()
    except OSError as e:
        raise FogError(f"{module}: cannot read: {e.strerror}") from None
    key, header, proves_nothing = _data_key(digest, node_dir=node_dir)
    _warn(proves_nothing)
    return lambda data: seal_released(data, key, header)


def _warn(proves_nothing: bool) -> None:
    # Said once the key is in use (a refusal's one line already names sim in its reasons).
    if proves_nothing:
        print(f"warning: the sealing key was released to sim evidence: {SIM_WARNING}",
              file=sys.stderr)


def lazy_snapshot_sealer(*, node_dir: str | os.PathLike | None = None
                         ) -> Callable[[bytes], bytes]:
    """``fog restore --seal``: like :func:`snapshot_sealer`, for the module the first
    snapshot names (the restored one)."""
    from foglayer.snapshot import parse_snapshot

    held: dict[str, tuple[bytes, SealHeader]] = {}

    def seal(data: bytes) -> bytes:
        digest = parse_snapshot(data).meta.module.original_digest
        if digest not in held:
            key, header, proves_nothing = _data_key(digest, node_dir=node_dir)
            _warn(proves_nothing)
            held[digest] = key, header
        key, header = held[digest]
        return seal_released(data, key, header)

    return seal


def open_sealed_snapshot(blob: bytes, where: str, *, options=None,
                         node_dir: str | os.PathLike | None = None) -> bytes:
    """``fog restore`` of a sealed file, in memory: a controller-sealed one after an affirming
    attestation of this node for its module; a locally sealed one under this machine's key.

    ``options`` (the restore's ``foglayer.snapshot.CheckpointOptions``): its further snapshots
    are sealed as this file was (the same released data key and header; the local key), never
    written in the clear, and a controller-sealed one is never re-sealed under a local key."""
    if is_local_seal(blob):
        data = unseal_snapshot_locally(blob, where)
        if options is not None and options.seal is None:
            options.seal = seal_snapshot_locally
        return data
    if not is_released_seal(blob):
        raise SealError(f"{where}: not a foglayer snapshot (nor a sealed one)")
    head = sealed_header(blob, where)
    if options is not None and options.seal is seal_snapshot_locally:
        raise FogError(f"{where} is sealed under a key the controller releases: its further "
                       "snapshots are sealed that way too, not under a local key",
                       where="seal_local")
    key, _, proves_nothing = _data_key(head.module, wrapped=head.wrapped, key_id=head.key_id,
                                       node_dir=node_dir)
    data = open_released(blob, key, where)
    from foglayer.snapshot import parse_snapshot

    if parse_snapshot(data, where).meta.module.original_digest != head.module:
        raise SealError(f"{where}: the sealed snapshot is not of the module its header names")
    _warn(proves_nothing)
    if options is not None:
        options.seal = lambda snapshot: seal_released(snapshot, key, head)
    return data
