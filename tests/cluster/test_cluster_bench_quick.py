"""What the density benchmark relies on, as a test: one output reader per node.

(The whole ``fog bench cluster --sites`` run is not a test: with three hub servers, two
leaves, two controllers and every fault in a row it took 1-3 minutes and, run beside other
tests on two cores, now and then missed a deadline. Its faults are tested one by one in
test_cluster_partitions.py and test_cluster_sites.py.)"""

from __future__ import annotations


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


def test_bench_migrate_refuses_bad_sizes_in_one_line():
    import subprocess
    import sys

    for bad in ("16,x", "0", "4096"):
        r = subprocess.run([sys.executable, "-m", "foglayer.cli", "bench", "migrate",
                            "--sizes", bad], capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and r.stderr.count("\n") == 1 and "--sizes" in r.stderr, r.stderr
