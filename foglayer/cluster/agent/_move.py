"""A node's side of a live move (see :mod:`.._move`): as the source, freeze a service between
two calls, hold the calls that arrive, hand out its state in chunks, and let go of it only
when the controller says the target runs it; as the target, prepare the module early, take
the chunks in order within the announced size, check the whole against its SHA-256, then
restore and serve.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import time
from dataclasses import dataclass, field

from foglayer.cluster._move import (
    CHUNK,
    H_MOVE,
    MoveError,
    MoveReply,
    MoveRequest,
    frame,
    pack_dir,
    unframe,
    unpack_dir,
)
from foglayer.cluster._protocol import H_CHUNK, decode, encode
from foglayer.cluster.agent._slots import Slot, one_line, private_dir

MAX_MOVES = 8  # incoming moves a node holds at once
VOLUME_ALLOWANCE = 256 << 20  # volume bytes a move may bring besides the memory


@dataclass
class _Outgoing:
    slot: Slot
    payload: bytes


@dataclass
class _Incoming:
    slot: Slot
    module: object
    limit: int
    buf: bytearray = field(default_factory=bytearray)
    next: int = 0
    started: float = field(default_factory=time.monotonic)


class Mover:
    def _init_moves(self) -> None:
        self.outgoing: dict[str, _Outgoing] = {}
        self.incoming: dict[str, _Incoming] = {}

    async def _move(self, msg) -> None:
        try:
            req = decode(msg.data, MoveRequest)
            if req.op == "chunk":
                out = self.outgoing.get(req.mid)
                data = b"" if out is None else out.payload[req.index * CHUNK:(req.index + 1) * CHUNK]
                return await self.nc.publish(msg.reply, data) if msg.reply else None
            handler = {"freeze": self._freeze, "release": self._release,
                       "prepare": self._prepare, "commit": self._commit,
                       "abort": self._abort}[req.op]
            reply = await handler(req)
        except Exception as e:  # noqa: BLE001 - a bad step fails the move, never the node
            reply = MoveReply(False, one_line(e))
        if msg.reply:
            await self.nc.publish(msg.reply, encode(reply))

    # -- the source -------------------------------------------------------------------------

    async def _freeze(self, req: MoveRequest) -> MoveReply:
        slot = self.slots.get(req.instance)
        if slot is None or slot.state != "running" or slot.local is None:
            return MoveReply(False, f"instance {req.instance} is not running on {self.name}")
        if slot.spec.kind != "service":
            return MoveReply(False, "only services move live (a command restarts)")
        slot.hold = asyncio.Event()  # calls from now on wait for the release
        local = slot.local
        # Queued behind the calls already running: the snapshot holds their effects.
        snap = await self.loop.run_in_executor(local.pool, local.snapshot)  # type: ignore[attr-defined]
        frozen_at = time.time()
        volumes = await self.loop.run_in_executor(None, self._pack_volumes, slot)
        payload = frame(snap, volumes)
        self.outgoing[req.mid] = _Outgoing(slot, payload)
        return MoveReply(True, size=len(payload), sha256=hashlib.sha256(payload).hexdigest(),
                         memory=local.inst.memory_pages() << 16,  # type: ignore[attr-defined]
                         frozen_at=frozen_at)

    def _pack_volumes(self, slot: Slot) -> bytes:
        assert self.data_dir is not None
        root = self.data_dir / "volumes" / slot.app / str(slot.replica)
        return pack_dir(root) if root.is_dir() else b""

    async def _release(self, req: MoveRequest) -> MoveReply:
        out = self.outgoing.pop(req.mid, None)
        if out is None:
            return MoveReply(True)
        slot = out.slot
        if req.moved:  # the target serves it now: this copy goes, its held calls go there
            slot.moved = True
            self.slots.pop(slot.instance, None)
            self._discard(slot)
        if slot.hold is not None:
            slot.hold.set()
            slot.hold = None
        return MoveReply(True)

    # -- the target -------------------------------------------------------------------------

    async def _prepare(self, req: MoveRequest) -> MoveReply:
        from foglayer.cluster._exec import load

        spec = req.spec
        if spec is None or spec.kind != "service":
            return MoveReply(False, "a move needs a service's spec")
        if len(self.incoming) >= MAX_MOVES:
            return MoveReply(False, f"node {self.name} is already taking {MAX_MOVES} moves")
        need, used = spec.memory + sum(i.slot.spec.memory for i in self.incoming.values()), \
            self.used_memory()
        if used + need > self.caps.max_memory:
            return MoveReply(False, f"node full: {need} bytes needed, "
                             f"{self.caps.max_memory - used} free")
        slot = Slot(req.instance, req.app, req.replica, req.generation, spec)
        path = await self._module_path(slot)  # fetched and compiled while the source runs
        module = await self.loop.run_in_executor(None, load, str(path), spec, self.cfg.simd)
        # What the target takes in at most: the snapshot (memory compressed) and the volumes.
        self.incoming[req.mid] = _Incoming(slot, module, spec.memory * 2 + VOLUME_ALLOWANCE)
        return MoveReply(True)

    async def _move_data(self, msg) -> None:
        h = msg.headers or {}
        inc = self.incoming.get(h.get(H_MOVE, ""))
        try:
            i, n = (int(x) for x in h.get(H_CHUNK, "").split("/"))
        except ValueError:
            i = n = -1
        if inc is None:
            reply = MoveReply(False, "no such move on this node")
        elif i != inc.next or len(inc.buf) + len(msg.data) > inc.limit or len(msg.data) > CHUNK:
            reply = MoveReply(False, f"chunk {i}/{n} out of order, or past what an app of "
                              f"{inc.slot.spec.memory} bytes may bring")
        else:
            inc.buf += msg.data
            inc.next += 1
            reply = MoveReply(True, size=len(inc.buf))
        if msg.reply:
            await self.nc.publish(msg.reply, encode(reply))

    async def _commit(self, req: MoveRequest) -> MoveReply:
        from foglayer.cluster._exec import LocalInstance

        inc = self.incoming.pop(req.mid, None)
        if inc is None:
            return MoveReply(False, "no such move on this node")
        payload = bytes(inc.buf)
        if len(payload) != req.size or hashlib.sha256(payload).hexdigest() != req.sha256:
            return MoveReply(False, "the state does not match its SHA-256: refused")
        slot = inc.slot
        snapshot, volumes = unframe(payload)
        await self.loop.run_in_executor(None, self._unpack_volumes, slot, volumes)
        dirs = self._dirs(slot)
        local = await self.loop.run_in_executor(None, lambda: LocalInstance(
            inc.module, slot.spec, dirs, duty=self.duty,  # type: ignore[arg-type]
            on_output=lambda stream, data: self._output(slot, stream, data), snapshot=snapshot))
        slot.local, slot.state = local, "running"
        self.slots[slot.instance] = slot
        await self._status(slot)
        return MoveReply(True, running_at=time.time())

    def _unpack_volumes(self, slot: Slot, data: bytes) -> None:
        assert self.data_dir is not None
        root = self.data_dir / "volumes" / slot.app / str(slot.replica)
        # A fresh tree: nothing a former instance left here (a symlink, say) is trusted.
        shutil.rmtree(root, ignore_errors=True)
        private_dir(root, self.data_dir)
        try:
            unpack_dir(data, root)
        except MoveError:
            shutil.rmtree(root, ignore_errors=True)
            raise

    async def _abort(self, req: MoveRequest) -> MoveReply:
        self.incoming.pop(req.mid, None)
        return MoveReply(True)
