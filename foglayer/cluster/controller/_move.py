"""Live moves, driven by the leading controller (``fog migrate``; see :mod:`.._move`).

1. The target must pass every filter for the app (else the move is refused with the reason).
2. The target prepares early: it fetches and compiles the module and makes a fresh instance
   while the source runs.
3. Pre-copy: rounds of the pages that changed since the last round go source -> controller
   -> target in chunks, one in flight (flow control: no side holds more than a round and a
   chunk), while the source serves. Rounds stop when the delta is small or stops shrinking.
4. The source freezes the app: a service between two calls (calls that arrive from then on
   wait), a live command at its next safepoint (its stack unwound, its output all sent).
   The last pages, then the state (globals, WASI state, a command's Asyncify stack; it
   names the page map those chunks delivered) and the volumes follow.
5. The target checks the state's SHA-256, switches and serves.
6. The placement record is compare-and-set on its KV revision: that write decides which copy
   is live. Only then is the source told to let go; its held calls are answered "moved" and
   the clients retry on the target. A target that fails or never answers leaves the source
   running, its held calls served there.
"""

from __future__ import annotations

import asyncio
import secrets
import time

from foglayer.cluster._move import (
    CHUNK,
    H_MOVE,
    H_PART,
    MAX_PAGE_CHUNK,
    MOVE_KEY,
    MOVE_SUBJECT,
    SEAL_OVERHEAD,
    MoveCommand,
    MoveError,
    MoveProgress,
    MoveReply,
    MoveRequest,
    MoveSummary,
    progress_subject,
)
from foglayer.cluster._protocol import (
    DECISIONS,
    H_CHUNK,
    INSTANCES,
    PLACEMENTS,
    BadMessage,
    InstanceRecord,
    Reply,
    StopRequest,
    cmd_subject,
    decode,
    encode,
)
from foglayer.cluster._scheduler import FILTERS, App, latency_gain, schedule
from foglayer.cluster.controller._attest import PLATFORM
from foglayer.cluster.controller._registry import ACTIVE
from foglayer.runtime import format_size

STEP_TIMEOUT = 10.0  # one step of a move on a node (a chunk, a freeze, a release)
PREPARE_TIMEOUT = 60.0  # fetching and compiling the module on the target
COMMIT_TIMEOUT = 60.0  # restoring on the target
MAX_ROUNDS = 8  # pre-copy rounds at most before the source freezes
SMALL_DELTA = 8  # pages: a round this small is the last before the freeze
DRAIN_RETRY = 5.0  # seconds before a drain tries again to move what it could not
UNDO_TIMEOUT = 3.0  # telling the nodes a move is off (a hung target holds nothing that counts)
# A node whose bus connection dropped mid-move comes back within a reconnect or two: the
# nodes are told the move's outcome until they hear it, this long (a frozen source that
# still missed it reports its freeze in its heartbeats, and is answered then).
TELL_PATIENCE = 10.0
TELL_RETRY = 0.25
# A step that waits longer than this has the node's bus link checked: a node that reconnected
# since the move began may have lost the step or its answer, so the step fails then, not at
# its timeout (a commit waits a minute). Missed pings in a row count as a lost link too.
WATCH_EVERY = 1.0
PING_TIMEOUT = 2.0
MISSED_PINGS = 3
REBALANCE_EVERY = 2.0  # seconds between looks for a node that serves an app's latency better
OPERATOR_MOVE = "fog migrate"  # the reason of a move an operator asked for: it pins the app
MOVES_KEPT = 10  # live moves fog explain lists per replica


