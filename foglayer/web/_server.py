"""The web view's server: Starlette on uvicorn, one cluster client, snapshots pushed by SSE."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import threading
import time
from importlib import resources
from typing import Any

from foglayer.cluster import Client, Creds
from foglayer.errors import FogError
from foglayer.web._state import ViewState, build_state

POLL = 0.25  # seconds between reads of the cluster's state
EVENTS = 50  # recent events on the page


class _Feed:
    """The latest snapshot and a version that SSE streams wait on."""

    def __init__(self, creds: Creds) -> None:
        self.creds = creds
        self.state: ViewState | None = None
        self.body = b""
        self.version = 0
        self.error: str | None = None
        self.client: Client | None = None
        self._changed = asyncio.Condition()

    async def run(self) -> None:
        while True:
            try:
                if self.client is None:
                    self.client = await Client.open(self.creds, name="fog-ui", reconnect=True)
                c = self.client
                nodes, placements, apps, events = await asyncio.gather(
                    c.nodes(), c.placements(), c.apps(), c.events(last=EVENTS))
                state = build_state(nodes, placements, apps, events)
                body = json.dumps(state.to_json(), sort_keys=True).encode()
                self.error = None
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the view shows the error and keeps trying
                self.error = f"cannot read the continuum: {e}"
                with contextlib.suppress(Exception):
                    if self.client is not None:
                        await self.client.close()
                self.client = None
                await asyncio.sleep(1)
                continue
            if body != self.body:
                async with self._changed:
                    self.state, self.body = state, body
                    self.version += 1
                    self._changed.notify_all()
            await asyncio.sleep(POLL)

    async def wait_newer(self, version: int, timeout: float) -> int:
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: self.version > version), timeout)
            return self.version


def _app(feed: _Feed, token: str):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    page = resources.files("foglayer.web").joinpath("page.html").read_text()

    def authorized(request: Request) -> bool:
        given = request.query_params.get("token", "")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:]
        return secrets.compare_digest(given.encode(), token.encode())

    def guard(handler):
        async def wrapped(request: Request) -> Response:
            if not authorized(request):
                return JSONResponse({"error": "a valid token is required (?token=...)"},
                                    status_code=401)
            return await handler(request)
        return wrapped

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def state(request: Request) -> Response:
        if feed.state is None:
            return JSONResponse({"error": feed.error or "starting"}, status_code=503)
        return Response(feed.body, media_type="application/json")

    async def stream(request: Request) -> Response:
        async def events():
            version = -1
            while not await request.is_disconnected():
                if feed.version > version and feed.state is not None:
                    version = feed.version
                    yield b"event: state\ndata: " + feed.body + b"\n\n"
                elif feed.error:
                    yield f"event: failure\ndata: {json.dumps(feed.error)}\n\n".encode()
                else:
                    yield b": keep-alive\n\n"
                await feed.wait_newer(version, 10)
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    async def explain(request: Request) -> Response:
        from foglayer.cluster import UnknownApp

        name = request.path_params["app"]
        if feed.client is None:
            return JSONResponse({"error": feed.error or "starting"}, status_code=503)
        try:
            return JSONResponse(await feed.client.decision(name))
        except UnknownApp:
            return JSONResponse({"error": f"no app named {name!r}"}, status_code=404)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(feed.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            if feed.client is not None:
                with contextlib.suppress(Exception):
                    await feed.client.close()

    return Starlette(routes=[
        Route("/", guard(index)), Route("/api/state", guard(state)),
        Route("/api/stream", guard(stream)), Route("/api/explain/{app}", guard(explain)),
    ], lifespan=lifespan)


class WebView:
    """The web view of the continuum that ``creds`` reach (``admin`` credentials: read only
    is what it does). ``token``: None makes a random one; it is never served without one."""

    def __init__(self, creds: Creds, *, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None) -> None:
        if token is not None and len(token) < 16:
            raise FogError("at least 16 characters", where="token")
        self.token = token or secrets.token_urlsafe(24)
        self.host = host
        self.feed = _Feed(creds)
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as e:
            self._sock.close()
            raise FogError(f"cannot listen on {host}:{port}: {e.strerror}",
                           where="ui_port") from None
        self.port = self._sock.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.token}"

    def _make(self):
        import uvicorn

        config = uvicorn.Config(_app(self.feed, self.token), log_level="warning", lifespan="on",
                                access_log=False)
        self._server = uvicorn.Server(config)
        return self._server

    def serve(self) -> None:
        """In the foreground until Ctrl-C (``fog ui``)."""
        self._make().run(sockets=[self._sock])

    def start(self, timeout: float = 10.0) -> WebView:
        """In a thread of its own (``fog up``); returns once it answers."""
        server = self._make()
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [self._sock]},
                                        name="fog-ui", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise FogError(f"the web view did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        # Serve a first snapshot before anyone is told the URL (or say why there is none).
        while self.feed.state is None and self.feed.error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
        self._sock.close()

    def __enter__(self) -> WebView:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
