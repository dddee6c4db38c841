"""The configfs-tsm backend: the Linux interface of TDX, SEV-SNP and Arm CCA guests (6.7+).

:class:`TsmBackend` is the real code path: create a report directory under
``/sys/kernel/config/tsm/report``, write at most 64 bytes to ``inblob``, read ``outblob``,
``provider`` and ``auxblob``, and check ``generation`` so a concurrent writer cannot slip us a
report made for another ``inblob``. Our ``inblob`` is ``report_data`` (hash of nonce and
ephemeral key, 32 bytes) followed by the module's digest (32 bytes).

NO TEE HARDWARE EXISTS HERE. :class:`StandinProvider` is a stand-in for the kernel and the TEE:
a thread that watches a plain directory tree shaped like configfs and "signs" each ``inblob``
into an ``outblob`` with its own ECDSA P-384 key (as SEV-SNP's VCEK signs), putting that key
in ``auxblob`` (where SEV-SNP puts its certificate table). The report format below is the
stand-in's own, not TDX's or SNP's; a real deployment would parse the vendor report and check
the vendor's certificate chain instead of trusting the first key a node shows.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from foglayer._dirs import atomic_write
from foglayer.trust._backend import (
    REPORT_DATA_SIZE,
    Claims,
    Evidence,
    EvidenceBackend,
)
from foglayer.trust._errors import EvidenceError, TrustError
from foglayer.trust._keys import load_public_der

CONFIGFS_TSM = Path("/sys/kernel/config/tsm/report")
STANDIN_PROVIDER = "fog_standin_guest"
_MAGIC = b"FOGTSM\0\1"
_INBLOB = 64
_MEASUREMENT = 48
_HEAD = len(_MAGIC) + _INBLOB + _MEASUREMENT


def _read(path: Path, limit: int = 64 * 1024) -> bytes:
    with open(path, "rb") as f:
        return f.read(limit + 1)[:limit + 1]


class TsmBackend(EvidenceBackend):
    """configfs-tsm reports from ``root`` (``/sys/kernel/config/tsm/report`` on a TEE guest)."""

    name: ClassVar[str] = "tsm"

    def __init__(self, root: Path = CONFIGFS_TSM, *, timeout: float = 10.0) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise TrustError(f"tsm backend: {self.root} does not exist (no configfs-tsm: "
                             "not a TDX/SEV-SNP/CCA guest, or configfs not mounted)")
        self.timeout = timeout
        self._identity: bytes | None = None

    def _report(self, inblob: bytes) -> tuple[bytes, str, bytes]:
        if len(inblob) > _INBLOB:
            raise TrustError(f"tsm backend: inblob of {len(inblob)} bytes (at most 64)")
        entry = self.root / f"foglayer-{os.getpid()}-{threading.get_ident()}-{time.time_ns()}"
        os.mkdir(entry)
        try:
            with open(entry / "inblob", "wb") as f:
                f.write(inblob)
            # On configfs, reading outblob makes the report; the stand-in fills it from its own
            # thread, so an empty read is retried until the deadline.
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    out = _read(entry / "outblob")
                except FileNotFoundError:
                    out = b""
                if out:
                    break
                if time.monotonic() > deadline:
                    raise TrustError(f"tsm backend: no outblob in {entry} after "
                                     f"{self.timeout:g} s")
                time.sleep(0.002)
            provider = _read(entry / "provider", 256).decode(errors="replace").strip()
            aux = _read(entry / "auxblob") if (entry / "auxblob").exists() else b""
            # We wrote inblob once into a fresh entry: generation 1. Anything else means a
            # concurrent writer changed the input, and outblob may answer someone else's.
            generation = _read(entry / "generation", 32).decode(errors="replace").strip()
            if generation != "1":
                raise TrustError(f"tsm backend: {entry} generation is {generation!r}, expected "
                                 "1: a concurrent writer raced this report")
            return out, provider, aux
        finally:
            _remove_entry(entry)

    def identity(self) -> bytes:
        if self._identity is None:
            aux = self._report(bytes(_INBLOB))[2]
            if not aux:
                raise TrustError(f"tsm backend: {self.root}: provider gives no auxblob key")
            self._identity = aux
        return self._identity

    def collect(self, report_data: bytes, module_digest: str, *,
                pcrs: Sequence[int] = ()) -> Evidence:
        out, provider, _aux = self._report(report_data + bytes.fromhex(module_digest))
        return Evidence("tsm", module_digest,
                        {"outblob": out, "provider": provider.encode()})

    @classmethod
    def check(cls, evidence: Evidence, identity: bytes) -> Claims:
        key = load_public_der(identity, "tsm report signing key")
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise EvidenceError("tsm report signing key: not an EC key")
        out = evidence.part("outblob")
        if len(out) < _HEAD + 2 or out[:len(_MAGIC)] != _MAGIC:
            raise EvidenceError("tsm outblob: not a stand-in report (bad magic or size)")
        (siglen,) = struct.unpack_from(">H", out, _HEAD)
        body, sig = out[:_HEAD], out[_HEAD + 2:]
        if len(sig) != siglen:
            raise EvidenceError("tsm outblob: signature length does not match")
        try:
            key.verify(sig, body, ec.ECDSA(hashes.SHA384()))
        except InvalidSignature:
            raise EvidenceError("tsm outblob: signature does not verify against the node's "
                                "registered report key") from None
        inblob = body[len(_MAGIC):len(_MAGIC) + _INBLOB]
        measurement = body[len(_MAGIC) + _INBLOB:_HEAD]
        module = inblob[REPORT_DATA_SIZE:].hex()
        return Claims(inblob[:REPORT_DATA_SIZE], module,
                      provider=evidence.part("provider").decode(errors="replace"),
                      measurement=measurement.hex())


def _remove_entry(entry: Path) -> None:
    # configfs removes the attribute files with the directory; a plain tree needs them gone.
    if entry.is_dir():
        for child in entry.iterdir():
            try:
                child.unlink()
            except OSError:
                pass
        try:
            entry.rmdir()
        except OSError:
            pass


class StandinProvider:
    """A STAND-IN for the kernel's configfs-tsm and a TEE: signs each ``inblob`` it sees.

    It polls ``root`` for report directories; for each new or rewritten ``inblob`` it bumps
    ``generation`` and writes ``provider``, ``auxblob`` (its public key) and ``outblob``.
    """

    def __init__(self, root: Path, *, measurement: bytes = bytes(range(_MEASUREMENT)),
                 key: ec.EllipticCurvePrivateKey | None = None) -> None:
        if len(measurement) != _MEASUREMENT:
            raise TrustError("stand-in tsm: measurement must be 48 bytes")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.measurement = measurement
        self.key = key or ec.generate_private_key(ec.SECP384R1())
        self.public = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._seen: dict[str, tuple[tuple, int]] = {}   # entry -> (inblob signature, generation)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tsm-standin", daemon=True)
        self._thread.start()

    def sign(self, inblob: bytes) -> bytes:
        body = _MAGIC + inblob.ljust(_INBLOB, b"\0") + self.measurement
        sig = self.key.sign(body, ec.ECDSA(hashes.SHA384()))
        return body + struct.pack(">H", len(sig)) + sig

    def _serve(self, entry: Path) -> None:
        try:
            before = (entry / "inblob").stat()
            inblob = _read(entry / "inblob", _INBLOB)
            after = (entry / "inblob").stat()
        except FileNotFoundError:
            return
        # The stat and the read must agree (the attester may write between them: a stat of
        # its truncation with the bytes of its write would count one write as two).
        if ((before.st_mtime_ns, before.st_size) != (after.st_mtime_ns, after.st_size)
                or after.st_size != len(inblob)):
            return
        seen, gen = self._seen.get(entry.name, (None, 0))
        # A write is told by its time, size and bytes (mtime alone may not move within one
        # clock tick). The attester's one write(2) leaves only one intermediate state: empty.
        sig = (after.st_mtime_ns, after.st_size, inblob)
        if sig == seen or not inblob:
            return
        gen += 1
        self._seen[entry.name] = (sig, gen)
        atomic_write(entry / "generation", f"{gen}\n".encode())
        atomic_write(entry / "provider", f"{STANDIN_PROVIDER}\n".encode())
        atomic_write(entry / "auxblob", self.public)
        atomic_write(entry / "outblob", self.sign(inblob[:_INBLOB]))

    def _loop(self) -> None:
        while not self._stop.wait(0.001):
            try:
                entries = [e for e in self.root.iterdir() if e.is_dir()]
            except OSError:
                continue
            for e in entries:
                try:
                    self._serve(e)
                except OSError:
                    pass  # the attester removed the entry meanwhile

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> StandinProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
