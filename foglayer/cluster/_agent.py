"""The node agent: registers this machine, sends heartbeats, runs what the controller asks.

One process, one event loop. It listens on ``fog.cmd.<name>.>``:

- ``start`` (request): ``{"instance", "app", "replica", "generation", "spec"}``; the agent
  answers at once, then fetches the module from the Object Store (verifying its SHA-256),
  compiles it (AOT cache) and runs it; every state change goes out on
  ``fog.node.<name>.status``;
- ``stop`` (request): ``{"instance"}``: stop it and forget it;
- ``invoke.<app>.<function>`` (request): call a service function; the reply's data is the
  result, or headers ``Fog-Error`` and ``Fog-Error-Kind`` (usage, app, trap, limit,
  unavailable).

Every ``heartbeat`` seconds it publishes ``fog.node.<name>.hb``: its capabilities and the state
of every instance it holds (level-triggered: a controller that missed a status event catches up
from the next heartbeat). Output of instances goes to
``fog.node.<name>.logs.<app>.<replica>.<stdout|stderr>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import platform
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from foglayer.cluster._abi import ServiceError, check_function
from foglayer.cluster._bus import (
    MODULES,
    BusError,
    Creds,
    check_name,
    connect,
    is_permission_error,
    node_cmd,
    node_inbox,
    node_out,
)
from foglayer.cluster._manifest import BASELINE, FEATURES, app_memory
from foglayer.errors import FogError
from foglayer.runtime import LimitExceeded, Trapped
from foglayer.wasi import Preopen

ACTIVE = ("starting", "running")


@dataclass
class NodeConfig:
    """How a node agent runs. ``max_memory`` None: the machine's memory."""

    name: str
    server: str | None = None
    creds: Creds | None = None
    labels: dict[str, str] = field(default_factory=dict)
    max_memory: int | None = None
    fuel_rate: float | None = None  # instructions per second; None: unthrottled
    heartbeat: float = 1.0
    data_dir: Path | None = None
    latency: dict[str, float] = field(default_factory=dict)  # site -> milliseconds
    simd: bool = True
    cpus: int | None = None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 30


def capabilities(cfg: NodeConfig, native_speed: float) -> dict:
    """What the node tells the controller about itself (the scheduler's input)."""
    from importlib.metadata import version

    phys = _physical_memory()
    duty = min(1.0, cfg.fuel_rate / native_speed) if cfg.fuel_rate and native_speed else 1.0
    features = [*BASELINE, *(f for f in FEATURES if cfg.simd or f not in ("simd", "relaxed_simd"))]
    return {
        "name": cfg.name,
        "arch": platform.machine(),
        "os": platform.system().lower(),
        "cpu_model": _cpu_model(),
        "cpus": cfg.cpus or os.cpu_count() or 1,
        "memory": phys,
        "max_memory": min(cfg.max_memory or phys, phys),
        "engine": "wasmtime",
        "engine_version": version("wasmtime"),
        "features": sorted(features),
        "tee": [],  # TEE backends (none yet: see the trust package)
        "labels": dict(cfg.labels),
        "latency": dict(cfg.latency),
        "speed": round(native_speed * duty),  # Wasm instructions per second, one core
        "fuel_rate": cfg.fuel_rate,
        "duty": round(duty, 4),
    }


@dataclass
class Slot:
    """One instance the node holds (running or finished, until the controller forgets it)."""

    instance: str
    app: str
    replica: int
    generation: int
    spec: dict
    state: str = "starting"
    exit_code: int | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    local: object | None = None  # LocalInstance once created
    calls: int = 0

    def report(self) -> dict:
        return {"app": self.app, "replica": self.replica, "generation": self.generation,
                "state": self.state, "exit_code": self.exit_code, "error": self.error,
                "started": self.started, "ended": self.ended, "calls": self.calls}


