"""The cluster commands of ``fog``: connect, do one thing, close; what to print."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable

from foglayer.cluster import Client, Creds, load_manifest, resolve


def run(creds: Creds, fn: Callable[[Client], object], name: str = "fog-cli"):
    """Open a client, run ``await fn(client)``, close."""

    async def main():
        client = await Client.open(creds, name)
        try:
            return await fn(client)  # type: ignore[misc]
        finally:
            try:
                await client.close()
            except Exception:  # noqa: BLE001
                pass

    return asyncio.run(main())


def deploy(path: str | os.PathLike, *, server: str | None = None, creds=None,
           wait: float | None = 30.0) -> list[str]:
    """``fog deploy FILE``: validate, upload, write the desired state, wait until placed."""
    manifest = load_manifest(path)  # a bad manifest fails before any connection
    spec = manifest.spec

    async def go(c: Client) -> list[str]:
        rec = await c.deploy(manifest)
        head = (f"{spec.name}: unchanged (generation {rec['generation']})" if rec.get("unchanged")
                else f"{spec.name}: deployed generation {rec['generation']} "
                     f"(module {spec.module}, sha256 {spec.digest[:12]}, {spec.size} bytes)")
        lines = [head]
        if wait and spec.replicas:
            for p in await c.wait(spec.name, rec["generation"], spec.replicas, wait):
                where = f" on {p['node']}" if p.get("node") else ""
                extra = f": {p['error']}" if p["state"] in ("pending", "failed") and p.get("error") else ""
                lines.append(f"  {spec.name}.{p['replica']}: {p['state']}{where}{extra}")
        return lines

    return run(resolve(server, creds), go)


def ps(*, server: str | None = None, creds=None):
    from foglayer.cli._render import ps_table

    async def go(c: Client):
        return ps_table(await c.apps(), await c.placements())

    return run(resolve(server, creds), go)


def nodes(*, server: str | None = None, creds=None):
    from foglayer.cli._render import nodes_table

    async def go(c: Client):
        return nodes_table(await c.nodes(), await c.placements(), await c.apps())

    return run(resolve(server, creds), go)


def stop(app: str, *, server: str | None = None, creds=None) -> str:
    async def go(c: Client) -> str:
        await c.stop(app)
        return f"{app}: stopping (the desired state is gone; the controller stops its instances)"

    return run(resolve(server, creds), go)


def explain(app: str, *, server: str | None = None, creds=None):
    from foglayer.cli._render import explain_table

    async def go(c: Client):
        return explain_table(await c.decision(app))

    return run(resolve(server, creds), go)


def invoke(app: str, function: str, payload: bytes = b"", *, server: str | None = None,
           creds=None, timeout: float = 30.0) -> bytes:
    async def go(c: Client) -> bytes:
        return await c.invoke(app, function, payload, timeout)

    return run(resolve(server, creds), go)


def logs(app: str, write: Callable[[dict], None], *, follow: bool = False,
         server: str | None = None, creds=None) -> int:
    """``fog logs APP [-f]``: every chunk of output so far; with ``follow``, until Ctrl-C."""
    c = resolve(server, creds)

    async def main() -> int:
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
        client = await Client.open(c, "fog-logs")
        try:
            return await client.logs(app, write, follow=follow, stop=stop)
        finally:
            await client.close()

    return asyncio.run(main())


def write_chunk(chunk: dict) -> None:
    """The default sink of ``fog logs``: stdout to stdout, stderr to stderr, as bytes."""
    out = sys.stdout if chunk["stream"] == "stdout" else sys.stderr
    out.flush()
    out.buffer.write(chunk["data"])
    out.flush()
