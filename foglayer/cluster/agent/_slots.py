"""Instance slots: what the node holds, started and stopped on the controller's word.

A start reserves the app's memory and descriptors against the node's budget (or is refused
with the reason), fetches the module from the leading controller (only the modules this node
was told to run: see :mod:`..controller._modules`), verifies its SHA-256, and runs it. Node
files (volumes, cached modules) are private: directories 0700, files 0600.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from foglayer.cluster._protocol import (
    H_CHUNK,
    H_ERROR,
    H_INSTANCE,
    InstanceReport,
    ModuleRequest,
    Reply,
    StartRequest,
    StopRequest,
    encode,
    log_subject,
    module_subject,
    node_inbox,
)
from foglayer.cluster._spec import MODULE_KEY, AppSpec
from foglayer.errors import FogError
from foglayer.wasi import Preopen

if TYPE_CHECKING:
    from foglayer.runtime import LoadedModule

ACTIVE = ("starting", "running")
STDIO_FDS = 5  # host fds an instance holds besides its table: two pipes (4 ends) and /dev/null
MODULE_ATTEMPTS, MODULE_WAIT = 6, 5.0


@dataclass
class Slot:
    """One instance the node holds (running or finished, until the controller forgets it)."""

    instance: str
    app: str
    replica: int
    generation: int
    spec: AppSpec
    state: str = "starting"
    exit_code: int | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    local: object | None = None  # LocalInstance once created
    calls: int = 0
    stats: object | None = None  # the instance's last Stats, kept once it is gone (usage)
    hold: asyncio.Event | None = None  # set while a move holds its calls (see ._move)
    held_by: str = ""  # the id of that move
    moved: bool = False  # another node serves it now
    # A live command's move (see ._move): ``halted`` gets the run's outcome once a halt
    # stopped it (or it ended first); ``resume`` says whether it goes on here (True) or
    # has moved away (False).
    halted: asyncio.Future | None = None
    resume: asyncio.Future | None = None
    # A command moved in: it runs once the controller says the placement names it (True),
    # or never (False: stopped before that).
    go: asyncio.Future | None = None
    # Released secrets, in memory only, until the instance is created (then in its WASI).
    secrets: dict[str, bytes] = field(default_factory=dict, repr=False)
    # An encrypted module's key, released with the secrets; dropped once the module is loaded.
    module_key: bytes = field(default=b"", repr=False)

    def report(self) -> InstanceReport:
        return InstanceReport(self.app, self.replica, self.state, self.generation,
                              self.exit_code, (self.error or "")[:2000] or None, self.started,
                              self.ended, self.calls, self.held_by)

    @property
    def fds(self) -> int:
        return self.spec.limits.max_fds + STDIO_FDS


def private_dir(path: Path, root: Path) -> Path:
    """Create ``path`` (under ``root``) with every level from ``root`` down mode 0700."""
    path.mkdir(parents=True, exist_ok=True)
    p = path
    while True:
        os.chmod(p, 0o700)
        if p == root or root not in p.parents:
            return path
        p = p.parent


def module_key_names(spec: AppSpec) -> tuple[str, ...]:
    """The release names beyond the app's secrets: an encrypted module's key."""
    return (MODULE_KEY,) if spec.encrypted else ()


class Slots:
    def _active(self) -> list[Slot]:
        return [s for s in self.slots.values() if s.state in ACTIVE]

    def used_memory(self) -> int:
        return sum(s.spec.memory for s in self._active())

    def used_fds(self) -> int:
        return sum(s.fds for s in self._active())

    def _start(self, req: StartRequest) -> Reply:
        iid = req.instance
        if iid in self.slots:
            return Reply(True, already=True)
        spec = req.spec
        need, used, cap = spec.memory, self.used_memory(), self.caps.max_memory
        if used + need > cap:
            return Reply(False, f"node full: {need} bytes needed, {cap - used} free")
        fds, fd_used = spec.limits.max_fds + STDIO_FDS, self.used_fds()
        if fd_used + fds > self.caps.max_fds:
            return Reply(False, f"node out of descriptors: {fds} needed (limits.max_fds "
                         f"{spec.limits.max_fds}), {self.caps.max_fds - fd_used} free")
        slot = Slot(iid, req.app, req.replica, req.generation, spec)
        if spec.needs_attestation:
            try:
                slot.secrets = self._open_release(req, module_key_names(spec))
                slot.module_key = slot.secrets.pop(MODULE_KEY, b"")
            except Exception as e:  # noqa: BLE001 - refused, with the reason
                return Reply(False, one_line(e))
        self.slots[iid] = slot
        asyncio.create_task(self._launch(slot))
        return Reply(True)

    def _stop_instance(self, req: StopRequest) -> Reply:
        slot = self.slots.pop(req.instance, None)
        if slot is not None:
            self._discard(slot)
        return Reply(True, known=slot is not None)

    def _discard(self, slot: Slot) -> None:
        self._forget_snapshots(slot)
        if slot.hold is not None:  # calls held by a move: they go to whoever serves it now
            slot.moved = True
            slot.hold.set()
            slot.hold = None
        slot.held_by = ""
        local = slot.local
        slot.local = None
        if local is None:
            return
        slot.stats = local.inst.stats  # type: ignore[attr-defined]
        local.stop()  # type: ignore[attr-defined]
        if slot.resume is not None and not slot.resume.done():
            slot.resume.set_result(False)  # a command halted by a move: it goes nowhere now
        halted = (slot.halted is not None and slot.halted.done()
                  and slot.halted.result().state == "halted")  # its thread has returned
        waiting = slot.go is not None and not slot.go.done()  # moved in, never started
        if waiting:
            slot.go.set_result(False)  # type: ignore[union-attr]
        if slot.spec.kind == "service" or slot.state not in ACTIVE or halted or waiting:
            try:
                local.close()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001
                pass

    # -- modules --------------------------------------------------------------------------

    async def _load_module(self, slot: Slot) -> LoadedModule:
        """The compiled module of ``slot``. An encrypted one is fetched sealed, decrypted with
        the released key and compiled in memory (its bytes and code never touch the disk),
        and refused unless its digest is the manifest's."""
        from foglayer.cluster._exec import load, load_decrypted

        spec = slot.spec
        if not spec.encrypted:
            path = await self._module_path(slot)
            return await self.loop.run_in_executor(None, load, str(path), spec, self.cfg.simd)
        from foglayer.trust import SEALED_MODULE_OVERHEAD, decrypt_module, encrypted_module_digest

        key, slot.module_key = slot.module_key, b""
        if not key:
            raise FogError(f"module {spec.digest[:12]} is encrypted and its key was not "
                           "released to this node")
        blob = await self._ask_module(slot, spec.size + SEALED_MODULE_OVERHEAD)
        if encrypted_module_digest(blob) != spec.digest:
            raise FogError(f"module {spec.digest[:12]}: the controller sent another module")
        wasm = decrypt_module(blob, key)  # (checks the decrypted bytes against that digest)
        if hashlib.sha256(wasm).hexdigest() != spec.digest:
            raise FogError(f"module {spec.digest[:12]}: decrypted digest differs from the "
                           "manifest's")
        return await self.loop.run_in_executor(None, load_decrypted, wasm, spec, self.cfg.simd)

    async def _module_path(self, slot: Slot) -> Path:
        from foglayer._dirs import atomic_write

        assert self.data_dir is not None
        digest = slot.spec.digest
        path = private_dir(self.data_dir / "modules", self.data_dir) / f"{digest}.wasm"
        lock = self._fetch_locks.setdefault(digest, asyncio.Lock())
        async with lock:
            if path.exists():  # re-hashed before every use: the cache is not trusted either
                data = await self.loop.run_in_executor(None, path.read_bytes)
                if hashlib.sha256(data).hexdigest() == digest:
                    return path
            data = await self._ask_module(slot)
            if hashlib.sha256(data).hexdigest() != digest:
                raise FogError(f"module {digest[:12]}: the controller sent other bytes")
            await self.loop.run_in_executor(None, atomic_write, path, data)
            os.chmod(path, 0o600)
        return path

    async def _ask_module(self, slot: Slot, limit: int | None = None) -> bytes:
        """The module of ``slot``, in chunks from the leading controller (see the module doc);
        at most ``limit`` bytes (the spec's size)."""
        inbox = f"{node_inbox(self.name)}.module.{secrets.token_hex(8)}"
        limit = slot.spec.size if limit is None else limit
        chunks: dict[int, bytes] = {}
        state: dict = {"n": None, "error": None, "size": 0}
        done = asyncio.Event()

        async def on_chunk(msg) -> None:
            h = msg.headers or {}
            if H_ERROR in h:
                state["error"] = h[H_ERROR]
                done.set()
                return
            try:
                i, n = (int(x) for x in h.get(H_CHUNK, "").split("/"))
            except ValueError:
                return
            if state["n"] not in (None, n) or not 0 <= i < n:
                return
            state["n"] = n
            if i not in chunks:
                state["size"] += len(msg.data)
                chunks[i] = msg.data
            if state["size"] > limit:
                state["error"] = f"more than the {limit} bytes announced"
                done.set()
            elif len(chunks) == n:
                done.set()

        sub = await self.nc.subscribe(inbox, cb=on_chunk)
        req = encode(ModuleRequest(self.name, slot.instance, slot.spec.digest))
        try:
            for _ in range(MODULE_ATTEMPTS):  # a controller taking over answers a retry
                chunks.clear()
                state.update(n=None, size=0)
                await self.nc.publish(module_subject(self.name), req, reply=inbox)
                try:
                    await asyncio.wait_for(done.wait(), MODULE_WAIT)
                    break
                except TimeoutError:
                    continue
            else:
                raise FogError(f"module {slot.spec.digest[:12]}: no controller handed it over")
        finally:
            await sub.unsubscribe()
        if state["error"]:
            raise FogError(f"module {slot.spec.digest[:12]}: {state['error']}")
        return b"".join(chunks[i] for i in range(state["n"]))

    # -- running --------------------------------------------------------------------------

    def _dirs(self, slot: Slot) -> list[Preopen]:
        assert self.data_dir is not None
        out = []
        for d in slot.spec.dirs:
            host = self.data_dir / "volumes" / slot.app / str(slot.replica) / d.volume
            private_dir(host, self.data_dir)
            out.append(Preopen(host=str(host), guest=d.guest, readonly=d.readonly))
        return out

    async def _launch(self, slot: Slot) -> None:
        from foglayer.cluster._exec import LocalInstance

        spec = slot.spec
        try:
            module = await self._load_module(slot)
            if self.slots.get(slot.instance) is not slot:
                return  # stopped while it was being fetched
            local = LocalInstance(module, spec, self._dirs(slot), duty=self.duty,
                                  on_output=lambda stream, data: self._output(slot, stream, data),
                                  secrets=slot.secrets)
            slot.secrets = {}
            slot.local = local
            if spec.kind == "service" and not (spec.snapshots
                                               and await self._restore(slot, local)):
                await self.loop.run_in_executor(local.pool if local._pool else None,
                                                local.start_service)
        except Exception as e:  # noqa: BLE001 - reported, never raised
            slot.state, slot.error, slot.ended = "failed", one_line(e), time.time()
            if slot.local is not None:
                self._discard(slot)
            await self._status(slot)
            return
        if self.slots.get(slot.instance) is not slot:
            self._discard(slot)
            return
        slot.state = "running"
        await self._status(slot)
        if spec.snapshots is not None and spec.snapshots.mode == "every":
            asyncio.create_task(self._snapshot_every(slot, spec.snapshots.every))
        if spec.kind == "command":
            await self._run_command(slot, local)

    async def _run_command(self, slot: Slot, local) -> None:
        """Run a command to its end, and report it. A live command halted by a move waits
        here: it goes on when the move fails, and ends quietly once it has moved away."""
        while True:
            outcome = await self._in_thread(local.run_command)
            if slot.halted is not None and not slot.halted.done():
                slot.halted.set_result(outcome)
            if outcome.state != "halted":
                break
            go_on = await slot.resume if slot.resume is not None else True
            slot.halted = slot.resume = None
            if not go_on or self.slots.get(slot.instance) is not slot:
                return  # moved (its instance is closed by the release) or stopped
            try:
                local.resume()
            except Exception as e:  # noqa: BLE001 - reported like any failure
                local.close()
                outcome = type(outcome)("failed", error=one_line(e))
                break
        slot.stats = local.inst.stats  # type: ignore[attr-defined]
        slot.local = None
        if self.slots.get(slot.instance) is not slot:
            return
        slot.state, slot.exit_code, slot.error = outcome.state, outcome.exit_code, outcome.error
        slot.ended = time.time()
        await self._status(slot)

    async def _in_thread(self, fn):
        fut = self.loop.create_future()

        def work() -> None:
            try:
                r = fn()
            except BaseException as e:  # noqa: BLE001
                self.loop.call_soon_threadsafe(_settle, fut, None, e)
            else:
                self.loop.call_soon_threadsafe(_settle, fut, r, None)

        threading.Thread(target=work, daemon=True, name="fog-command").start()
        return await fut

    def _output(self, slot: Slot, stream: str, data: bytes) -> None:
        subject = log_subject(self.name, slot.app, slot.replica, stream)
        headers = {H_INSTANCE: slot.instance}

        def send() -> None:
            asyncio.ensure_future(self.nc.publish(subject, data, headers=headers))

        self.loop.call_soon_threadsafe(send)


def _settle(fut: asyncio.Future, result, error) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
