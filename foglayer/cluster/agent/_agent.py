"""The node agent: registers this machine, sends heartbeats, runs what the controller asks.

One process, one event loop. It listens on ``fog.cmd.<name>.>`` (see :mod:`.._protocol`):
``start`` (:class:`StartRequest`: answered at once, then the module is fetched, compiled and
run, every state change going out on ``fog.node.<name>.status``), ``stop``, ``ping``, and
``invoke.<app>.<function>``. Every ``heartbeat`` seconds it publishes its capabilities and the
state of every instance it holds (level-triggered: a controller that missed a status event
catches up from the next heartbeat).

The class is assembled from one part per job: this module (registration, heartbeats,
commands), :class:`Slots` (instance slots, modules, running), :class:`Invoker` (service calls),
:class:`Mover` (live moves), :class:`Durable` (snapshots of durable services).
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time

import msgspec

from foglayer.cluster._bus import BusError, check_name, connect, is_permission_error
from foglayer.cluster._protocol import (
    JS_DOMAIN,
    BadMessage,
    Heartbeat,
    Reply,
    StartRequest,
    Status,
    StopRequest,
    decode,
    encode,
    hb_subject,
    node_cmd,
    node_inbox,
    node_out,
    status_subject,
)
from foglayer.cluster.agent._attest import NodeAttester
from foglayer.cluster.agent._caps import NodeConfig, capabilities, fd_budget
from foglayer.cluster.agent._durable import Durable
from foglayer.cluster.agent._invoke import Invoker
from foglayer.cluster.agent._metrics import AgentMetrics
from foglayer.cluster.agent._move import Mover
from foglayer.cluster.agent._sites import SiteProbe
from foglayer.cluster.agent._slots import Slot, Slots, private_dir
from foglayer.cluster.agent._usage import UsageReporter


class Agent(Slots, Invoker, Mover, Durable, SiteProbe, NodeAttester, UsageReporter):
    """A node agent; :meth:`run` until ``stop`` is set."""

    def __init__(self, cfg: NodeConfig) -> None:
        check_name(cfg.name)
        self.cfg = cfg
        self.name = cfg.name
        self.boot = secrets.token_hex(6)
        self.slots: dict[str, Slot] = {}
        self.errors: list[Exception] = []
        self.seq = 0
        self.caps = None
        self.rtt: dict[str, float] = {}  # site -> measured round trip, ms
        self.metrics = AgentMetrics(self)
        self._fetch_locks: dict[str, asyncio.Lock] = {}
        self.data_dir = cfg.data_dir
        self._stop = asyncio.Event()
        self._init_moves()
        self._init_durable()

    # -- life cycle -------------------------------------------------------------------------

    def _load_native(self) -> None:
        """Load (or build, where a compiler is) the native WASI calls and dirty-page scan."""
        from foglayer.runtime import wasi_path
        from foglayer.snapshot import dirty_scan_path

        try:
            paths = {"wasi_path": wasi_path(), "dirty_scan": dirty_scan_path()}
        except Exception as e:  # noqa: BLE001 - FOG_WASI_NATIVE=1 and it cannot load
            print(f"node {self.name}: {e}", file=sys.stderr, flush=True)
            return
        self.loop.call_soon_threadsafe(self._set_native, paths)

    def _set_native(self, paths: dict[str, str]) -> None:
        self.caps = msgspec.structs.replace(self.caps, **paths)
        # (stdout: the node's log; its stderr is kept for what went wrong, in one line)
        print(f"node {self.name}: WASI calls: {paths['wasi_path']}, dirty-page scan: "
              f"{paths['dirty_scan']}", flush=True)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        from foglayer._dirs import data_dir
        from foglayer.cluster._exec import calibrate

        self._stop = stop or asyncio.Event()
        self.loop = asyncio.get_running_loop()
        if self.data_dir is None:
            self.data_dir = data_dir("nodes", self.name)
        private_dir(self.data_dir, self.data_dir)
        speed = await self.loop.run_in_executor(None, calibrate)
        self.caps = capabilities(self.cfg, speed, fd_budget(self.cfg))
        # (in the background: a move's frozen round then never waits for its build; the
        # heartbeats say which paths are active once they are loaded)
        self.loop.run_in_executor(None, self._load_native)
        await self._open_tee()
        self.duty = self.caps.duty
        self.nc = await connect(self.cfg.server, self.cfg.creds, name=f"fog-node-{self.name}",
                                inbox_prefix=node_inbox(self.name), errors=self.errors)
        try:
            self.js = self.nc.jetstream(domain=JS_DOMAIN)
            await self.nc.subscribe(f"{node_cmd(self.name)}.>", cb=self._on_cmd)
            await self._answer_site_echo()
            if self.cfg.metrics_port is not None:
                port = self.metrics.serve(self.cfg.metrics_port)
                print(f"node {self.name}: metrics on http://127.0.0.1:{port}/metrics",
                      file=sys.stderr, flush=True)
            await self._heartbeat()
            await self.nc.flush()
            await asyncio.sleep(0.05)
            self._check_permissions()
            hb = asyncio.create_task(self._heartbeats())
            probe = asyncio.create_task(self._probe_sites())
            await self._stop.wait()
            hb.cancel()
            probe.cancel()
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
        try:  # the last totals, before the instances go
            await self._report_usage()
        except Exception:  # noqa: BLE001 - the connection may be gone already
            pass
        for slot in list(self.slots.values()):
            self._discard(slot)
        self._close_tee()
        try:
            await self.nc.drain()
        except Exception:  # noqa: BLE001 - the connection may be gone already
            pass

    # -- registration and heartbeats ------------------------------------------------------

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.heartbeat)
            try:
                await self._heartbeat()
            except Exception:  # noqa: BLE001 - keep beating through reconnects
                pass

    def log(self, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} node {self.name}: {text}", file=sys.stderr, flush=True)

    async def _heartbeat(self) -> None:
        self._sweep_moves()
        self.seq += 1
        body = Heartbeat(self.name, self.boot, self.caps, self.seq, time.time(),
                         self.used_memory(), {i: s.report() for i, s in self.slots.items()},
                         dict(self.rtt), self.behind_leaf())
        await self.nc.publish(hb_subject(self.name), encode(body))
        await self._report_usage()

    async def _status(self, slot: Slot) -> None:
        r = slot.report()
        body = Status(r.app, r.replica, r.state, r.generation, r.exit_code, r.error, r.started,
                      r.ended, r.calls, name=self.name, boot=self.boot, instance=slot.instance)
        try:
            await self.nc.publish(status_subject(self.name), encode(body))
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
                await self._reply(msg, self._start(decode(msg.data, StartRequest)))
            elif verb == "stop":
                await self._reply(msg, self._stop_instance(decode(msg.data, StopRequest)))
            elif verb == "migrate":
                await self._move(msg)
            elif verb == "mdata":
                await self._move_data(msg)
            elif verb == "attest":
                await self._attest(msg)
            elif verb == "ping":
                await self._reply(msg, Reply(True, boot=self.boot,
                                             links=self.nc.stats["reconnects"]))
            else:
                await self._reply(msg, Reply(False, f"unknown command {verb!r}"))
        except BadMessage as e:
            await self._reply(msg, Reply(False, f"bad {verb} request: {e}"))
        except Exception as e:  # noqa: BLE001 - a bad request never kills the node
            await self._reply(msg, Reply(False, f"{type(e).__name__}: {e}"))

    async def _reply(self, msg, body: Reply) -> None:
        if msg.reply:
            await self.nc.publish(msg.reply, encode(body))


def run_node(cfg: NodeConfig) -> None:
    """Run a node agent in this process until SIGINT/SIGTERM (the ``fog node`` command)."""
    from foglayer.cluster._proc import run_until_signal

    run_until_signal(lambda stop: Agent(cfg).run(stop))
