"""Opening a node's evidence backend by name (``fog node --tee sim|tpm|tsm``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from foglayer.trust._backend import BACKEND_NAMES, EvidenceBackend
from foglayer.trust._errors import TrustError
from foglayer.trust._sim import SimBackend
from foglayer.trust._tpm import Swtpm, TpmBackend
from foglayer.trust._tsm import CONFIGFS_TSM, StandinProvider, TsmBackend

STANDIN = "standin"


class _Owned(EvidenceBackend):
    """A backend plus the helper it needs (a swtpm process, a stand-in provider)."""

    def __init__(self, inner: EvidenceBackend, helper: Swtpm | StandinProvider) -> None:
        self.inner, self.helper = inner, helper
        self.name = inner.name  # type: ignore[misc]
        self.proves_nothing = inner.proves_nothing  # type: ignore[misc]

    def identity(self) -> bytes:
        return self.inner.identity()

    def collect(self, report_data, module_digest, *, pcrs=()):
        return self.inner.collect(report_data, module_digest, pcrs=pcrs)

    @classmethod
    def check(cls, evidence, identity):  # pragma: no cover - verifiers use the real class
        raise TypeError("check through the backend class")

    def close(self) -> None:
        self.inner.close()
        self.helper.close()


def open_backend(kind: str, node_dir: Path, *, tcti: str | None = None,
                 tsm_root: str | None = None, quiet: bool = False) -> EvidenceBackend:
    """The evidence backend ``kind`` for a node whose private data lives in ``node_dir``.

    - ``sim``: a per-node Ed25519 key in ``node_dir`` (proves nothing; says so).
    - ``tpm``: ``tcti`` (or ``$TPM2TOOLS_TCTI``, or ``/dev/tpmrm0``); with none of these, a
      private ``swtpm`` is started in ``node_dir`` and the node says so.
    - ``tsm``: configfs-tsm at ``tsm_root`` (default ``/sys/kernel/config/tsm/report``);
      ``tsm_root="standin"`` starts the STAND-IN provider on a plain directory (no TEE).

    ``quiet``: sim does not print that it proves nothing (the caller says it with the result).
    """
    if kind not in BACKEND_NAMES:
        raise TrustError(f"{kind}: unknown backend (choose {', '.join(BACKEND_NAMES)})",
                         where="tee")
    node_dir = Path(node_dir)
    if kind == "sim":
        return SimBackend(node_dir / "sim-ed25519.pem", quiet=quiet)
    if kind == "tpm":
        tcti = tcti or os.environ.get("TPM2TOOLS_TCTI")
        if not tcti and os.path.exists("/dev/tpmrm0"):
            tcti = "device:/dev/tpmrm0"
        if tcti:
            return TpmBackend(node_dir / "tpm", tcti)
        swtpm = Swtpm(node_dir / "swtpm")
        print(f"tpm: no TPM on this machine: started swtpm (a software TPM) in "
              f"{node_dir / 'swtpm'}", file=sys.stderr)
        try:
            return _Owned(TpmBackend(node_dir / "tpm", swtpm.tcti), swtpm)
        except BaseException:
            swtpm.close()
            raise
    if tsm_root == STANDIN:
        provider = StandinProvider(node_dir / "tsm-standin")
        print("tsm: STAND-IN provider (no TDX/SEV-SNP hardware): its reports prove nothing "
              "about a real TEE", file=sys.stderr)
        return _Owned(TsmBackend(provider.root), provider)
    return TsmBackend(Path(tsm_root) if tsm_root else CONFIGFS_TSM)


def backend_location(backend: EvidenceBackend) -> dict[str, str]:
    """How another process on this node opens the same backend with :func:`open_backend`
    (same attestation key): the TPM's ``tcti`` (also that of a node's private swtpm), or the
    configfs-tsm ``tsm_root`` (also the directory a node's stand-in provider serves)."""
    inner = backend.inner if isinstance(backend, _Owned) else backend
    if isinstance(inner, TpmBackend):
        return {"tcti": inner.tcti}
    if isinstance(inner, TsmBackend):
        return {"tsm_root": str(inner.root)}
    return {}
