"""``fog bench attest`` runs every backend and secret release (figures, not timed asserts)."""

from foglayer.trust.bench import attest_bench


def test_attest_bench_measures_each_backend_and_secret_release():
    figures = attest_bench(runs=2, progress=False)
    whats = [f.what for f in figures]
    assert [w for w in whats if "round trip" in w] == [
        "attestation round trip (sim)", "attestation round trip (tpm)",
        "attestation round trip (tsm)"]
    assert any("secret release" in w for w in whats)
    assert all(f.p99_ms >= f.p50_ms > 0 for f in figures)


def test_deploy_to_running_is_measured_with_and_without_attestation():
    from foglayer.cluster.bench import attested_deploys

    rows = attested_deploys(apps=1)
    assert [r[0] for r in rows] == ["deploy-to-running, without attestation (sim)",
                                    "deploy-to-running, with attestation (sim)",
                                    "sealed snapshot data key, seal (sim, over the bus)",
                                    "sealed snapshot data key, restore (sim, over the bus)"]
    assert all(n >= 1 and p99 >= p50 > 0 for _, n, p50, p99 in rows)
