"""Attestation figures: ``fog bench attest`` (or :func:`attest_bench` from Python).

Per backend it times the whole RCAR round trip in one process, as the controller and a node
would run it minus the bus: challenge, evidence (the backend's real work: a TPM quote from a
real ``swtpm``; a configfs-tsm report from the STAND-IN provider; an Ed25519 signature for
``sim``), appraisal with a signed EAR, and the node checking the EAR. Secret release is timed
separately: a release of one 32-byte secret to an attested session, and the node opening it.
Medians and 99th percentiles, side by side in one run.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from foglayer.trust._attester import Attester
from foglayer.trust._backend import EvidenceBackend
from foglayer.trust._broker import Broker, ControllerIdentity
from foglayer.trust._policy import Policy
from foglayer.trust._sim import SimBackend
from foglayer.trust._tpm import TpmBackend, start_swtpm
from foglayer.trust._tsm import STANDIN_PROVIDER, StandinProvider, TsmBackend

_MODULE = hashlib.sha256(b"bench module").hexdigest()


@dataclass(frozen=True)
class Figure:
    what: str
    runs: int
    p50_ms: float
    p99_ms: float
    note: str = ""


def _p(xs: list[float], q: int) -> float:
    if len(xs) < 2:
        return xs[0] * 1e3
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] * 1e3


def _timed(fn: Callable[[], object], runs: int, tick: Callable[[], None]) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
        tick()
    return out


def attest_bench(runs: int = 50, progress: bool = True) -> list[Figure]:
    """Attestation round trip per backend and secret release: p50/p99 in milliseconds."""
    from rich.progress import Progress

    identity = ControllerIdentity(Ed25519PrivateKey.generate(), os.urandom(32))
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="fog-bench-attest-") as t, \
            Progress(transient=True, disable=not progress) as bar:
        tmp = Path(t)
        task = bar.add_task("attestation", total=4 * runs)
        with start_swtpm(tmp / "swtpm") as swtpm, StandinProvider(tmp / "tsm"):
            backends: list[tuple[EvidenceBackend, str]] = [
                (SimBackend(tmp / "sim.key", quiet=True), "simulated: proves nothing"),
                (TpmBackend(tmp / "tpm", swtpm.tcti), "real swtpm via tpm2-tools"),
                (TsmBackend(tmp / "tsm"), "real configfs-tsm path, STAND-IN provider"),
            ]
            policy = Policy(backends=("sim", "tpm", "tsm"), allow_sim=True,
                            tsm_providers=(STANDIN_PROVIDER,))
            broker = Broker(identity, policy)
            for backend, note in backends:
                node = f"node-{backend.name}"
                broker.register(node, backend.name, backend.identity())
                attester = Attester(node, backend, identity.public_key)

                def round_trip(attester=attester, node=node) -> None:
                    ch = broker.challenge(node, _MODULE, ("s",))
                    att, session = attester.answer(ch, _MODULE)
                    if not session.open_result(broker.attest(att).token).affirming:
                        raise RuntimeError(f"{node}: appraisal did not affirm")
                    broker.close_session(ch.session)

                xs = _timed(round_trip, runs, lambda: bar.advance(task))
                figures.append(Figure(f"attestation round trip ({backend.name})", runs,
                                      _p(xs, 50), _p(xs, 99), note))
            node = "node-sim"
            ch = broker.challenge(node, _MODULE, ("s",))
            att, session = Attester(node, backends[0][0], identity.public_key).answer(ch, _MODULE)
            broker.attest(att)
            value = os.urandom(32)

            def release() -> None:
                if session.open_secrets(broker.release(ch.session, {"s": value}))["s"] != value:
                    raise RuntimeError("secret release: wrong value")

            xs = _timed(release, runs, lambda: bar.advance(task))
            figures.append(Figure("secret release (1 secret, same session)", runs,
                                  _p(xs, 50), _p(xs, 99), "X25519 + HKDF + ChaCha20-Poly1305"))
    return figures


def render(figures: list[Figure]):
    from rich.table import Table

    table = Table(title="Attestation (one process, no bus)")
    for col in ("what", "runs", "p50 ms", "p99 ms", "note"):
        table.add_column(col, justify="right" if col in ("runs", "p50 ms", "p99 ms") else "left")
    for f in figures:
        table.add_row(f.what, str(f.runs), f"{f.p50_ms:.2f}", f"{f.p99_ms:.2f}", f.note)
    return table
