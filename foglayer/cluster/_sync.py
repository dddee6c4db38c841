"""The synchronous face of :class:`Client`, as httpx pairs ``Client`` with ``AsyncClient``.

The one way to talk to a continuum without an event loop of your own: the CLI, tests,
benchmarks and scripts. The async client's loop runs in one background thread, so the calling
thread may block, and Ctrl-C (KeyboardInterrupt) there stops what it waits for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from foglayer.cluster._bus import Creds
from foglayer.cluster.client import Client, resolve

T = TypeVar("T")


def _sync(name: str) -> Callable[..., Any]:
    """``SyncClient.<name>``: :class:`Client`'s coroutine method of that name, run to its end."""
    method = getattr(Client, name)

    @functools.wraps(method)
    def call(self: SyncClient, *args: Any, **kwargs: Any) -> Any:
        return self.run(method(self.client, *args, **kwargs))

    return call


class SyncClient:
    """One connection to the cluster (as ``admin``); every :class:`Client` method, blocking.

    ``SyncClient(creds)`` takes resolved credentials; :meth:`connect` resolves them from
    ``--server`` / ``--creds`` / the environment / ``fog up``'s files first. Use it as a
    context manager (or call :meth:`close`).
    """

    def __init__(self, creds: Creds, name: str = "fog-sync") -> None:
        self.creds = creds
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="fog-client")
        self._thread.start()
        try:
            self.client: Client = self.run(Client.open(creds, name, reconnect=True))
        except BaseException:
            self._stop_loop()
            raise

    @classmethod
    def connect(cls, server: str | None = None, creds: str | os.PathLike | Creds | None = None,
                name: str = "fog-cli") -> SyncClient:
        return cls(resolve(server, creds), name)

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run ``coro`` on the client's loop; its result (or its exception) here.

        Ctrl-C cancels it and raises KeyboardInterrupt.
        """
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        try:
            return fut.result(timeout)
        except KeyboardInterrupt:
            fut.cancel()
            raise
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError(f"no answer from the cluster within {timeout:g} s") from None

    # Client's methods, one for one (see Client for what each does).
    apps = _sync("apps")
    placements = _sync("placements")
    nodes = _sync("nodes")
    app = _sync("app")
    app_placements = _sync("app_placements")
    decision = _sync("decision")
    upload = _sync("upload")
    deploy = _sync("deploy")
    wait = _sync("wait")
    stop = _sync("stop")
    invoke = _sync("invoke")
    heartbeats = _sync("heartbeats")
    events = _sync("events")
    trust = _sync("trust")
    migrate = _sync("migrate")
    policy = _sync("policy")
    set_policy = _sync("set_policy")
    put_secret = _sync("put_secret")
    attestations = _sync("attestations")

    def logs(self, app: str, sink: Callable[[dict], None], follow: bool = False) -> int:
        """Send each output chunk of ``app`` to ``sink`` (called on the client's thread); with
        ``follow``, until Ctrl-C, which ends it cleanly. The number of chunks."""
        stop = asyncio.Event()
        fut = asyncio.run_coroutine_threadsafe(
            self.client.logs(app, sink, follow=follow, stop=stop), self.loop)
        try:
            return fut.result()
        except KeyboardInterrupt:
            self.loop.call_soon_threadsafe(stop.set)
            return fut.result(10)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # A Client coroutine method not listed above (yet): run it the same way.
        if name.startswith("_") or not asyncio.iscoroutinefunction(getattr(Client, name, None)):
            raise AttributeError(name)
        return functools.partial(_sync(name), self)

    def close(self) -> None:
        try:
            self.run(self.client.close(), timeout=10)
        except Exception:  # noqa: BLE001 - closing a broken connection: nothing to save
            pass
        self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until(pred: Callable[[], Any], timeout: float = 30.0, what: str = "the condition",
               interval: float = 0.05) -> Any:
    """Poll ``pred`` until it returns something true; that value. TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - keep polling; report the last one
            last_exc = e
        if time.monotonic() > deadline:
            extra = f" (last error: {last_exc})" if last_exc else ""
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(interval)
