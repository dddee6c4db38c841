"""The consistency check, after any fault: the state in KV and what nodes run agree.

Two rules, as the issue of partitions and degraded NATS states them:

1. every app in the desired state runs exactly the replicas it asks for: each replica has a
   placement, the placement is running on a node, and that node reports that very instance;
2. no instance runs that no placement names (nothing duplicated: a copy started during a
   partition was stopped after the heal), and no instance runs twice.

:func:`check_consistency` is pure (records in, a :class:`Verdict` out); :func:`check_continuum`
reads them from a live continuum through a :class:`~foglayer.cluster.Client`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RUNS = ("starting", "running")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: list[str] = field(default_factory=list)
    apps: int = 0
    instances: int = 0

    def __str__(self) -> str:
        if self.ok:
            return f"consistent: {self.apps} apps, {self.instances} instances, each where KV says"
        return "inconsistent: " + "; ".join(self.problems)


def check_consistency(apps: dict[str, dict], placements: dict[str, dict],
                      heartbeats: dict[str, dict], *, commands_may_exit: bool = True) -> Verdict:
    """``apps``/``placements``/``heartbeats`` as the client returns them (JSON forms)."""
    problems: list[str] = []
    running: dict[str, list[tuple[str, dict]]] = {}  # instance id -> [(node, report)]
    for node, hb in heartbeats.items():
        for iid, rep in (hb.get("instances") or {}).items():
            if rep.get("state") in RUNS:
                running.setdefault(iid, []).append((node, rep))
    named: set[str] = set()
    for name, rec in sorted(apps.items()):
        spec = rec.get("spec") or {}
        for r in range(int(spec.get("replicas", 1))):
            key = f"{name}.{r}"
            p = placements.get(key)
            if p is None:
                problems.append(f"{key} has no placement")
                continue
            named.add(p.get("instance", ""))
            if commands_may_exit and spec.get("kind") == "command" and p.get("state") == "exited":
                continue
            if p.get("state") != "running":
                problems.append(f"{key} is {p.get('state')} (on {p.get('node')})")
                continue
            where = [n for n, _ in running.get(p["instance"], [])]
            if where != [p.get("node")]:
                problems.append(f"{key} ({p['instance']}) should run on {p.get('node')}, "
                                f"runs on {', '.join(where) or 'no node'}")
    for iid, where in sorted(running.items()):
        if iid not in named:
            problems.append(f"instance {iid} runs on {', '.join(n for n, _ in where)} but no "
                            "placement names it")
        elif len(where) > 1:
            problems.append(f"instance {iid} runs {len(where)} times")
    return Verdict(not problems, problems, len(apps), len(running))


async def check_continuum(client, listen: float = 1.5) -> Verdict:
    """Read apps and placements from KV and listen to heartbeats for ``listen`` seconds."""
    apps = await client.apps()
    placements = await client.placements()
    heartbeats = await client.heartbeats(listen)
    return check_consistency(apps, placements, heartbeats)
