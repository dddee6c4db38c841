"""The TPM 2.0 backend: a quote over PCRs after the module's digest is extended into PCR 16.

The node drives ``tpm2-tools`` by subprocess against its TPM (a real one, or ``swtpm``: see
:func:`start_swtpm`). Its attestation key (AK) is a restricted ECDSA P-256 signing key under the
owner hierarchy, made persistent once. Collecting evidence: reset PCR 16 (the resettable debug
PCR), extend it with the module's SHA-256, and quote PCR 16 (plus any PCRs the verifier asks
for) with ``report_data`` (hash of nonce and ephemeral key) as the qualifying data.

The verifier parses ``TPMS_ATTEST`` itself and checks the signature with ``cryptography``: the
magic, the quote type, ``extraData`` against the expected binding, the PCR digest against the
PCR values sent, the signature against the AK registered when the node first joined. What is
NOT done here: proving that the AK lives in a genuine TPM (EK certificate + credential
activation); the first join is trusted instead.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from foglayer._dirs import atomic_write
from foglayer.trust._backend import Claims, Evidence, EvidenceBackend
from foglayer.trust._errors import EvidenceError, TrustError
from foglayer.trust._keys import load_public_der, sha256

MEASURE_PCR = 16
AK_HANDLE = 0x81010F16
TPM_GENERATED = 0xFF544347
ST_ATTEST_QUOTE = 0x8018
ALG_SHA256 = 0x000B
ALG_RSASSA = 0x0014
ALG_ECDSA = 0x0018
_TOOLS = ("tpm2_createprimary", "tpm2_quote", "swtpm", "swtpm_setup")


def expected_pcr(module_digest: str) -> bytes:
    """PCR 16 after a reset and one extend with the module's digest."""
    return sha256(bytes(32), bytes.fromhex(module_digest))


