"""The indexed scheduler against a plain full scan: the same feasibility answers, always, and
no decision on a node that fails a filter, whatever the nodes, apps and placements."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from foglayer.cluster import NodeIndex, NodeView, passes, schedule
from foglayer.cluster._manifest import BASELINE, FEATURES

MiB = 1 << 20
SITES = ["a", "b", "c"]

node_caps = st.fixed_dictionaries({
    "arch": st.sampled_from(["x86_64", "aarch64"]),
    "max_memory": st.sampled_from([0, 1, 63 * MiB, 64 * MiB, 65 * MiB, 1024 * MiB, 8192 * MiB]),
    "speed": st.floats(0, 2e9),
    "features": st.sampled_from([list(BASELINE), [*BASELINE, *FEATURES]]),
    "tee": st.sampled_from([[], ["sev-snp"], ["tdx", "sev-snp"], ["tpm"]]),
    "labels": st.dictionaries(st.sampled_from(["tier", "site"]), st.sampled_from(["x", "y", *SITES]),
                              max_size=2),
    "latency": st.dictionaries(st.sampled_from(SITES), st.floats(0, 200), max_size=3),
})

nodes_st = st.lists(
    st.tuples(node_caps, st.booleans(), st.sampled_from([0, 1, 32 * MiB, 64 * MiB, 1000 * MiB])),
    max_size=25)

app_st = st.fixed_dictionaries({
    "name": st.sampled_from(["p", "q"]),
    "limits": st.fixed_dictionaries({"memory": st.sampled_from([0, 1, 16 * MiB, 32 * MiB, 64 * MiB,
                                                                 65 * MiB, 4096 * MiB])}),
    "constraints": st.fixed_dictionaries({
        "labels": st.dictionaries(st.sampled_from(["tier", "site"]), st.sampled_from(["x", "y", "a"]),
                                  max_size=2),
        "features": st.sampled_from([[], ["simd"], list(FEATURES)]),
        "tee": st.sampled_from([None, "any", "sev-snp", "tdx"]),
        "arch": st.sampled_from([None, "x86_64", "aarch64"]),
        "min_memory": st.sampled_from([None, 0, 128 * MiB]),
    }),
    "preferences": st.sampled_from([{}, {"site": "a"}, {"low_latency_to": "b"}]),
    "initial_memory": st.sampled_from([0, 2 * MiB]),
})


def build(raw) -> list[NodeView]:
    return [NodeView(f"n{i:02d}", caps, ready=ready, used_memory=used)
            for i, (caps, ready, used) in enumerate(raw)]


@settings(max_examples=300, deadline=None)
@given(nodes_st, app_st, st.sets(st.integers(0, 24), max_size=3))
def test_index_finds_exactly_the_nodes_a_full_scan_finds(raw, spec, excl):
    nodes = build(raw)
    exclude = {f"n{i:02d}" for i in excl}
    index = NodeIndex(build(raw))
    expected = {n.name for n in nodes if n.name not in exclude and passes(spec, n)}
    assert {n.name for n in index.feasible(spec, exclude)} == expected
    d = index.decide(spec, 0, exclude)
    full = schedule(spec, nodes, 0, exclude)
    assert (d.winner is None) == (full.winner is None)
    if d.winner is not None:
        assert d.winner in expected


@settings(max_examples=100, deadline=None)
@given(nodes_st, st.lists(app_st, min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_index_stays_exact_while_apps_are_placed_and_released(raw, specs, rnd):
    """Placements and releases move nodes between buckets; feasibility must follow them."""
    index = NodeIndex(build(raw))
    placed: list[tuple[str, str, int]] = []
    for i, spec in enumerate(specs):
        spec = dict(spec, name=f"app{i}")
        d = index.decide(spec)
        mirror = list(index)  # the index's own views, as a full scan would see them
        assert (d.winner is None) == (not any(passes(spec, n) for n in mirror))
        if d.winner is not None:
            assert passes(spec, index.nodes[d.winner])
            need = spec["limits"]["memory"] or max(64 * MiB, spec["initial_memory"])
            need = max(need, spec["constraints"]["min_memory"] or 0)
            index.place(d.winner, spec["name"], need)
            placed.append((d.winner, spec["name"], need))
        if placed and rnd.random() < 0.3:
            node, app, need = placed.pop(rnd.randrange(len(placed)))
            index.release(node, app, need)


def test_a_node_that_becomes_not_ready_leaves_the_index():
    caps = {"arch": "x86_64", "max_memory": 1024 * MiB, "speed": 1e9,
            "features": [*BASELINE, *FEATURES], "tee": [], "labels": {}, "latency": {}}
    index = NodeIndex([NodeView("a", caps), NodeView("b", caps)])
    spec = {"name": "s", "limits": {"memory": 16 * MiB}, "constraints": {}, "preferences": {},
            "initial_memory": 0}
    index.upsert(NodeView("a", caps, ready=False))
    assert [n.name for n in index.feasible(spec)] == ["b"]
    index.remove("b")
    d = index.decide(spec)
    assert d.winner is None and [r["filter"] for r in d.rows] == ["ready"]


def test_schedule_is_pure_the_same_input_gives_the_same_decision():
    caps = {"arch": "x86_64", "max_memory": 1024 * MiB, "speed": 1e9,
            "features": [*BASELINE, *FEATURES], "tee": [], "labels": {}, "latency": {}}
    nodes = [NodeView(f"n{i:03d}", dict(caps, speed=1e9 + i)) for i in range(300)]
    spec = {"name": "s", "limits": {"memory": 16 * MiB}, "constraints": {}, "preferences": {},
            "initial_memory": 0}
    first = schedule(spec, nodes)
    assert all(schedule(spec, nodes).winner == first.winner for _ in range(3))
