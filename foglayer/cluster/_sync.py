"""A synchronous face on :class:`Client` (for tests, benchmarks and scripts).

The client's event loop runs in one background thread: the calling thread has no loop of
its own, so the process still has exactly one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from foglayer.cluster._bus import Creds
from foglayer.cluster.client import Client


class SyncClient:
    def __init__(self, creds: Creds, name: str = "fog-sync") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="fog-client")
        self._thread.start()
        try:
            self.client: Client = self.run(Client.open(creds, name))
        except BaseException:
            self._stop_loop()
            raise

    def run(self, coro, timeout: float | None = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        attr = getattr(self.client, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            return self.run(attr(*args, **kwargs))

        return call

    def close(self) -> None:
        try:
            self.run(self.client.close(), timeout=10)
        except Exception:  # noqa: BLE001
            pass
        self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

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
