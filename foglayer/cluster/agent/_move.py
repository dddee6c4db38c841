"""A node's side of a live move (see :mod:`.._move`).

As the source: hand out rounds of changed pages while the app runs (each chunk built when
the controller asks for it: a round is never held whole); then freeze it (a service between
two calls, the calls that arrive held; a live command halted at its next safepoint, its
stack unwound, its output all sent), hand out the last pages and the state, and let go only
when the controller says the target runs it. As the target: prepare early (the module
fetched and compiled, a fresh instance its pages go into, each chunk checked whole by the
snapshot package), take the state in order within a bound, check it against its SHA-256,
then switch and serve (or, a command, run on).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from foglayer.cluster._move import (
    CHUNK,
    H_MOVE,
    H_PART,
    MAX_STATE,
    MOVE_KEY,
    SEAL_OVERHEAD,
    MoveError,
    MoveReply,
    MoveRequest,
)
from foglayer.cluster._protocol import H_CHUNK, decode, encode
from foglayer.cluster._spec import MODULE_KEY
from foglayer.cluster.agent._slots import Slot, module_key_names, one_line

MAX_MOVES = 8  # incoming moves a node holds at once
INCOMING_TTL = 900.0  # seconds a prepared move may wait for its commit or abort
# A move that no step reached for this long is given up on its side: the controller's steps
# time out well before (a node whose bus connection dropped mid-move never hears the abort).
IDLE_MOVE = 120.0
VOLUME_ALLOWANCE = 2 << 30  # volume bytes a move may bring


HALT_TIMEOUT = 8.0  # seconds a command may take to reach its next safepoint (a move's step)
FIRST_WAIT = 2.0  # seconds a go waits to say when a moved-in command ran again
OUTPUT_WAIT = 5.0  # seconds a halted command's output may take to be read and sent


@dataclass
class _Outgoing:
    slot: Slot
    stream: object  # a PageStream
    tree: object | None = None  # a TreeStream of its volumes
    round: object | None = None  # the current round of pages (a PendingRound)
    last: tuple[int, bytes] | None = None  # its chunk handed out last (asked again: the same)
    tree_round: object | None = None  # the current round of volume blocks (a PendingTree)
    tree_last: tuple[int, bytes] | None = None  # its chunk handed out last
    frozen_at: float = 0.0
    payload: bytes = b""  # the state, once frozen
    key: bytes = b""  # the attested node pair's key: everything goes out sealed with it
    sealer: object | None = None  # a foglayer.trust.StreamSealer for the page chunks
    tree_sealer: object | None = None  # and one for the volume chunks
    touched: float = field(default_factory=time.monotonic)  # the last step


@dataclass
class _Incoming:
    slot: Slot
    local: object  # a fresh LocalInstance
    sink: object  # a PageSink into it
    tree: object  # a TreeSink into its volumes
    limit: int
    buf: bytearray = field(default_factory=bytearray)
    next: int = 0
    key: bytes = b""  # the attested node pair's key: everything comes in sealed with it
    opener: object | None = None  # a foglayer.trust.StreamOpener for the page chunks
    tree_opener: object | None = None  # and one for the volume chunks
    started: float = field(default_factory=time.monotonic)
    touched: float = field(default_factory=time.monotonic)  # the last step or chunk
    secrets: dict[str, bytes] = field(default_factory=dict, repr=False)


class Mover:
    def _init_moves(self) -> None:
        self.outgoing: dict[str, _Outgoing] = {}
        self.incoming: dict[str, _Incoming] = {}
        self.arrived: dict[str, str] = {}  # move id -> the instance its commit started here

    async def _move(self, msg) -> None:
        try:
            req = decode(msg.data, MoveRequest)
            if req.op == "chunk":
                out = self.outgoing.get(req.mid)
                if out is not None:
                    out.touched = time.monotonic()
                if out is None:
                    data = b""
                elif req.part == "pages":
                    try:
                        data = await self._page_chunk(out, req.index)
                    except Exception as e:  # noqa: BLE001 - e.g. the command ended: no chunk
                        self.log(f"move {req.mid}: no page chunk {req.index}: {one_line(e)}")
                        data = b""
                elif req.part == "tree":
                    data = await self._tree_chunk(out, req.index)
                else:
                    data = out.payload[req.index * CHUNK:(req.index + 1) * CHUNK]
                return await self.nc.publish(msg.reply, data) if msg.reply else None
            handler = {"round": self._round, "freeze": self._freeze, "state": self._state,
                       "release": self._release, "prepare": self._prepare,
                       "commit": self._commit, "abort": self._abort}[req.op]
            reply = await handler(req)
        except Exception as e:  # noqa: BLE001 - a bad step fails the move, never the node
            reply = MoveReply(False, one_line(e))
        if msg.reply:
            await self.nc.publish(msg.reply, encode(reply))

    # -- the source -------------------------------------------------------------------------

    def _source(self, req: MoveRequest) -> _Outgoing:
        out = self.outgoing.get(req.mid)
        if out is not None:
            out.touched = time.monotonic()
            return out
        slot = self.slots.get(req.instance)
        if slot is None or slot.state != "running" or slot.local is None:
            raise MoveError(f"instance {req.instance} is not running on {self.name}")
        if slot.spec.kind != "service" and not slot.spec.checkpointable:
            raise MoveError("this command has mobility: restart: it does not move live")
        from foglayer.snapshot import TreeStream

        root = self._volume_root(slot)
        out = _Outgoing(slot, slot.local.page_stream(),  # type: ignore[attr-defined]
                        TreeStream(root) if root.is_dir() else None)
        if slot.spec.needs_attestation:
            from foglayer.trust import StreamSealer

            out.key = self._open_release(req, (MOVE_KEY,))[MOVE_KEY]
            # (the key itself is bound to this source, the target and their attestations)
            out.sealer = StreamSealer(out.key, "pages", "", req.mid)
            out.tree_sealer = StreamSealer(out.key, "tree", "", req.mid)
        self.outgoing[req.mid] = out
        return out

    def _volume_root(self, slot: Slot) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "volumes" / slot.app / str(slot.replica)

    def _remove_volume(self, slot: Slot) -> None:
        """Remove this node's copy of ``slot``'s volume (unless another copy of that replica
        runs here): its live copy is elsewhere, or it never became one."""
        if not any(s.app == slot.app and s.replica == slot.replica
                   for s in self.slots.values()):
            assert self.data_dir is not None
            remove_tree(self._volume_root(slot), self.data_dir / "volumes")

    async def _tree_round(self, out: _Outgoing) -> None:
        """The volume blocks that changed since the last round (64 KiB, by hash), found
        now; each chunk read when it is asked for (a round is never held whole)."""
        out.tree_last = None
        if out.tree is not None:
            out.tree_round = await self.loop.run_in_executor(None, out.tree.open_round)  # type: ignore[attr-defined]

    async def _tree_chunk(self, out: _Outgoing, index: int) -> bytes:
        """Chunk ``index`` of the current volume round, built now (in order; asked again,
        the same)."""
        rnd = out.tree_round
        if rnd is None or not 0 <= index < rnd.count:  # type: ignore[attr-defined]
            return b""
        if out.tree_last is not None and out.tree_last[0] == index:
            return out.tree_last[1]
        if index != rnd.built:  # type: ignore[attr-defined]
            return b""
        data = await self.loop.run_in_executor(None, out.tree.build, rnd, index)  # type: ignore[attr-defined]
        if out.tree_sealer is not None:
            data = out.tree_sealer.seal(data)  # type: ignore[attr-defined]
        out.tree_last = (index, data)
        return data

    async def _page_chunk(self, out: _Outgoing, index: int) -> bytes:
        """Chunk ``index`` of the current round, built now (in order; asked again, the same)."""
        rnd = out.round
        if rnd is None or not 0 <= index < rnd.count:  # type: ignore[attr-defined]
            return b""
        if out.last is not None and out.last[0] == index:
            return out.last[1]
        local = out.slot.local
        if local is None:
            return b""
        data = await self.loop.run_in_executor(
            None, local.build_chunk, out.stream, rnd, index)  # type: ignore[attr-defined]
        if out.sealer is not None:
            data = out.sealer.seal(data)  # type: ignore[attr-defined]
        out.last = (index, data)
        return data

    def _round_reply(self, out: _Outgoing, **extra) -> MoveReply:
        rnd = out.round
        trees = out.tree_round.count if out.tree_round is not None else 0  # type: ignore[attr-defined]
        return MoveReply(True, chunks=rnd.count, tree_chunks=trees,  # type: ignore[attr-defined]
                         pages=len(rnd.dirty), **extra)  # type: ignore[attr-defined]

    async def _round(self, req: MoveRequest) -> MoveReply:
        """A pre-copy round while the app runs (what it changes meanwhile goes again next
        round): pages, and volume files."""
        out = self._source(req)
        local = out.slot.local
        out.round = await self.loop.run_in_executor(
            None, local.open_round, out.stream)  # type: ignore[attr-defined]
        out.last = None
        await self._tree_round(out)
        return self._round_reply(out)

    async def _freeze(self, req: MoveRequest) -> MoveReply:
        out = self._source(req)
        slot, local = out.slot, out.slot.local
        slot.held_by = req.mid  # (its heartbeats say so until the release)
        if slot.spec.kind == "service":
            slot.hold = asyncio.Event()  # calls from now on wait for the release
            # Queued behind the calls already running: the last round holds their effects.
            out.round = await self.loop.run_in_executor(
                local.pool, local.open_round, out.stream)  # type: ignore[attr-defined]
        else:
            await self._halt(out, req)
            out.round = await self.loop.run_in_executor(
                None, local.open_round, out.stream)  # type: ignore[attr-defined]
        out.frozen_at = local.halted_at or time.time()  # type: ignore[attr-defined]
        out.last = None
        await self._tree_round(out)  # the last files, and the manifest that settles the tree
        return self._round_reply(out, frozen_at=out.frozen_at)

    async def _halt(self, out: _Outgoing, req: MoveRequest) -> None:
        """Stop a live command at its next safepoint, its output all sent before anything
        of the target's: the logs go on in one stream, nothing lost or doubled."""
        slot, local = out.slot, out.slot.local
        slot.halted, slot.resume = self.loop.create_future(), self.loop.create_future()
        local.halt()  # type: ignore[attr-defined]
        try:
            outcome = await asyncio.wait_for(asyncio.shield(slot.halted), HALT_TIMEOUT)
        except TimeoutError:
            slot.resume.set_result(True)  # it goes on here whenever it reaches one
            self.outgoing.pop(req.mid, None)
            slot.held_by = ""
            raise MoveError(f"the command reached no safepoint in {HALT_TIMEOUT:g} s "
                            "(blocked in a host call?)") from None
        if outcome.state != "halted":
            self.outgoing.pop(req.mid, None)
            slot.held_by = ""
            raise MoveError(f"the command ended ({outcome.state}) before it could move")
        # (bounded: a stuck output reader must not hold this node's commands)
        deadline = time.monotonic() + OUTPUT_WAIT
        while not local.output_drained() and time.monotonic() < deadline:  # type: ignore[attr-defined]
            await asyncio.sleep(0.001)
        flushed = self.loop.create_future()
        local.output_barrier(  # type: ignore[attr-defined]
            lambda: self.loop.call_soon_threadsafe(_settle, flushed))
        try:
            await asyncio.wait_for(flushed, max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            self.log(f"move {req.mid}: the output of {slot.app} was not all read in "
                     f"{OUTPUT_WAIT:g} s")
        await asyncio.sleep(0)  # (the publishes scheduled before the barrier run first)
        await self.nc.flush()

    async def _state(self, req: MoveRequest) -> MoveReply:
        """The state (globals, WASI state; a command's Asyncify stack), once every chunk of
        the last round is out: it names the page map they delivered."""
        out = self.outgoing.get(req.mid)
        if out is None or out.round is None:
            raise MoveError("no frozen move here")
        local = out.slot.local
        tree = out.tree_round
        if out.round.built != out.round.count or (  # type: ignore[attr-defined]
                tree is not None and tree.built != tree.count):  # type: ignore[attr-defined]
            raise MoveError("the last round's chunks have not all been taken")
        pool = local.pool if out.slot.spec.kind == "service" else None  # type: ignore[attr-defined]
        state = await self.loop.run_in_executor(pool, local.final_state, out.stream)  # type: ignore[attr-defined]
        out.payload = state
        if out.key:
            from foglayer.trust import seal_bytes

            out.payload = seal_bytes(out.payload, out.key, f"move {req.mid} state")
        return MoveReply(True, size=len(out.payload),
                         sha256=hashlib.sha256(out.payload).hexdigest(),
                         memory=local.inst.memory_pages() << 16,  # type: ignore[attr-defined]
                         frozen_at=out.frozen_at)

    async def _release(self, req: MoveRequest) -> MoveReply:
        out = self.outgoing.pop(req.mid, None)
        if out is None:
            for s in self.slots.values():  # a freeze that failed half-way: nothing is held
                if s.held_by == req.mid and s.go is not None and not s.go.done():
                    return await self._go(s)  # (a moved-in command: it runs here now)
                if s.held_by == req.mid and s.hold is None:
                    s.held_by = ""
            return MoveReply(True)
        slot = out.slot
        if req.moved:  # the target serves it now: this copy goes, its held calls go there
            slot.moved = True
            self.slots.pop(slot.instance, None)
            self._discard(slot)
            # The placement names the target: the volume here is stale (a later start of the
            # app on this node must not see it). Its instance is closed: no file is open.
            try:
                await self.loop.run_in_executor(None, self._remove_volume, slot)
            except OSError as e:
                self.log(f"move {req.mid}: the volume of {slot.app}.{slot.replica} stays "
                         f"here: {one_line(e)}")
        if slot.hold is not None:
            slot.hold.set()
            slot.hold = None
        slot.held_by = ""
        if slot.resume is not None and not slot.resume.done():
            slot.resume.set_result(not req.moved)  # a halted command goes on here, or ends
        return MoveReply(True)

    # -- the target -------------------------------------------------------------------------

    async def _prepare(self, req: MoveRequest) -> MoveReply:
        from foglayer.cluster._exec import LocalInstance

        spec = req.spec
        if spec is None or not (spec.kind == "service" or spec.checkpointable):
            return MoveReply(False, "a move needs the spec of a service or of a live command")
        self._sweep_moves()
        if len(self.incoming) >= MAX_MOVES:
            return MoveReply(False, f"node {self.name} is already taking {MAX_MOVES} moves")
        need = spec.memory + sum(i.slot.spec.memory for i in self.incoming.values())
        used = self.used_memory()
        if used + need > self.caps.max_memory:
            return MoveReply(False, f"node full: {need} bytes needed, "
                             f"{self.caps.max_memory - used} free")
        slot = Slot(req.instance, req.app, req.replica, req.generation, spec)
        released = self._open_release(req, (MOVE_KEY, *module_key_names(spec))) \
            if spec.needs_attestation else {}
        slot.module_key = released.pop(MODULE_KEY, b"")
        from foglayer.snapshot import TreeSink

        module = await self._load_module(slot)  # fetched and compiled while the source runs
        # A fresh tree: nothing a former instance left here (a symlink, say) is trusted.
        root = self._volume_root(slot)
        assert self.data_dir is not None
        await self.loop.run_in_executor(None, remove_tree, root, self.data_dir / "volumes")
        dirs = self._dirs(slot)
        tree = TreeSink(root, max_bytes=VOLUME_ALLOWANCE, where=f"the move of {req.app}")

        def make():
            local = LocalInstance(module, spec, dirs, duty=self.duty,
                                  on_output=lambda stream, data: self._output(slot, stream, data))
            try:
                return local, local.page_sink()
            except BaseException:
                local.close()
                raise

        local, sink = await self.loop.run_in_executor(None, make)
        inc = _Incoming(slot, local, sink, tree, MAX_STATE + SEAL_OVERHEAD,
                        key=released.pop(MOVE_KEY, b""), secrets=released)
        if inc.key:
            from foglayer.trust import StreamOpener

            # Only the source holds this pair's key: frames from anyone else do not open.
            inc.opener = StreamOpener(inc.key, "pages", "", req.mid)
            inc.tree_opener = StreamOpener(inc.key, "tree", "", req.mid)
        self.incoming[req.mid] = inc
        return MoveReply(True)

    async def _move_data(self, msg) -> None:
        h = msg.headers or {}
        inc = self.incoming.get(h.get(H_MOVE, ""))
        try:
            i, n = (int(x) for x in h.get(H_CHUNK, "").split("/"))
        except ValueError:
            i = n = -1
        try:
            if inc is None:
                raise MoveError("no such move on this node")
            inc.touched = time.monotonic()
            part = h.get(H_PART)
            if part in ("pages", "tree"):  # each checked whole by the snapshot package: hashes,
                # sizes, the memory limit; files only below the volume, within a byte limit
                sink, opener = ((inc.sink, inc.opener) if part == "pages"
                                else (inc.tree, inc.tree_opener))
                data = opener.open(msg.data) if opener else msg.data  # type: ignore[attr-defined]
                done = await self.loop.run_in_executor(None, sink.apply, data)  # type: ignore[attr-defined]
                reply = MoveReply(True, pages=done)
            elif i != inc.next or len(inc.buf) + len(msg.data) > inc.limit or len(msg.data) > CHUNK:
                raise MoveError(f"state chunk {i}/{n} out of order, or over {inc.limit} bytes")
            else:
                inc.buf += msg.data
                inc.next += 1
                reply = MoveReply(True, size=len(inc.buf))
        except Exception as e:  # noqa: BLE001 - a bad chunk fails the move: the source stays
            reply = MoveReply(False, one_line(e))
            if inc is not None:
                self._drop_incoming(h.get(H_MOVE, ""))
        if msg.reply:
            await self.nc.publish(msg.reply, encode(reply))

    async def _commit(self, req: MoveRequest) -> MoveReply:
        inc = self.incoming.pop(req.mid, None)
        if inc is None:
            return MoveReply(False, "no such move on this node")
        try:
            payload = bytes(inc.buf)
            if len(payload) != req.size or hashlib.sha256(payload).hexdigest() != req.sha256:
                raise MoveError("the state does not match its SHA-256: refused")
            slot, local = inc.slot, inc.local
            if inc.key:
                from foglayer.trust import unseal_bytes

                payload = unseal_bytes(payload, inc.key, f"move {req.mid} state", "moved state")
            await self.loop.run_in_executor(None, local.adopt, inc.sink, payload,  # type: ignore[attr-defined]
                                            self._dirs(slot), inc.secrets)
        except BaseException:
            inc.local.close()  # type: ignore[attr-defined]
            raise
        slot.local, slot.state = local, "running"
        self.slots[slot.instance] = slot
        self.arrived[req.mid] = slot.instance
        while len(self.arrived) > 4 * MAX_MOVES:
            self.arrived.pop(next(iter(self.arrived)))
        await self._status(slot)
        snaps = slot.spec.snapshots
        if snaps is not None and snaps.mode == "every":  # (its first one: every page)
            asyncio.create_task(self._snapshot_every(slot, snaps.every))
        if slot.spec.kind == "command":  # runs on from where the source stopped, once the
            # placement names this copy: the controller's release says so (see _go)
            slot.held_by, slot.go = req.mid, self.loop.create_future()
            asyncio.create_task(self._run_after_go(slot, local))
        return MoveReply(True, running_at=time.time())

    async def _run_after_go(self, slot: Slot, local) -> None:
        if await slot.go:  # type: ignore[misc]
            await self._run_command(slot, local)

    async def _go(self, slot: Slot) -> MoveReply:
        """A moved-in command starts running: its answer says when its first instruction
        ran (its rewind rebuilt, it runs its own code again)."""
        first = self.loop.create_future()
        slot.local.on_first_instruction(  # type: ignore[attr-defined]
            lambda t: self.loop.call_soon_threadsafe(_settle, first, t))
        slot.held_by = ""
        slot.go.set_result(True)  # type: ignore[union-attr]
        try:
            running_at = await asyncio.wait_for(asyncio.shield(first), FIRST_WAIT)
        except TimeoutError:
            running_at = time.time()
        return MoveReply(True, running_at=running_at)

    def _drop_incoming(self, mid: str) -> None:
        """Forget a move that will not commit here: its instance and the files it brought."""
        inc = self.incoming.pop(mid, None)
        if inc is not None:
            inc.local.close()  # type: ignore[attr-defined]
            self.log(f"dropped the incoming move {mid} of {inc.slot.app}.{inc.slot.replica}")
            try:
                self._remove_volume(inc.slot)
            except OSError as e:
                self.log(f"move {mid}: the files it brought stay here: {one_line(e)}")

    def _sweep_moves(self) -> None:
        """Give up the moves no step reached for long: the controller is gone, or this
        node's connection dropped and the abort never came. A frozen source waits for its
        controller instead (the placement record decides whether it serves on)."""
        now = time.monotonic()
        for mid, inc in list(self.incoming.items()):
            if now - inc.touched > IDLE_MOVE or now - inc.started > INCOMING_TTL:
                self._drop_incoming(mid)
        for mid, out in list(self.outgoing.items()):
            if not out.slot.held_by and now - out.touched > IDLE_MOVE:
                self.outgoing.pop(mid, None)

    async def _abort(self, req: MoveRequest) -> MoveReply:
        """The move is off: what it prepared goes, and so does the copy its commit started
        here if the controller never heard that commit (it stays on the source)."""
        self._drop_incoming(req.mid)
        iid = self.arrived.pop(req.mid, None)
        slot = self.slots.get(iid) if iid and iid == req.instance else None
        if slot is not None:
            self.slots.pop(slot.instance, None)
            self._discard(slot)
            self.log(f"stopped {slot.app}.{slot.replica}: its move {req.mid} was called off")
        return MoveReply(True)


TRASH = ".trash-"  # a volume being removed: renamed first, never taken for a live one


def remove_tree(root: Path, base: Path) -> None:
    """Remove the directory ``root`` (or a symlink or file in its place, never followed) below
    ``base``: renamed to a trash name beside it first, so a crash midway leaves no half-removed
    tree under the live name; trash that an earlier crash left there goes too."""
    if not root.is_relative_to(base) or root == base or ".." in root.relative_to(base).parts:
        raise OSError(f"{root} is not below {base}")
    rel = root.relative_to(base).parts
    for depth in range(1, len(rel)):
        # (each dir between them is a real dir: a symlink there would lead the removal away)
        above = base.joinpath(*rel[:depth])
        try:
            if not stat.S_ISDIR(os.lstat(above).st_mode):
                raise OSError(f"{above} is not a directory")
        except FileNotFoundError:
            return  # nothing there to remove
    if os.path.lexists(root):
        trash = root.with_name(f"{TRASH}{root.name}-{secrets.token_hex(4)}")
        os.rename(root, trash)
    for old in root.parent.glob(f"{TRASH}{root.name}-*"):
        if stat.S_ISDIR(os.lstat(old).st_mode):
            shutil.rmtree(old)  # (it removes symlinks inside, never what they point to)
        else:
            old.unlink()


def _settle(fut: asyncio.Future, value: object = None) -> None:
    if not fut.done():
        fut.set_result(value)
