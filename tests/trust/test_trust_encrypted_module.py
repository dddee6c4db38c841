"""`fog deploy --encrypt` in a real continuum (nats-server, controller, node agents as
processes, sim TEE nodes under the development policy as `fog up` runs them): the Object
Store holds the module sealed, only an attested node gets its key, and the node decrypts and
compiles it in memory: the plaintext module (and its AOT code) never touches a disk under the
continuum or the AOT cache; a node without an affirming result never gets it."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from _continuum import running
from _programs import fog

from foglayer.cluster import NodeSpec, load_manifest, wait_until
from foglayer.runtime import EngineSettings, cache_path

PROGRAM = r"""
#include <stdint.h>
#include <stdlib.h>

#define EXPORT(name) __attribute__((export_name(#name)))

static const char MARK[] = "%s";

EXPORT(fog_alloc) void *fog_alloc(uint32_t len) { return malloc(len ? len : 1); }
EXPORT(fog_free) void fog_free(void *p, uint32_t len) { (void)len; free(p); }

EXPORT(mark) int64_t mark(const char *p, uint32_t len) {
    (void)p;
    (void)len;
    return (int64_t)(((uint64_t)(uintptr_t)MARK << 32) | (sizeof MARK - 1));
}
"""


def _quiet(pred) -> bool:
    try:
        return pred()
    except Exception:  # noqa: BLE001 - not there yet
        return False


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [f for f in root.rglob("*") if f.is_file() and needle in f.read_bytes()]


def test_an_encrypted_module_runs_only_on_attested_nodes_and_never_touches_disk(tmp_path):
    # A distinctive string in the module's data: found in a file, it means the plaintext was.
    mark = "sealed-mark-" + os.urandom(12).hex()
    src = tmp_path / "sealed.c"
    src.write_text(PROGRAM % mark)
    manifest = tmp_path / "sealed.yaml"
    manifest.write_text(f"name: sealed\nmodule: {src}\nkind: service\n")
    m = load_manifest(manifest)
    assert mark.encode() in m.wasm
    nodes = [NodeSpec("cloud", "cloud"), NodeSpec("edge", "edge")]
    with running(tmp_path / "c", nodes, tee="sim") as (c, client):
        key = base64.b64decode(c.server.controller_key)
        creds = c.creds("admin")
        wait_until(lambda: _quiet(lambda: all(client.attestations(n, key)[0][1].affirming
                                              for n in ("cloud", "edge"))), 60,
                   "both nodes attested")
        r = fog("deploy", "--encrypt", manifest, "--creds", creds, "--wait", "60")
        assert r.returncode == 0, r.stderr
        assert "stored encrypted, its key only for attested nodes" in r.stdout, r.stdout
        assert client.app("sealed")["spec"]["encrypted"] is True
        assert client.invoke("sealed", "mark", b"") == mark.encode()
        node = client.placements()["sealed.0"]["node"]
        (_, result), = client.attestations(node, key)
        assert result.affirming and result.module_digest == m.spec.digest
        # Not in the node's data dir, the Object Store's files, the logs; no AOT code cached.
        assert _files_holding(c.root, mark.encode()) == []
        assert _files_holding(c.root, m.wasm[:4096]) == []
        aot = cache_path(m.spec.digest, EngineSettings()).parent
        assert not list(aot.glob(f"{m.spec.digest}-*")), "AOT code of the encrypted module"

        # Durable snapshots would store its memory pages unsealed: refused, in one line.
        durable = tmp_path / "durable.yaml"
        durable.write_text(f"name: durable\nmodule: {src}\nkind: service\n"
                           "snapshots: after-invoke\n")
        r = fog("deploy", "--encrypt", durable, "--creds", creds, "--wait", "0")
        assert r.returncode != 0 and "not for an app with snapshots" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr

        # A strict policy: sim proves nothing, no node has an affirming result any more.
        client.set_policy("backends: [tpm, tsm]\nallow_sim: false\n")
        for n in ("cloud", "edge"):
            wait_until(lambda n=n: _quiet(lambda: client.attestations(n, key)[0][1].status
                                          == "contraindicated"), 60, f"{n} contraindicated")
        manifest2 = tmp_path / "sealed2.yaml"
        manifest2.write_text(f"name: sealed2\nmodule: {src}\nkind: service\n")
        r = fog("deploy", "--encrypt", manifest2, "--creds", creds, "--wait", "5")
        # deployed, but no node may run it: the exit code says so, in one line
        assert r.returncode == 1 and "sealed2: 1 of 1 replicas not running" in r.stderr, r
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert client.placements()["sealed2.0"]["state"] == "pending"
        rows = client.decision("sealed2")["replicas"]["0"]["rows"]
        assert rows and all(r["filter"] == "trust" and "module's key" in r["reason"]
                            for r in rows), rows
        assert _files_holding(c.root, mark.encode()) == []
