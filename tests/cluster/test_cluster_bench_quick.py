"""A tiny ``fog bench cluster --sites`` run: every figure of the table is printed and sane
(no timing thresholds: performance lives in the benchmark itself)."""

from __future__ import annotations

from foglayer.cluster.bench_sites import run


def test_the_sites_bench_prints_every_figure_with_a_consistent_verdict(capsys):
    rows = dict(run(apps=5, invokes=20, density=50, sim_nodes=200, sim_apps=500))
    out = capsys.readouterr().out
    for key in rows:
        assert key in out
    text = "\n".join(f"{k} {v}" for k, v in rows.items())
    for figure in ("deploy-to-running, 5 apps", "invoke at edge-a, local", "across the leaf link",
                   "failover: node edge-b killed", "failover: hub server cloud-1 killed",
                   "failover: leader", "heal -> consistent", "agent RSS with 50 idle",
                   "instantiation from a warm module", "metrics served", "without a metrics",
                   "page load", "live update", "scheduler (indexed)", "Nomad C1M"):
        assert figure in text, figure
    assert "nan" not in text
    assert "checker: consistent" in rows["  heal -> consistent (checker listens 1.5 s a look)"]
    assert "kv state kept: yes" in text
    assert "local invoke during the cut: served" in text
