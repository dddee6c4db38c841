"""Usage: each heartbeat, the running totals of every instance that changed go out on
``fog.node.<name>.usage`` (stream ``FOG_USAGE``, durable).

Totals, not deltas: a report that is lost or repeated changes nothing, and a node that dies
mid-run has its usage counted up to its last report. Fuel is what the engine metered (every
instance on a node meters it); a command's fuel is known when it ends, a service's after
each call. Memory-seconds are the memory the app reserves times its running time.
"""

from __future__ import annotations

import os
import time

from foglayer.cluster._protocol import Usage, UsageReport, encode, usage_subject


def _tree_bytes(root) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            total += st.st_size
    return total


class UsageReporter:
    def _usage_of(self, slot, now: float) -> Usage:
        inst = getattr(slot.local, "inst", None)
        stats = inst.stats if inst is not None else slot.stats
        end = slot.ended or now
        volumes = self.data_dir / "volumes" / slot.app / str(slot.replica)
        return Usage(
            slot.instance, slot.app, slot.spec.tenant, slot.replica, now,
            fuel=(stats.fuel or 0) if stats is not None else 0,
            invocations=slot.calls,
            wasi_calls=sum(stats.wasi_calls.values()) if stats is not None else 0,
            memory_seconds=round(slot.spec.memory * max(0.0, end - slot.started), 3),
            volume_bytes=_tree_bytes(volumes) if slot.spec.dirs else 0)

    async def _report_usage(self) -> None:
        now = time.time()
        sent = self.__dict__.setdefault("_usage_sent", {})
        items = []
        for slot in list(self.slots.values()):
            u = self._usage_of(slot, now)
            key = (u.fuel, u.invocations, u.wasi_calls, u.volume_bytes, slot.ended is None)
            if sent.get(slot.instance) != key:
                items.append(u)
                sent[slot.instance] = key
        for gone in set(sent) - set(self.slots):
            del sent[gone]
        if items:
            self.seq += 1
            await self.nc.publish(usage_subject(self.name),
                                  encode(UsageReport(self.name, self.boot, self.seq, items)))