class _Reader:
    """Bounds-checked big-endian reader for TPM structures (untrusted input)."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise EvidenceError(f"{self.what}: truncated at byte {self.pos}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack(">H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def tpm2b(self) -> bytes:
        return self.take(self.u16())


@dataclass(frozen=True)
class Quote:
    """The parts of a ``TPMS_ATTEST`` quote the verifier uses."""

    extra_data: bytes
    pcr_select: tuple[tuple[int, tuple[int, ...]], ...]  # (hash alg, PCR indexes)
    pcr_digest: bytes
    clock: int
    reset_count: int


def parse_attest(data: bytes) -> Quote:
    r = _Reader(data, "TPMS_ATTEST")
    magic = r.u32()
    if magic != TPM_GENERATED:
        raise EvidenceError(f"TPMS_ATTEST: magic {magic:#x}, expected {TPM_GENERATED:#x}")
    kind = r.u16()
    if kind != ST_ATTEST_QUOTE:
        raise EvidenceError(f"TPMS_ATTEST: type {kind:#x} is not a quote ({ST_ATTEST_QUOTE:#x})")
    r.tpm2b()                      # qualifiedSigner
    extra = r.tpm2b()
    clock = struct.unpack(">Q", r.take(8))[0]
    reset_count = r.u32()
    r.u32()                        # restartCount
    r.u8()                         # safe
    r.take(8)                      # firmwareVersion
    count = r.u32()
    if count > 4:
        raise EvidenceError(f"TPMS_ATTEST: {count} PCR banks selected (at most 4)")
    select = []
    for _ in range(count):
        alg = r.u16()
        bitmap = r.take(r.u8())
        pcrs = tuple(i for i in range(len(bitmap) * 8) if bitmap[i // 8] >> (i % 8) & 1)
        select.append((alg, pcrs))
    digest = r.tpm2b()
    if r.pos != len(data):
        raise EvidenceError(f"TPMS_ATTEST: {len(data) - r.pos} trailing bytes")
    return Quote(extra, tuple(select), digest, clock, reset_count)


def verify_signature(message: bytes, signature: bytes, identity: bytes) -> None:
    """Check a ``TPMT_SIGNATURE`` over ``message`` with the AK; raise EvidenceError if bad."""
    key = load_public_der(identity, "TPM attestation key")
    r = _Reader(signature, "TPMT_SIGNATURE")
    alg, halg = r.u16(), r.u16()
    if halg != ALG_SHA256:
        raise EvidenceError(f"TPMT_SIGNATURE: hash algorithm {halg:#x} is not SHA-256")
    try:
        if alg == ALG_ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            rr, ss = r.tpm2b(), r.tpm2b()
            der = encode_dss_signature(int.from_bytes(rr, "big"), int.from_bytes(ss, "big"))
            key.verify(der, message, ec.ECDSA(hashes.SHA256()))
        elif alg == ALG_RSASSA and isinstance(key, rsa.RSAPublicKey):
            key.verify(r.tpm2b(), message, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise EvidenceError(f"TPMT_SIGNATURE: scheme {alg:#x} does not fit the "
                                f"registered {type(key).__name__}")
    except InvalidSignature:
        raise EvidenceError("TPM quote: signature does not verify against the node's "
                            "registered attestation key") from None


class TpmBackend(EvidenceBackend):
    """A node's TPM through ``tpm2-tools``; ``tcti`` as in ``TPM2TOOLS_TCTI``."""

    name: ClassVar[str] = "tpm"

    def __init__(self, state_dir: Path, tcti: str) -> None:
        for tool in ("tpm2_createprimary", "tpm2_quote"):
            if shutil.which(tool) is None:
                raise TrustError(f"tpm backend: {tool} not found (apt-get install tpm2-tools)")
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.tcti = tcti
        self._lock = threading.Lock()   # PCR 16 is shared state: one measurement at a time
        self._ak = self._ensure_ak()

    def _run(self, *args: str, cwd: Path | None = None) -> str:
        env = dict(os.environ, TPM2TOOLS_TCTI=self.tcti)
        p = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["no output"])[-1]
            raise TrustError(f"tpm backend: {args[0]} failed: {last}")
        return p.stdout

    def _flush(self) -> None:
        # No resource manager: transient objects and sessions stay loaded until flushed, and
        # the TPM soon answers "out of memory for object contexts".
        self._run("tpm2_flushcontext", "-t")
        self._run("tpm2_flushcontext", "-s")

    def _read_ak(self, tmp: Path) -> bytes | None:
        try:
            self._run("tpm2_readpublic", "-c", hex(AK_HANDLE), "-f", "der", "-o", "ak.der",
                      cwd=tmp)
        except TrustError:
            return None
        return (tmp / "ak.der").read_bytes()

    def _ensure_ak(self) -> bytes:
        saved = self.state_dir / "ak.der"
        with tempfile.TemporaryDirectory(prefix="fog-tpm-") as t:
            tmp = Path(t)
            present = self._read_ak(tmp)
            if present is not None and saved.exists() and saved.read_bytes() == present:
                return present
            if present is not None:   # a stale key from another node state: replace it
                self._run("tpm2_evictcontrol", "-C", "o", "-c", hex(AK_HANDLE), cwd=tmp)
            self._run("tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc",
                      "-c", "primary.ctx", cwd=tmp)
            self._flush()
            self._run("tpm2_create", "-C", "primary.ctx", "-g", "sha256",
                      "-G", "ecc256:ecdsa-sha256:null", "-a",
                      "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
                      "-u", "ak.pub", "-r", "ak.priv", "-c", "ak.ctx", cwd=tmp)
            self._flush()
            self._run("tpm2_evictcontrol", "-C", "o", "-c", "ak.ctx", hex(AK_HANDLE), cwd=tmp)
            self._flush()
            ak = self._read_ak(tmp)
            if ak is None:
                raise TrustError("tpm backend: the attestation key did not persist")
        atomic_write(saved, ak)
        return ak

    def identity(self) -> bytes:
        return self._ak

    @contextmanager
    def _pcr_lock(self) -> Iterator[None]:
        # Other processes of this node (fog run --seal) measure into the same PCR 16.
        fd = os.open(self.state_dir / "pcr.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def collect(self, report_data: bytes, module_digest: str, *,
                pcrs: Sequence[int] = ()) -> Evidence:
        if any(not 0 <= i <= 23 for i in pcrs):
            raise TrustError(f"tpm backend: PCR index out of range in {list(pcrs)}")
        selection = ",".join(str(i) for i in sorted({MEASURE_PCR, *pcrs}))
        with self._lock, self._pcr_lock(), tempfile.TemporaryDirectory(prefix="fog-tpm-") as t:
            tmp = Path(t)
            self._run("tpm2_pcrreset", str(MEASURE_PCR))
            self._run("tpm2_pcrextend", f"{MEASURE_PCR}:sha256={module_digest}")
            self._run("tpm2_quote", "-c", hex(AK_HANDLE), "-l", f"sha256:{selection}",
                      "-q", report_data.hex(), "-g", "sha256", "-m", "quote.msg",
                      "-s", "quote.sig", "-o", "quote.pcrs", "-F", "values", cwd=tmp)
            self._flush()
            parts = {"quote": (tmp / "quote.msg").read_bytes(),
                     "signature": (tmp / "quote.sig").read_bytes(),
                     "pcrs": (tmp / "quote.pcrs").read_bytes()}
        return Evidence("tpm", module_digest, parts)

    @classmethod
    def check(cls, evidence: Evidence, identity: bytes) -> Claims:
        message = evidence.part("quote")
        # The signature first: nothing in an unsigned structure is believed.
        verify_signature(message, evidence.part("signature"), identity)
        quote = parse_attest(message)
        values = evidence.part("pcrs")
        indexes: list[int] = []
        for alg, pcrs in quote.pcr_select:
            if alg != ALG_SHA256:
                raise EvidenceError(f"TPM quote: PCR bank {alg:#x} is not SHA-256")
            indexes.extend(pcrs)
        if len(values) != 32 * len(indexes):
            raise EvidenceError(f"TPM quote: {len(values)} bytes of PCR values for "
                                f"{len(indexes)} selected PCRs")
        if sha256(values) != quote.pcr_digest:
            raise EvidenceError("TPM quote: the PCR values sent do not hash to the quoted "
                                "PCR digest")
        pcrs = {i: values[32 * n:32 * n + 32] for n, i in enumerate(indexes)}
        return Claims(quote.extra_data, evidence.module_digest, pcrs=pcrs)


