"""`fog run --checkpoint-to F --seal-local`: the snapshot file is sealed at rest under this
user's LOCAL key on this machine (`keys/seal.key` in the data dir: the weaker, offline mode),
and `fog restore F` resumes it only where that key is; elsewhere, one clear line. And
`--seal` (a controller-released key) never falls back to it. Real `fog` processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _programs import build, fog

from foglayer.snapshot import SnapshotError, load_snapshot
from foglayer.trust import SealHeader, seal_released

ROUNDS = "100"


@pytest.fixture(scope="module")
def compute():
    return build("snap_compute")


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "FOG_DATA_DIR": str(data)}


def test_a_locally_sealed_snapshot_restores_only_where_its_key_is(compute, tmp_path):
    ref = fog("run", compute, ROUNDS)
    assert ref.returncode == 3
    here, elsewhere = _env(tmp_path / "here"), _env(tmp_path / "elsewhere")
    snap = tmp_path / "app.fogsnap"
    r = fog("run", "--seal-local", "--checkpoint-every", "0.1", "--stop-after-checkpoint",
            "--checkpoint-to", snap, compute, ROUNDS, env=here)
    assert "stopped after checkpoint" in r.stderr, r.stderr
    first = r.stdout
    blob = snap.read_bytes()
    assert blob.startswith(b"FOGSEAL1") and b"FOGSNAP" not in blob
    assert (tmp_path / "here" / "keys" / "seal.key").stat().st_mode & 0o077 == 0
    with pytest.raises(SnapshotError):
        load_snapshot(snap)  # the plain reader sees no snapshot in it

    # Another machine (another data dir): no key, then another key. One line each.
    r = fog("restore", snap, env=elsewhere)
    assert r.returncode != 0 and "no local sealing key on this machine" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    key = tmp_path / "elsewhere" / "keys" / "seal.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    r = fog("restore", snap, env=elsewhere)
    assert r.returncode != 0 and "authentication failed" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr

    # Here it resumes (its next snapshot sealed the same way), and the output is that of a
    # run never interrupted.
    snap2 = tmp_path / "again.fogsnap"
    r = fog("restore", "--checkpoint-every", "0.1", "--stop-after-checkpoint",
            "--checkpoint-to", snap2, snap, env=here)
    assert "stopped after checkpoint" in r.stderr, r.stderr
    assert snap2.read_bytes().startswith(b"FOGSEAL1")
    second = r.stdout
    r = fog("restore", snap2, env=here)
    assert r.returncode == 3, r.stderr
    assert first + second + r.stdout == ref.stdout


def test_seal_without_a_node_or_controller_says_so_and_never_falls_back(compute, tmp_path):
    env = {**_env(tmp_path / "data"), "FOG_NODE_DIR": str(tmp_path / "not-a-node")}
    snap = tmp_path / "app.fogsnap"
    r = fog("run", "--seal", "--checkpoint-to", snap, compute, ROUNDS, env=env)
    assert r.returncode != 0, r.stdout
    assert r.stderr.startswith("fog: error: sealing needs a controller: this machine is not "
                               "a foglayer node"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stdout == "" and not snap.exists()        # the guest never ran
    assert not (tmp_path / "data" / "keys").exists()   # no local key was made instead
    r = fog("run", "--seal", "--seal-local", compute, ROUNDS, env=env)
    assert r.returncode != 0 and "choose one" in r.stderr, r.stderr
    # A controller-sealed file restored here: the line says it is the restore that needs one.
    sealed = tmp_path / "sealed.fogsnap"
    sealed.write_bytes(seal_released(b"snapshot", os.urandom(32),
                                     SealHeader("default", "0" * 64, os.urandom(48))))
    r = fog("restore", sealed, env=env)
    assert r.stderr.startswith("fog: error: restoring a sealed snapshot needs a controller: "
                               "this machine is not a foglayer node"), r.stderr
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
