"""A delaying TCP relay: the WAN link between two sites, on one machine.

``tc netem`` is not in these machines' kernels, so a link between sites runs through this
relay instead: every chunk is forwarded after ``delay`` seconds (each direction, so a round
trip costs twice that), bytes are counted per direction, and :meth:`Relay.cut` drops every
connection and refuses new ones until :meth:`Relay.heal` (a partition). :meth:`Relay.cut_after`
cuts right after forwarding the chunk that a predicate picks (a fault at an exact step). It runs an asyncio loop
in a thread of its own, so it can sit in ``fog up`` or in a test process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from foglayer.errors import FogError


@dataclass
class LinkStats:
    """Bytes forwarded in each direction, and connections accepted."""

    up: int = 0  # client -> target
    down: int = 0  # target -> client
    connections: int = 0


class Relay:
    """Listen on ``host:port`` (0: a free port) and forward to ``target`` after ``delay`` s."""

    def __init__(self, target: tuple[str, int], delay: float = 0.0, *,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        if not 0 <= delay <= 10:
            raise FogError(f"relay delay {delay!r} s: must be between 0 and 10 s")
        self.target, self.delay, self.host = target, delay, host
        self.port = port
        self.stats = LinkStats()
        self._cut = False
        self._trigger: Callable[[str, bytes], bool] | None = None
        self._before = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def start(self) -> Relay:
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._accept, self.host, self.port))
                self.port = self._server.sockets[0].getsockname()[1]
            except OSError as e:
                failure.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            # Stopped: end the pipes' tasks before the loop goes, so none is left pending.
            tasks = asyncio.all_tasks(loop)
            for t in tasks:
                t.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=main, name=f"fog-relay-{self.target[1]}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise FogError(f"relay on {self.host}:{self.port}: {failure[0]}")
        return self

    def _call(self, fn) -> None:
        if self._loop is None:
            return
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    def cut(self) -> None:
        """Partition: drop every open connection and refuse new ones."""
        self._call(self._cut_now)

    def _cut_now(self) -> None:
        self._cut = True
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    def cut_after(self, pred: Callable[[str, bytes], bool], *, before: bool = False) -> None:
        """Cut (as :meth:`cut`) once a chunk for which ``pred(direction, data)`` is true
        has been forwarded ("up": client to target, "down": back), or instead of forwarding
        it (``before``); nothing after it passes."""
        def go() -> None:
            self._trigger, self._before = pred, before
        self._call(go)

    def heal(self) -> None:
        def go() -> None:
            self._cut, self._trigger = False, None
        self._call(go)

    def stop(self) -> None:
        if self._loop is None:
            return
        self.cut()

        def go() -> None:
            if self._server is not None:
                self._server.close()
            assert self._loop is not None
            self._loop.stop()
        self._loop.call_soon_threadsafe(go)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        try:
            treader, twriter = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.stats.connections += 1
        self._writers |= {writer, twriter}
        try:
            await asyncio.gather(self._pipe(reader, twriter, "up"),
                                 self._pipe(treader, writer, "down"), return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the relay stops: end quietly (asyncio reports a cancelled handler otherwise)
        finally:
            for w in (writer, twriter):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    direction: str) -> None:
        # Chunks are queued with their due time, so a delay adds latency without cutting the
        # bandwidth to one chunk per delay.
        queue: deque[tuple[float, bytes]] = deque()
        more = asyncio.Event()
        done = False

        async def send() -> None:
            while True:
                while not queue:
                    if done:
                        return
                    more.clear()
                    await more.wait()
                due, data = queue.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if self._cut:
                    return
                fire = self._trigger is not None and self._trigger(direction, data)
                if fire:  # this chunk is the last to pass (or the first not to), either way
                    self._trigger, self._cut = None, True
                    if self._before:
                        self._cut_now()
                        return
                writer.write(data)
                await writer.drain()
                if fire:
                    self._cut_now()

        sender = asyncio.create_task(send())
        try:
            while data := await reader.read(65536):
                setattr(self.stats, direction, getattr(self.stats, direction) + len(data))
                queue.append((time.monotonic() + self.delay, data))
                more.set()
        finally:
            done = True
            more.set()
            with contextlib.suppress(Exception):
                await sender
            writer.transport.abort()
