"""The scheduler alone (pure): every filter refuses a node that cannot host the app, the
scorers rank the rest, and no decision ever picks a node that failed a filter."""

from __future__ import annotations

import random

import pytest

from foglayer.cluster import FILTERS, NodeView, passes, schedule
from foglayer.cluster._manifest import BASELINE, FEATURES

MiB = 1 << 20


def caps(**over) -> dict:
    c = {"arch": "x86_64", "cpus": 4, "max_memory": 1024 * MiB, "speed": 1e9,
         "features": [*BASELINE, *FEATURES], "tee": [], "labels": {"tier": "edge"}, "latency": {}}
    c.update(over)
    return c


def spec(**over) -> dict:
    s = {"name": "app", "kind": "service", "limits": {"memory": 16 * MiB, "fuel": None, "timeout": None},
         "replicas": 1, "constraints": {"labels": {}, "min_memory": None, "tee": None, "arch": None,
                                        "features": []},
         "preferences": {}, "initial_memory": 0}
    for k, v in over.items():
        if k in ("labels", "min_memory", "tee", "arch", "features"):
            s["constraints"][k] = v
        elif k == "memory":
            s["limits"]["memory"] = v
        else:
            s[k] = v
    return s


GOOD = NodeView("good", caps())

# One node per filter, each failing only that filter, and an app that the good node can host.
CASES = {
    "ready": (NodeView("n", caps(), ready=False), spec()),
    "memory": (NodeView("n", caps(max_memory=64 * MiB), used_memory=60 * MiB), spec()),
    "features": (NodeView("n", caps(features=list(BASELINE))), spec(features=["simd"])),
    "tee": (NodeView("n", caps(), trusted=True), spec(tee="sev-snp")),
    "trust": (NodeView("n", caps()), spec(secrets=[{"name": "TOKEN"}])),
    "labels": (NodeView("n", caps(labels={"tier": "iot"})), spec(labels={"tier": "edge"})),
    "arch": (NodeView("n", caps(arch="aarch64")), spec(arch="x86_64")),
}


def test_every_filter_has_a_case():
    assert {name for name, _ in FILTERS} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_filter_refuses_a_node_that_cannot_host_the_app(name):
    node, app = CASES[name]
    if name == "tee":  # the good node needs the TEE to show the filter is the only obstacle
        good = NodeView("good", caps(tee=["sev-snp"]), trusted=True)
    elif name == "trust":
        good = NodeView("good", caps(), trusted=True)
    else:
        good = GOOD
    d = schedule(app, [node])
    assert d.winner is None
    (row,) = d.rows
    assert row["filter"] == name and row["reason"], row
    d = schedule(app, [node, good])
    assert d.winner == "good"
    assert next(r for r in d.rows if r["node"] == "n")["filter"] == name


def test_reasons_are_specific():
    d = schedule(spec(memory=128 * MiB), [NodeView("small", caps(max_memory=64 * MiB))])
    assert "needs 128.0 MiB" in d.rows[0]["reason"] and "64.0 MiB" in d.rows[0]["reason"]
    d = schedule(spec(labels={"tier": "cloud"}), [NodeView("e", caps())])
    assert d.rows[0]["reason"] == "label tier=cloud required, node has tier=edge"
    d = schedule(spec(tee="tdx"), [NodeView("e", caps())])
    assert d.rows[0]["reason"] == "requires TEE tdx, node has none attested"
    assert "no node fits" in d.summary()


def test_tee_any_accepts_any_backend():
    d = schedule(spec(tee="any"), [NodeView("a", caps(), trusted=True),
                                    NodeView("b", caps(tee=["tpm"]), trusted=True)])
    assert d.winner == "b"


def test_a_node_claiming_a_tee_gets_tee_and_secret_apps_only_when_trusted():
    liar = NodeView("liar", caps(tee=["sev-snp"], max_memory=1 << 40))
    for app in (spec(tee="sev-snp"), spec(secrets=[{"name": "TOKEN"}])):
        d = schedule(app, [liar])
        assert d.winner is None and d.rows[0]["filter"] == "trust"
        assert "not trusted" in d.rows[0]["reason"]
        assert schedule(app, [liar, NodeView("ok", caps(tee=["sev-snp"]), trusted=True)]).winner == "ok"


def test_min_memory_counts_as_well_as_the_limit():
    d = schedule(spec(memory=1 * MiB, min_memory=512 * MiB), [NodeView("n", caps(max_memory=256 * MiB))])
    assert d.rows[0]["filter"] == "memory"


