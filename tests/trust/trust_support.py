"""Fixtures for the trust tests: a controller identity, sim nodes, a REAL swtpm, and the
configfs-tsm STAND-IN (no TEE hardware exists on test machines; see foglayer.trust._tsm)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from foglayer.trust import (
    AttestationResult,
    Attester,
    AttesterSession,
    Broker,
    ControllerIdentity,
    EvidenceBackend,
    Policy,
    SimBackend,
    StandinProvider,
    TpmBackend,
    TsmBackend,
    start_swtpm,
)

MODULE = hashlib.sha256(b"(module)").hexdigest()


class Clock:
    """A clock the test moves (expiry without sleeping)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def identity() -> ControllerIdentity:
    return ControllerIdentity(Ed25519PrivateKey.generate(), os.urandom(32))


def make_broker(identity: ControllerIdentity, policy: Policy, clock: Clock | None = None,
                **nodes: EvidenceBackend) -> Broker:
    broker = Broker(identity, policy, clock=clock or Clock())
    for name, backend in nodes.items():
        broker.register(name, backend.name, backend.identity())
    return broker


def handshake(broker: Broker, node: str, backend: EvidenceBackend, module: str = MODULE,
              secrets: Sequence[str] = ()) -> tuple[AttestationResult, AttesterSession]:
    ch = broker.challenge(node, MODULE, secrets)
    att, session = Attester(node, backend, broker.identity.public_key).answer(ch, module)
    return session.open_result(broker.attest(att).token), session


@pytest.fixture
def sim(tmp_path: Path) -> SimBackend:
    return SimBackend(tmp_path / "node-a" / "sim.key", quiet=True)


@pytest.fixture(scope="module")
def swtpm(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    with start_swtpm(tmp_path_factory.mktemp("swtpm")) as tpm:
        yield tpm


@pytest.fixture(scope="module")
def tpm(swtpm, tmp_path_factory: pytest.TempPathFactory) -> TpmBackend:
    return TpmBackend(tmp_path_factory.mktemp("tpm-node"), swtpm.tcti)


@pytest.fixture
def tsm_root(tmp_path: Path) -> Iterator[tuple[Path, StandinProvider]]:
    root = tmp_path / "config" / "tsm" / "report"
    with StandinProvider(root) as provider:
        yield root, provider


@pytest.fixture
def tsm(tsm_root) -> TsmBackend:
    return TsmBackend(tsm_root[0])


def wait_for(pred, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)
