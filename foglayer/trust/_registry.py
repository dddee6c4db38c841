"""The evidence backends by name."""

from foglayer.trust._backend import EvidenceBackend
from foglayer.trust._sim import SimBackend
from foglayer.trust._tpm import TpmBackend
from foglayer.trust._tsm import TsmBackend

BACKENDS: dict[str, type[EvidenceBackend]] = {
    cls.name: cls for cls in (SimBackend, TpmBackend, TsmBackend)}