class Mover:
    def _init_moves(self) -> None:
        # The instances moves create, not yet in a placement: what each may fetch and report.
        self._moving: dict[str, dict] = {}
        self._draining: dict[str, float] = {}  # placement key -> when a drain may try again
        # placement key -> why it cannot leave its cordoned node (said once per reason)
        self._drain_blocked: dict[str, str] = {}
        # app -> (generation, spec) before its latest deploy: a re-deploy that changes only
        # the app's preferences moves it live instead of restarting it
        self._prev_specs: dict[str, tuple[int, object]] = {}
        self._following: set[str] = set()  # placement keys moving to new preferences
        self._active_moves: set[str] = set()  # ids of the moves this controller drives now
        self._links: dict[str, dict[str, int]] = {}  # move id -> node -> its reconnects then
        self._resolving: set[str] = set()  # frozen instances being released (_resolve_held)
        self._rebalanced_at = 0.0
        self._rebalancing: dict[str, float] = {}  # placement key -> when it may try again

    async def _follow_preferences(self, key: str, p: dict, app) -> bool:
        """A new generation whose spec differs only in its preferences: move the running
        instance live to the scheduler's new pick (or keep it where it is). False: restart."""
        import msgspec

        spec, gen = app.spec, app.generation
        prev = self._prev_specs.get(spec.name)
        if (prev is None or prev[0] != p["generation"] or not spec.moves_live
                or p["state"] != "running"
                or msgspec.structs.replace(prev[1], preferences=spec.preferences) != spec):
            return False
        if key in self._following:
            return True
        winner = schedule(spec, self._views(), p["replica"]).winner
        if winner is None:
            return False
        if winner == p["node"]:  # still the best place: the instance carries on as it is
            await self._set(key, p, generation=gen)
            return True
        self._following.add(key)
        why = f"generation {gen} changed its preferences"

        async def go() -> None:
            try:
                await self._move_instance(MoveCommand(spec.name, p["replica"], winner,
                                                      secrets.token_hex(8)), why)
            except Exception as e:  # noqa: BLE001 - then it restarts there instead
                self._prev_specs.pop(spec.name, None)
                await self.event("move-failed", f"{key} -> {winner} ({why}): {e}; "
                                 "restarting it instead", app=spec.name)
            finally:
                self._following.discard(key)
                self._dirty.set()

        asyncio.create_task(go())
        return True

    async def _drain(self) -> None:
        """Move everything off cordoned nodes: live if the app moves live, else by a restart."""
        now = time.monotonic()
        for key, p in list(self.placements.items()):
            node = p.get("node")
            if node not in self.cordoned or p["state"] not in ACTIVE:
                self._drain_blocked.pop(key, None)
                if p["state"] == "running" and node is not None:
                    await self._evict_if_distrusted(key, p, node)
                continue
            if self._draining.get(key, 0) > now:
                continue  # a move is under way, or failed a moment ago
            rec = self.apps.get(p["app"])
            if rec is None:
                continue
            why = f"node {node} drained"
            if rec.spec.moves_live and p["state"] != "running":
                continue  # still starting: it moves live once it runs (a restart would kill it)
            if rec.spec.moves_live:
                decision = schedule(rec.spec, self._views(), p["replica"], (node,))
                if decision.winner is None:
                    self._draining[key] = now + DRAIN_RETRY
                    await self._say_drain_blocked(key, node, p["app"], decision.no_fit())
                    continue
                self._draining[key] = now + 3600
                cmd = MoveCommand(p["app"], p["replica"], decision.winner, secrets.token_hex(8))
                asyncio.create_task(self._drain_move(key, cmd, why, decision))
            else:  # mobility: restart: it restarts elsewhere
                self._stop_instance(p)
                await self._place(key, rec.spec, p["generation"], p["replica"], why=why,
                                  exclude=(node,), restarts=p.get("restarts", 0),
                                  moved_from=node)

    async def _evict_if_distrusted(self, key: str, p: dict, node: str) -> None:
        """An app with secrets, a TEE or an encrypted module leaves a node whose latest
        appraisal no longer affirms (a stricter policy, a changed measurement): by a restart
        elsewhere, or pending, never live: the pair key of a live move needs both nodes
        attested, and state from a node we no longer trust is not carried on."""
        rec = self.apps.get(p["app"])
        result = self.results.get(node)
        # Only an appraisal of the node itself (its platform: at join, renewal, a new
        # policy) speaks for every app on it; one module refused at its start does not.
        if (rec is None or not rec.spec.needs_trust or result is None or result.affirming
                or result.module_digest != PLATFORM or key in self._following
                or any(m["app"] == p["app"] for m in self._moving.values())):
            return
        self._stop_instance(p)
        await self._place(key, rec.spec, p["generation"], p["replica"],
                          why=f"node {node} no longer attested: {result.why()}",
                          exclude=(node,), restarts=p.get("restarts", 0), moved_from=node)

    async def _say_drain_blocked(self, key: str, node: str, app: str, why: str) -> None:
        """An event (fog events, and fog drain shows it) when an app cannot leave a drained
        node, once per reason: the drain waits for it, and the operator must know why."""
        if self._drain_blocked.get(key) != why:
            self._drain_blocked[key] = why
            await self.event("drain-blocked", f"{key} cannot leave {node} (drained): {why}",
                             app=app, node=node, key=key)

    async def _rebalance(self) -> None:
        """Move an app live to a node that serves its ``low_latency_to`` preference clearly
        better than its current one (a node that joined, came back or was uncordoned): the
        scheduler's pick, if its round trip to the site beats the current one by the margin
        (``latency_gain``). An app that moved stays a while (``settle``): no flapping. An app
        the operator moved (``fog migrate``) stays where it was put until its next deploy:
        the controller never undoes an operator's move."""
        settle = self.cfg.settle
        now = time.monotonic()
        if now - self._rebalanced_at < REBALANCE_EVERY:
            return
        self._rebalanced_at = now
        views = None
        for key, p in list(self.placements.items()):
            rec = self.apps.get(p["app"])
            if (rec is None or not rec.spec.moves_live or p["state"] != "running"
                    or not rec.spec.preferences.low_latency_to
                    or p.get("generation") != rec.generation or not p.get("node")
                    or p["node"] in self.cordoned or key in self._draining
                    or key in self._following or self._rebalancing.get(key, 0) > now
                    or p.get("pinned") == rec.generation
                    or time.time() - (p.get("running_at") or 0) < settle * bool(p.get("moved_from"))
                    or any(m["app"] == p["app"] for m in self._moving.values())):
                continue
            views = views if views is not None else {v.name: v for v in self._views()}
            current = views.get(p["node"])
            decision = schedule(rec.spec, views.values(), p["replica"])
            winner = views.get(decision.winner or "")
            if current is None or winner is None or winner.name == current.name:
                continue
            gain = latency_gain(rec.spec, current, winner)
            if gain is None:
                continue
            self._rebalancing[key] = now + settle
            cmd = MoveCommand(p["app"], p["replica"], winner.name, secrets.token_hex(8))
            asyncio.create_task(self._rebalance_move(key, cmd, f"a better node: {gain}",
                                                     decision))

    async def _rebalance_move(self, key: str, cmd: MoveCommand, why: str, decision) -> None:
        try:
            await self._move_instance(cmd, why, decision)
        except Exception as e:  # noqa: BLE001 - it stays where it is; tried again later
            await self.event("move-failed", f"{key} -> {cmd.to} ({why}): {e}", app=cmd.app)
        finally:
            self._dirty.set()

    async def _drain_move(self, key: str, cmd: MoveCommand, why: str, decision=None) -> None:
        try:
            # the table that chose the target (the drained node filtered out): fog explain
            # shows it, not the scores of the placement that put the app on the drained node
            await self._move_instance(cmd, why, decision)
            self._draining.pop(key, None)
        except Exception as e:  # noqa: BLE001 - it stays where it is; tried again later
            self._draining[key] = time.monotonic() + DRAIN_RETRY
            await self.event("move-failed", f"{key} -> {cmd.to} ({why}): {e}", app=cmd.app)

    async def _on_move(self, msg) -> None:
        if not self.lease.leader or not msg.reply:
            return  # the leader answers
        try:
            cmd = decode(msg.data, MoveCommand)
        except BadMessage as e:
            await self.nc.publish(msg.reply, encode(MoveSummary(False, f"bad move: {e}")))
            return
        asyncio.create_task(self._answer_move(cmd, msg.reply))

    async def _answer_move(self, cmd: MoveCommand, reply: str) -> None:
        try:
            summary = await self._move_instance(cmd)
        except MoveError as e:
            summary = MoveSummary(False, str(e), app=cmd.app, target=cmd.to)
        except Exception as e:  # noqa: BLE001 - reported to the client, never raised
            summary = MoveSummary(False, f"{type(e).__name__}: {e}", app=cmd.app, target=cmd.to)
        if not summary.ok:
            await self.event("move-failed", f"{cmd.app}.{cmd.replica} -> {cmd.to}: "
                             f"{summary.error}", app=cmd.app)
        await self.nc.publish(reply, encode(summary))

    def _move_target_check(self, spec, to: str) -> None:
        view = next((v for v in self._views() if v.name == to), None)
        if view is None:
            raise MoveError(f"no node named {to!r}")
        app = App(spec)
        for name, f in FILTERS:
            why = f(app, view)
            if why is not None:
                raise MoveError(f"node {to} fails the {name} filter: {why}")

    async def _links_of(self, node: str) -> int | None:
        """How often ``node`` has reconnected to the bus (None: it does not answer)."""
        try:
            msg = await self.nc.request(cmd_subject(node, "ping"), b"", timeout=PING_TIMEOUT)
            return decode(msg.data, Reply).links
        except Exception:  # noqa: BLE001 - no responders, timeout, a bad answer
            return None

    async def _ask(self, node: str, mid: str, verb: str, data: bytes, timeout: float,
                   headers: dict | None = None):
        """One request of move ``mid`` to ``node``, its link watched while it waits."""
        req = asyncio.ensure_future(self.nc.request(cmd_subject(node, verb), data,
                                                    headers=headers, timeout=timeout))
        missed = 0
        try:
            while True:
                done, _ = await asyncio.wait({req}, timeout=WATCH_EVERY)
                if done:
                    return req.result()
                then = self._links.get(mid, {}).get(node)
                if then is None:
                    continue
                now = await self._links_of(node)
                missed = missed + 1 if now is None else 0
                if (now is not None and now != then) or missed >= MISSED_PINGS:
                    raise ConnectionError("its bus connection dropped")
        finally:
            req.cancel()

    async def _step(self, node: str, req: MoveRequest, timeout: float = STEP_TIMEOUT) -> MoveReply:
        try:
            msg = await self._ask(node, req.mid, "migrate", encode(req), timeout)
            reply = decode(msg.data, MoveReply)
        except BadMessage as e:
            raise MoveError(f"node {node}: a bad answer to {req.op}: {e}") from None
        except Exception as e:  # noqa: BLE001 - no responders, timeout: the node is away
            raise MoveError(f"node {node} did not answer {req.op} ({_why(e)})") from None
        if not reply.ok:
            raise MoveError(f"node {node} refused {req.op}: {reply.error}")
        return reply

    async def _move_instance(self, cmd: MoveCommand, why: str = OPERATOR_MOVE,
                             decision=None) -> MoveSummary:
        """Move one instance live. ``decision``: the scheduler's table that chose the target
        (fog explain shows it), if one did."""
        t0 = time.monotonic()
        key = f"{cmd.app}.{cmd.replica}"
        rec = self.apps.get(cmd.app)
        if rec is None:
            raise MoveError(f"no app named {cmd.app!r}")
        spec = rec.spec
        if not spec.moves_live:
            raise MoveError(f"app {cmd.app!r} has mobility: restart ({spec.kind}): it restarts "
                            "elsewhere, it does not move live")  # (a live command: checkpointable)
        p = self.placements.get(key)
        if cmd.replica >= spec.replicas:
            have = {0: "none", 1: f"{cmd.app}.0"}.get(
                spec.replicas, f"{cmd.app}.0 to {cmd.app}.{spec.replicas - 1}")
            raise MoveError(f"app {cmd.app!r} has no replica {cmd.replica} (replicas: {have})")
        if p is None or p["state"] != "running" or not p.get("node"):
            raise MoveError(f"{key} is not running (state {p['state'] if p else 'unplaced'})")
        source = p["node"]
        if source == cmd.to:
            raise MoveError(f"{key} already runs on {cmd.to}")
        self._move_target_check(spec, cmd.to)  # (a TEE/secrets app: an attested target)
        # An app that needs attestation moves sealed, between two freshly attested nodes.
        sealed = await self._pair_releases(spec, source, cmd.to) if spec.needs_attestation \
            else {}
        src_release = sealed.get(source, ("", ""))

        async def progress(phase: str, sent: int = 0, total: int = 0) -> None:
            await self.nc.publish(progress_subject(cmd.mid), encode(MoveProgress(phase, sent, total)))

        mid, old = cmd.mid, p["instance"]
        new = f"{cmd.app}-{cmd.replica}-{secrets.token_hex(4)}"
        self._moving[new] = {"app": cmd.app, "node": cmd.to, "instance": new}
        self._active_moves.add(mid)
        links = {n: await self._links_of(n) for n in (source, cmd.to)}
        self._links[mid] = {n: k for n, k in links.items() if k is not None}
        committed = False
        sent = rounds = 0

        async def copy_round(info: MoveReply) -> None:
            """A round's page chunks, then its volume chunks (changed blocks by hash)."""
            nonlocal sent
            for part, n in (("pages", info.chunks), ("tree", info.tree_chunks)):
                for i in range(n):
                    data = await self._pull(source, mid, i, part, MAX_PAGE_CHUNK + SEAL_OVERHEAD)
                    await self._push(cmd.to, mid, i, n, data, part)
                    sent += len(data)
                    what = "pages" if part == "pages" else "volume files"
                    await progress(f"round {rounds + 1}: copying {what}", sent)

        try:
            await progress("preparing the target")
            await self._put(INSTANCES, new, InstanceRecord(cmd.app, cmd.replica, cmd.to))
            rel, ses = sealed.get(cmd.to, ("", ""))
            await self._step(cmd.to, MoveRequest("prepare", mid, new, cmd.app, cmd.replica,
                                                 p["generation"], spec, release=rel,
                                                 session=ses), PREPARE_TIMEOUT)
            last = None
            while not cmd.stop_and_copy and rounds < MAX_ROUNDS:
                info = await self._step(source, MoveRequest("round", mid, old,
                                                            release=src_release[0],
                                                            session=src_release[1]))
                src_release = ("", "")  # the source opens it once
                await copy_round(info)
                rounds += 1
                if info.pages <= SMALL_DELTA or (last is not None and info.pages >= last):
                    break  # small enough, or the app dirties pages as fast as they go
                last = info.pages
            await progress("freezing the source", sent)
            t_freeze = time.monotonic()
            info = await self._step(source, MoveRequest("freeze", mid, old,
                                                        release=src_release[0],
                                                        session=src_release[1]))
            frozen_at = info.frozen_at
            await copy_round(info)
            rounds += 1
            info = await self._step(source, MoveRequest("state", mid))  # (names every chunk)
            chunks = max(1, -(-info.size // CHUNK))
            for i in range(chunks):
                data = await self._pull(source, mid, i, "state", CHUNK + SEAL_OVERHEAD)
                await self._push(cmd.to, mid, i, chunks, data, "state")
                sent += len(data)
                await progress("copying the state", sent)
            done = await self._step(cmd.to, MoveRequest("commit", mid, size=info.size,
                                                        sha256=info.sha256), COMMIT_TIMEOUT)
            committed = True
            t_running = time.monotonic()
            moved = {**p, "node": cmd.to, "instance": new, "state": "running",
                     "moved_from": source, "updated": time.time(), "running_at": time.time(),
                     "error": None,
                     # an operator's move holds until the app's next deploy
                     "pinned": rec.generation if why == OPERATOR_MOVE else None}
            await self._cas_placement(key, old, moved)
            self._sent[new] = time.monotonic()
        except BaseException:
            try:
                await self._undo_move(cmd, source, new, committed)
            finally:
                self._active_moves.discard(mid)
            raise
        finally:
            self._moving.pop(new, None)
            self._links.pop(mid, None)
        if spec.kind == "command":
            # A command runs on the target only now that the placement names it (never two
            # running copies, even for a moment). If that word is lost, its heartbeats say
            # it is held, and the placement has it released there.
            go = await self._tell(cmd.to, MoveRequest("release", mid, new, moved=False))
            t_running = time.monotonic()
            done = go or MoveReply(True)
        # The target is live: the source lets go when it hears it. If its connection is down
        # that long, the placement decides: its next heartbeat gets its copy stopped.
        await self._tell(source, MoveRequest("release", mid, moved=True))
        self._active_moves.discard(mid)
        downtime = t_running - t_freeze
        mode = "stop-and-copy" if cmd.stop_and_copy else "pre-copy"
        dec = self.decisions.setdefault(cmd.app, {"app": cmd.app, "replicas": {}})
        row = dec["replicas"].setdefault(str(cmd.replica), {})
        if decision is not None:
            row.update(decision.to_dict())
        row.update(winner=cmd.to, time=time.time(), why=f"{why}: moved live from {source}")
        # Each live move and why it happened (fog explain lists them).
        row["moves"] = [*row.get("moves", []), {"time": time.time(), "source": source,
                                                "target": cmd.to, "why": why}][-MOVES_KEPT:]
        await self._put(DECISIONS, cmd.app, dec)
        await self.event("moved", f"{key} moved live from {source} to {cmd.to} ({why}, "
                         f"{mode}): downtime {1000 * downtime:.0f} ms, {rounds} round"
                         f"{'s' * (rounds != 1)}, {format_size(sent)} sent for "
                         f"{format_size(info.memory)} of memory",
                         app=cmd.app, node=cmd.to, downtime_s=round(downtime, 6))
        switch = (done.running_at - frozen_at
                  if spec.kind == "command" and frozen_at and done.running_at else 0.0)
        return MoveSummary(True, app=cmd.app, source=source, target=cmd.to, mode=mode,
                           rounds=rounds, total_s=time.monotonic() - t0, downtime_s=downtime,
                           bytes_sent=sent, memory=info.memory, switch_s=max(0.0, switch))

    async def _pair_releases(self, spec, source: str, target: str) -> dict[str, tuple[str, str]]:
        """Attest both nodes for the app's module; release to each the key of this node pair
        (bound to both results), and to the target the app's secrets too. Node -> (release,
        session). The pages and the state then travel sealed: only these two attested nodes
        can read them, and the target takes them only from this source."""
        from foglayer.trust import TrustError, pair_key

        names = self.release_names(spec)  # (the target loads the module: an encrypted one's key)
        r_dst, s_dst = await self.attest(target, spec.digest, (MOVE_KEY, *names))
        r_src, s_src = await self.attest(source, spec.digest, (MOVE_KEY,))
        for node, r in ((target, r_dst), (source, r_src)):
            if not r.affirming:
                raise MoveError(f"attestation of {node}: {r.why()}")
        key = pair_key(self.broker.identity.master_key, source, target, r_src.id, r_dst.id)
        try:
            plain = await self.released_values(spec, names)
            return {target: (self.broker.release(s_dst, {MOVE_KEY: key, **plain}), s_dst),
                    source: (self.broker.release(s_src, {MOVE_KEY: key}), s_src)}
        except TrustError as e:
            raise MoveError(str(e)) from None

    async def _pull(self, node: str, mid: str, index: int, part: str, limit: int) -> bytes:
        req = encode(MoveRequest("chunk", mid, index=index, part=part))
        try:
            msg = await self._ask(node, mid, "migrate", req, STEP_TIMEOUT)
        except Exception as e:  # noqa: BLE001
            raise MoveError(f"node {node} did not hand out chunk {index} ({_why(e)})") from None
        if not msg.data or len(msg.data) > limit:
            raise MoveError(f"node {node}: {part} chunk {index} is empty or over {limit} bytes")
        return msg.data

    async def _push(self, node: str, mid: str, index: int, count: int, data: bytes,
                    part: str) -> None:
        headers = {H_MOVE: mid, H_CHUNK: f"{index}/{count}", H_PART: part}
        try:
            msg = await self._ask(node, mid, "mdata", data, STEP_TIMEOUT, headers)
            reply = decode(msg.data, MoveReply)
        except Exception as e:  # noqa: BLE001
            raise MoveError(f"node {node} did not take chunk {index} ({_why(e)})") from None
        if not reply.ok:
            raise MoveError(f"node {node} refused chunk {index}: {reply.error}")

    async def _cas_placement(self, key: str, old: str, moved: dict) -> None:
        """Write the new placement only over the very record that named the source's copy."""
        import json

        kv = self.kv[PLACEMENTS]
        if not self.lease.leader:
            raise MoveError("this controller lost the lease during the move")
        try:
            entry = await kv.get(key)
            current = json.loads(entry.value)
            if current.get("instance") != old:
                raise MoveError(f"{key} changed during the move (now {current.get('instance')})")
            await kv.update(key, encode(moved), last=entry.revision)
        except MoveError:
            raise
        except Exception as e:  # noqa: BLE001 - a lost compare-and-set: another writer won
            raise MoveError(f"the placement of {key} changed during the move "
                            f"({type(e).__name__})") from None
        self.placements[key] = moved

    async def _tell(self, node: str, req: MoveRequest) -> MoveReply | None:
        """Say ``req`` to ``node`` until it answers (its connection may be coming back): its
        answer, or None."""
        deadline = time.monotonic() + TELL_PATIENCE
        while True:
            try:
                return await self._step(node, req, UNDO_TIMEOUT)
            except MoveError:
                if time.monotonic() > deadline or not self.lease.leader:
                    return None
                await asyncio.sleep(TELL_RETRY)

    async def _undo_move(self, cmd: MoveCommand, source: str, new: str,
                         committed: bool) -> None:
        """The source keeps the app: the target forgets what it got (its copy too, if its
        commit happened but the answer was lost), the source serves on (or just forgets the
        move's rounds). Both are told at once, until they hear it."""
        await asyncio.gather(self._tell(cmd.to, MoveRequest("abort", cmd.mid, new)),
                             self._tell(source, MoveRequest("release", cmd.mid, moved=False)))
        if committed:
            await self._request(cmd.to, "stop", StopRequest(new))

    async def _resolve_held(self, node: str, iid: str, mid: str) -> None:
        """A node reports an instance frozen by move ``mid`` that no move here drives (its
        release was lost, or its controller died): the placement still names it, so it is
        the live copy, and it serves on."""
        if mid in self._active_moves or mid in self._resolving:
            return
        self._resolving.add(mid)
        try:
            self.log(f"{iid} on {node} is still frozen by move {mid}: releasing it")
            await self._tell(node, MoveRequest("release", mid, moved=False))
        finally:
            self._resolving.discard(mid)


def _why(e: BaseException) -> str:
    return str(e) if isinstance(e, ConnectionError) else type(e).__name__


__all__ = ["MOVE_SUBJECT", "Mover"]
