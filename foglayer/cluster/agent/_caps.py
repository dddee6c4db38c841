"""What a node is and says about itself: its configuration and its capabilities."""

from __future__ import annotations

import os
import platform
import resource
from dataclasses import dataclass, field
from pathlib import Path

from foglayer.cluster._protocol import Caps

FD_RESERVE = 256  # descriptors the agent keeps for itself (bus, pipes, module files)


@dataclass
class NodeConfig:
    """How a node agent runs. ``max_memory`` None: the machine's memory."""

    name: str
    server: str | None = None
    creds: object | None = None  # a foglayer.cluster.Creds
    labels: dict[str, str] = field(default_factory=dict)
    max_memory: int | None = None
    fuel_rate: float | None = None  # instructions per second; None: unthrottled
    heartbeat: float = 1.0
    data_dir: Path | None = None
    latency: dict[str, float] = field(default_factory=dict)  # site -> milliseconds
    simd: bool = True
    cpus: int | None = None
    max_fds: int | None = None  # descriptors for all instances; None: what the process may open
    probe_sites: list[str] = field(default_factory=list)  # sites whose round trip to measure
    probe_every: float = 2.0
    metrics_port: int | None = None  # Prometheus metrics on 127.0.0.1 (0: a free port)
    tee: str | None = None  # evidence backend: sim, tpm, tsm (foglayer.trust)
    tpm_tcti: str | None = None  # tpm: TPM2TOOLS_TCTI; none and no /dev/tpmrm0: a private swtpm
    tsm_root: str | None = None  # tsm: configfs-tsm report dir, or "standin" (no TEE hardware)
    controller_key: bytes | None = None  # the controller's public key (DER), from the creds


def fd_budget(cfg: NodeConfig) -> int:
    """Descriptors the node's instances may hold in all (raises the soft limit to the hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        want = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    budget = max(0, soft - FD_RESERVE)
    return min(budget, cfg.max_fds) if cfg.max_fds is not None else budget


def capabilities(cfg: NodeConfig, native_speed: float, max_fds: int) -> Caps:
    """What the node tells the controller about itself (the scheduler's input: claims)."""
    from importlib.metadata import version

    from foglayer._host import cpu_model, physical_memory
    from foglayer.cluster._manifest import BASELINE, FEATURES

    phys = physical_memory()
    duty = min(1.0, cfg.fuel_rate / native_speed) if cfg.fuel_rate and native_speed else 1.0
    features = [*BASELINE, *(f for f in FEATURES if cfg.simd or f not in ("simd", "relaxed_simd"))]
    return Caps(
        name=cfg.name,
        arch=platform.machine(),
        os=platform.system().lower(),
        cpu_model=cpu_model(),
        cpus=cfg.cpus or os.cpu_count() or 1,
        memory=phys,
        max_memory=min(cfg.max_memory or phys, phys),
        engine="wasmtime",
        engine_version=version("wasmtime"),
        features=sorted(features),
        tee=[],  # TEE backends (none yet: see the trust package)
        labels=dict(cfg.labels),
        latency=dict(cfg.latency),
        speed=round(native_speed * duty),  # Wasm instructions per second, one core
        fuel_rate=cfg.fuel_rate,
        duty=round(duty, 4),
        max_fds=max_fds,
    )
