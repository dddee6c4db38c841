"""Service calls: ``fog.cmd.<node>.invoke.<app>.<function>`` to a running service instance."""

from __future__ import annotations

import asyncio
import time

from foglayer.cluster._protocol import ErrorKind, error_headers
from foglayer.cluster.agent._slots import one_line
from foglayer.errors import FogError
from foglayer.runtime import LimitExceeded, Trapped


class Invoker:
    async def _invoke(self, msg, app: str, function: str) -> None:
        from foglayer.cluster._abi import ServiceError, check_function

        slot = next((s for s in self.slots.values()
                     if s.app == app and s.state == "running" and s.spec.kind == "service"
                     and s.local is not None), None)
        if slot is not None and slot.hold is not None:  # being moved: answer after the switch
            asyncio.create_task(self._after_hold(msg, app, function, slot))
            return None  # (not awaited here: the node's other commands go on meanwhile)
        if slot is None or slot.local is None:
            return await self._error(msg, ErrorKind.UNAVAILABLE, f"app {app!r} has no running "
                                     f"service instance on node {self.name}")
        local = slot.local
        t0 = time.perf_counter()
        checked = False
        try:
            check_function(function)
            checked = True  # (only well-formed names become metric labels)
            result = await self.loop.run_in_executor(local.pool, local.invoke, function,  # type: ignore[attr-defined]
                                                     msg.data)
        except ServiceError as e:
            return await self._error(msg, ErrorKind.APP, str(e))
        except LimitExceeded as e:
            return await self._error(msg, ErrorKind.LIMIT, str(e))
        except Trapped as e:
            inst = local.inst  # type: ignore[attr-defined]
            if inst.wasi.state.exit_code is not None:  # proc_exit: the instance is gone
                slot.state, slot.exit_code, slot.ended = "failed", inst.wasi.state.exit_code, time.time()
                slot.error = f"{function} called proc_exit({inst.wasi.state.exit_code})"
                self._discard(slot)
                await self._status(slot)
            return await self._error(msg, ErrorKind.TRAP, str(e), "\n".join(e.backtrace))
        except FogError as e:
            return await self._error(msg, ErrorKind.USAGE, str(e))
        except Exception as e:  # noqa: BLE001
            return await self._error(msg, ErrorKind.USAGE, one_line(e))
        finally:
            slot.calls = local.calls  # type: ignore[attr-defined]
            if checked:
                self.metrics.invocations.labels(app, function).inc()
                self.metrics.invoke_seconds.labels(app, function).observe(
                    time.perf_counter() - t0)
        snaps = slot.spec.snapshots
        if snaps is not None and snaps.mode == "after-invoke":
            try:  # acknowledged only once stored: an acknowledged write survives this node
                await self._snapshot(slot)
            except Exception as e:  # noqa: BLE001 - the caller learns it was not made durable
                return await self._error(msg, ErrorKind.UNAVAILABLE, f"{function} ran but its "
                                         f"snapshot was not stored: {one_line(e)}")
        if msg.reply:
            await self.nc.publish(msg.reply, result)

    async def _after_hold(self, msg, app: str, function: str, slot) -> None:
        hold = slot.hold
        if hold is not None:
            await hold.wait()
        if slot.moved:  # served elsewhere now: the client asks the node that has it
            return await self._error(msg, ErrorKind.UNAVAILABLE, f"app {app!r} moved away "
                                     f"from node {self.name}")
        await self._invoke(msg, app, function)

    async def _error(self, msg, kind: ErrorKind, message: str, backtrace: str = "") -> None:
        if msg.reply:
            await self.nc.publish(msg.reply, b"", headers=error_headers(kind, message, backtrace))