def test_scorers_prefer_latency_then_capacity_and_speed():
    near = NodeView("near", caps(labels={"site": "factory"}, speed=2e8))
    far = NodeView("far", caps(latency={"factory": 80}, speed=1e9))
    d = schedule(spec(preferences={"low_latency_to": "factory"}), [near, far])
    assert d.winner == "near"
    assert d.rows[1]["scores"]["latency"] == 100.0  # rows are sorted by name: far, near
    # Without a preference there is no latency score; the faster, emptier node wins.
    d = schedule(spec(), [near, far])
    assert "latency" not in d.rows[0]["scores"] and d.winner == "far"
    busy = NodeView("busy", caps(), used_memory=900 * MiB)
    idle = NodeView("idle", caps())
    assert schedule(spec(), [busy, idle]).winner == "idle"


def test_spread_puts_replicas_on_different_nodes():
    a = NodeView("a", caps(), apps={"app"})
    b = NodeView("b", caps(speed=0.9e9))
    assert schedule(spec(), [a, b], replica=1).winner == "b"


def test_exclude_keeps_a_node_out():
    d = schedule(spec(), [GOOD, NodeView("other", caps())], exclude=["good"])
    assert d.winner == "other"


def test_never_places_on_a_node_failing_a_filter_random():
    rng = random.Random(7)
    for _ in range(300):
        nodes = []
        for i in range(rng.randint(1, 6)):
            nodes.append(NodeView(
                f"n{i}", caps(arch=rng.choice(["x86_64", "aarch64"]),
                              max_memory=rng.choice([64, 256, 1024]) * MiB,
                              labels={"tier": rng.choice(["cloud", "edge", "iot"])},
                              tee=rng.choice([[], ["tpm"]]),
                              features=rng.choice([list(BASELINE), [*BASELINE, *FEATURES]]),
                              speed=rng.uniform(1e8, 1e9)),
                ready=rng.random() > 0.2, used_memory=rng.choice([0, 32, 200]) * MiB))
        app = spec(memory=rng.choice([8, 64, 300]) * MiB,
                   labels=rng.choice([{}, {"tier": "edge"}]), arch=rng.choice([None, "x86_64"]),
                   tee=rng.choice([None, "tpm"]), features=rng.choice([[], ["simd"]]))
        d = schedule(app, nodes)
        fits = [n.name for n in nodes if passes(app, n)]
        if d.winner is None:
            assert not fits
        else:
            assert d.winner in fits
            assert next(r for r in d.rows if r["node"] == d.winner)["filter"] is None


def test_a_large_cluster_is_searched_in_part_and_in_turn():
    # As Kubernetes' percentageOfNodesToScore: past 100 nodes, stop once enough nodes fit.
    nodes = [NodeView(f"n{i:04d}", caps()) for i in range(1000)]
    d1 = schedule(spec(), nodes)
    assert d1.nodes == 1000 and d1.examined == len(d1.rows) == 420
    # In turn: the caller passes where the previous search stopped (schedule() itself is pure).
    d2 = schedule(spec(), nodes, start=d1.examined)
    assert {r["node"] for r in d1.rows}.isdisjoint(r["node"] for r in d2.rows)
    # A node that fits is always found, however far along it is.
    lonely = [NodeView(f"n{i:04d}", caps(arch="aarch64")) for i in range(999)] + [GOOD]
    assert schedule(spec(arch="x86_64"), lonely).winner == "good"
    assert len(schedule(spec(), nodes[:100]).rows) == 100


def test_a_simulated_tee_scores_little_for_security():
    from foglayer.cluster._scheduler import App, s_security

    app = App(spec())
    assert s_security(app, NodeView("t", caps(tee=["tpm"])), {}) == 100
    assert s_security(app, NodeView("s", caps(tee=["sim"])), {}) == 10
    assert s_security(app, NodeView("n", caps()), {}) == 0


def test_an_app_moves_for_latency_only_to_a_clearly_nearer_node():
    from foglayer.cluster import latency_gain

    app = spec(preferences={"low_latency_to": "factory"})
    far = NodeView("far", caps(latency={"factory": 45}))
    near = NodeView("near", caps(latency={"factory": 5}))
    inside = NodeView("inside", caps(labels={"site": "factory"}))
    alike = NodeView("alike", caps(latency={"factory": 4}))
    unknown = NodeView("unknown", caps())
    assert latency_gain(app, far, near) == "latency to site factory 45 ms on far -> 5 ms on near"
    assert "-> 0 ms on inside" in latency_gain(app, near, inside)
    # Hysteresis: a node a little nearer, one farther, or one whose latency is unknown
    # never takes the app (measured round trips jitter; a move costs a downtime).
    assert latency_gain(app, near, alike) is None
    assert latency_gain(app, near, far) is None
    assert latency_gain(app, far, unknown) is None and latency_gain(app, unknown, near) is None
    assert latency_gain(spec(), far, near) is None  # no latency preference: never


def test_schedule_is_pure_the_same_input_gives_the_same_decision():
    nodes = [NodeView(f"n{i:03d}", caps(speed=1e9 + i)) for i in range(300)]
    first = schedule(spec(), nodes)
    assert all(schedule(spec(), nodes).winner == first.winner for _ in range(3))