# --- swtpm: a software TPM process for tests and development nodes ---------------------------

def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise TrustError("swtpm: no free pair of TCP ports")


class Swtpm:
    """A running ``swtpm`` (TPM 2.0 simulator) with its state in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        missing = [t for t in _TOOLS if shutil.which(t) is None]
        if missing:
            raise TrustError(f"swtpm: {', '.join(missing)} not found "
                             "(apt-get install swtpm swtpm-tools tpm2-tools)")
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not any(self.state_dir.glob("tpm2-*.permall")):
            p = subprocess.run(["swtpm_setup", "--tpm2", "--tpmstate", str(self.state_dir),
                                "--createek", "--overwrite"], capture_output=True, text=True,
                               timeout=60)
            if p.returncode != 0:
                last = (p.stderr.strip().splitlines() or ["no output"])[-1]
                raise TrustError(f"swtpm_setup failed in {self.state_dir}: {last}")
        self.port = _free_port_pair()
        self._log = open(self.state_dir / "swtpm.log", "ab")  # noqa: SIM115 - lives with proc
        self.proc = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={self.state_dir}",
             "--server", f"type=tcp,port={self.port},bindaddr=127.0.0.1",
             "--ctrl", f"type=tcp,port={self.port + 1},bindaddr=127.0.0.1",
             "--flags", "not-need-init,startup-clear"],
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self._listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise TrustError(f"swtpm did not start (see {self.state_dir}/swtpm.log)")
            time.sleep(0.02)

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    @property
    def tcti(self) -> str:
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> Swtpm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_swtpm(state_dir: Path) -> Swtpm:
    """Start a software TPM (``swtpm``) whose state lives in ``state_dir``."""
    return Swtpm(state_dir)
