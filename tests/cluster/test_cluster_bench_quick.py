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


def test_many_instances_share_one_output_reader_and_every_line_arrives(tmp_path):
    """Density: an instance's stdout and stderr pipes are read by one thread for the whole
    node (not two threads per instance), and nothing written is lost."""
    import threading

    from foglayer.cluster import decode_spec
    from foglayer.cluster._exec import LocalInstance, load
    from foglayer.cluster._sync import wait_until
    from foglayer.toolchain import compile_c

    src = tmp_path / "hello.c"
    src.write_text('#include <stdio.h>\nint main(int argc, char **argv) {\n'
                   '  printf("out %s\\n", argv[1]); fprintf(stderr, "err %s\\n", argv[1]);\n'
                   '  return 0;\n}\n')
    wasm = compile_c([src], out=tmp_path / "hello.wasm")
    got: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def sink(stream: str, data: bytes) -> None:
        with lock:
            got.append((stream, data))

    before = threading.active_count()
    held = []
    for i in range(40):
        spec = decode_spec({"name": "hello", "kind": "command", "args": [str(i)],
                            "limits": {"memory": 32 << 20}})
        li = LocalInstance(load(str(wasm), spec), spec, [], duty=1.0, on_output=sink)
        held.append(li)
    assert threading.active_count() <= before + 2  # one reader (and the epoch ticker) at most
    for li in held:
        assert li.run_command().exit_code == 0
    want = {("stdout", f"out {i}") for i in range(40)} | {("stderr", f"err {i}") for i in range(40)}

    def lines() -> set[tuple[str, str]]:
        with lock:
            return {(s, line) for s, d in got for line in d.decode().splitlines()}

    wait_until(lambda: lines() >= want, 30, "every line of output")