class Agent:
    """A node agent; :meth:`run` until ``stop`` is set."""

    def __init__(self, cfg: NodeConfig) -> None:
        check_name(cfg.name)
        self.cfg = cfg
        self.name = cfg.name
        self.boot = secrets.token_hex(6)
        self.slots: dict[str, Slot] = {}
        self.errors: list[Exception] = []
        self.seq = 0
        self.caps: dict = {}
        self._fetch_locks: dict[str, asyncio.Lock] = {}
        self.data_dir = cfg.data_dir
        self._stop = asyncio.Event()

    # -- life cycle -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        from foglayer._dirs import data_dir
        from foglayer.cluster._exec import calibrate

        self._stop = stop or asyncio.Event()
        self.loop = asyncio.get_running_loop()
        if self.data_dir is None:
            self.data_dir = data_dir("nodes", self.name)
        speed = await self.loop.run_in_executor(None, calibrate)
        self.caps = capabilities(self.cfg, speed)
        self.duty = self.caps["duty"]
        self.nc = await connect(self.cfg.server, self.cfg.creds, name=f"fog-node-{self.name}",
                                inbox_prefix=node_inbox(self.name), errors=self.errors)
        try:
            self.js = self.nc.jetstream()
            await self.nc.subscribe(f"{node_cmd(self.name)}.>", cb=self._on_cmd)
            await self._heartbeat()
            await self.nc.flush()
            await asyncio.sleep(0.05)
            self._check_permissions()
            hb = asyncio.create_task(self._heartbeats())
            await self._stop.wait()
            hb.cancel()
        finally:
            await self._shutdown()

    def _check_permissions(self) -> None:
        for e in self.errors:
            if is_permission_error(e) and f"{node_out(self.name)}." in str(e):
                raise BusError(f"the server refuses heartbeats from node {self.name!r}: these "
                               f"credentials belong to another node ({str(e).strip()})")
            if is_permission_error(e) and f"{node_cmd(self.name)}." in str(e):
                raise BusError(f"the server refuses node {self.name!r} its command subjects: "
                               "these credentials belong to another node")

    async def _shutdown(self) -> None:
        for slot in list(self.slots.values()):
            self._discard(slot)
        try:
            await self.nc.drain()
        except Exception:  # noqa: BLE001 - the connection may be gone already
            pass

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.heartbeat)
            try:
                await self._heartbeat()
            except Exception:  # noqa: BLE001 - keep beating through reconnects
                pass

    async def _heartbeat(self) -> None:
        self.seq += 1
        used = sum(app_memory(s.spec) for s in self.slots.values() if s.state in ACTIVE)
        body = {"name": self.name, "boot": self.boot, "seq": self.seq, "time": time.time(),
                "caps": self.caps, "used_memory": used,
                "instances": {i: s.report() for i, s in self.slots.items()}}
        await self.nc.publish(f"{node_out(self.name)}.hb", json.dumps(body).encode())

    async def _status(self, slot: Slot) -> None:
        body = {"name": self.name, "boot": self.boot, "instance": slot.instance, **slot.report()}
        try:
            await self.nc.publish(f"{node_out(self.name)}.status", json.dumps(body).encode())
        except Exception:  # noqa: BLE001 - the next heartbeat carries the same state
            pass

    # -- commands ---------------------------------------------------------------------------

    async def _on_cmd(self, msg) -> None:
        parts = msg.subject.split(".")
        verb = parts[3] if len(parts) > 3 else ""
        try:
            if verb == "invoke" and len(parts) == 6:
                await self._invoke(msg, parts[4], parts[5])
            elif verb == "start":
                await self._reply(msg, self._start(json.loads(msg.data)))
            elif verb == "stop":
                await self._reply(msg, self._stop_instance(json.loads(msg.data)))
            elif verb == "ping":
                await self._reply(msg, {"ok": True, "boot": self.boot})
            else:
                await self._reply(msg, {"ok": False, "error": f"unknown command {verb!r}"})
        except Exception as e:  # noqa: BLE001 - a bad request never kills the node
            if msg.reply:
                await self._reply(msg, {"ok": False, "error": f"{type(e).__name__}: {e}"})

    async def _reply(self, msg, body: dict) -> None:
        if msg.reply:
            await self.nc.publish(msg.reply, json.dumps(body).encode())

    def _start(self, req: dict) -> dict:
        iid = req["instance"]
        if iid in self.slots:
            return {"ok": True, "already": True}
        spec = req["spec"]
        need = app_memory(spec)
        used = sum(app_memory(s.spec) for s in self.slots.values() if s.state in ACTIVE)
        cap = self.caps["max_memory"]
        if used + need > cap:
            return {"ok": False, "error": f"node full: {need} bytes needed, {cap - used} free"}
        slot = Slot(iid, req["app"], int(req["replica"]), int(req.get("generation", 0)), spec)
        self.slots[iid] = slot
        asyncio.create_task(self._launch(slot))
        return {"ok": True}

    def _stop_instance(self, req: dict) -> dict:
        slot = self.slots.pop(req["instance"], None)
        if slot is not None:
            self._discard(slot)
        return {"ok": True, "known": slot is not None}

    def _discard(self, slot: Slot) -> None:
        local = slot.local
        slot.local = None
        if local is None:
            return
        local.stop()  # type: ignore[attr-defined]
        if slot.spec["kind"] == "service" or slot.state not in ACTIVE:
            try:
                local.close()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001
                pass

    # -- running ----------------------------------------------------------------------------

    async def _module_path(self, digest: str) -> Path:
        from foglayer._dirs import atomic_write, cache_dir

        path = cache_dir("modules") / f"{digest}.wasm"
        lock = self._fetch_locks.setdefault(digest, asyncio.Lock())
        async with lock:
            if path.exists():
                return path
            obs = await self.js.object_store(MODULES)
            res = await obs.get(digest)
            data = bytes(res.data or b"")
            if hashlib.sha256(data).hexdigest() != digest:
                raise FogError(f"module {digest[:12]}: the Object Store returned other bytes")
            await self.loop.run_in_executor(None, atomic_write, path, data)
        return path

    def _dirs(self, slot: Slot) -> list[Preopen]:
        assert self.data_dir is not None
        out = []
        for d in slot.spec.get("dirs", []):
            guest = d["guest"]
            host = self.data_dir / "volumes" / slot.app / str(slot.replica) / guest.strip("/").replace("/", "_")
            host.mkdir(parents=True, exist_ok=True)
            out.append(Preopen(host=str(host), guest=guest, readonly=bool(d.get("readonly"))))
        return out

    async def _launch(self, slot: Slot) -> None:
        from foglayer.cluster._exec import LocalInstance, load

        spec = slot.spec
        try:
            path = await self._module_path(spec["digest"])
            module = await self.loop.run_in_executor(None, load, str(path), spec, self.cfg.simd)
            if self.slots.get(slot.instance) is not slot:
                return  # stopped while it was being fetched
            local = LocalInstance(module, spec, self._dirs(slot), duty=self.duty,
                                  on_output=lambda stream, data: self._output(slot, stream, data))
            slot.local = local
            if spec["kind"] == "service":
                await self.loop.run_in_executor(local.pool if local._pool else None,
                                                local.start_service)
        except Exception as e:  # noqa: BLE001 - reported, never raised
            slot.state, slot.error, slot.ended = "failed", _one_line(e), time.time()
            if slot.local is not None:
                self._discard(slot)
            await self._status(slot)
            return
        if self.slots.get(slot.instance) is not slot:
            self._discard(slot)
            return
        slot.state = "running"
        await self._status(slot)
        if spec["kind"] == "command":
            outcome = await self._in_thread(local.run_command)
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
        subject = f"{node_out(self.name)}.logs.{slot.app}.{slot.replica}.{stream}"
        headers = {"Fog-Instance": slot.instance}

        def send() -> None:
            asyncio.ensure_future(self.nc.publish(subject, data, headers=headers))

        self.loop.call_soon_threadsafe(send)

    async def _invoke(self, msg, app: str, function: str) -> None:
        slot = next((s for s in self.slots.values()
                     if s.app == app and s.state == "running" and s.spec["kind"] == "service"
                     and s.local is not None), None)
        if slot is None:
            return await self._error(msg, "unavailable", f"app {app!r} has no running service "
                                     f"instance on node {self.name}")
        local = slot.local
        try:
            check_function(function)
            result = await self.loop.run_in_executor(local.pool, local.invoke, function,  # type: ignore[attr-defined]
                                                     msg.data)
        except ServiceError as e:
            return await self._error(msg, "app", str(e))
        except LimitExceeded as e:
            return await self._error(msg, "limit", str(e))
        except Trapped as e:
            inst = local.inst  # type: ignore[attr-defined]
            if inst.wasi.state.exit_code is not None:  # proc_exit: the instance is gone
                slot.state, slot.exit_code, slot.ended = "failed", inst.wasi.state.exit_code, time.time()
                slot.error = f"{function} called proc_exit({inst.wasi.state.exit_code})"
                self._discard(slot)
                await self._status(slot)
            return await self._error(msg, "trap", str(e), "\n".join(e.backtrace))
        except FogError as e:
            return await self._error(msg, "usage", str(e))
        except Exception as e:  # noqa: BLE001
            return await self._error(msg, "usage", _one_line(e))
        finally:
            slot.calls = local.calls  # type: ignore[attr-defined]
        if msg.reply:
            await self.nc.publish(msg.reply, result)

    async def _error(self, msg, kind: str, message: str, backtrace: str = "") -> None:
        if msg.reply:
            headers = {"Fog-Error": message.replace("\n", " ")[:2000], "Fog-Error-Kind": kind}
            if backtrace:
                headers["Fog-Backtrace"] = backtrace.replace("\n", " | ")[:4000]
            await self.nc.publish(msg.reply, b"", headers=headers)


def _settle(fut: asyncio.Future, result, error) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def run_node(cfg: NodeConfig) -> None:
    """Run a node agent in this process until SIGINT/SIGTERM (the ``fog node`` command)."""
    from foglayer.cluster._proc import run_until_signal

    run_until_signal(lambda stop: Agent(cfg).run(stop))
