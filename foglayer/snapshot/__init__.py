"""Checkpoint and restore of running Wasm apps, open files included: the portable snapshot.

Public API:

- :func:`make_checkpointable` – rewrite a command module once (safepoints, Asyncify,
  exported globals), cached by digest: a :class:`Rewritten`.
- :func:`run_checkpointable` – ``fog run --checkpointable``: run, checkpoint on SIGUSR1,
  on a timer or at :meth:`Session.request`; :class:`CheckpointOptions`, :class:`Outcome`.
- :func:`restore` – ``fog restore``: resume a snapshot (preopens remapped, files checked).
- :func:`open_session` – the same, stepwise: a :class:`Session` ready to ``run()``.
- :func:`checkpoint_pid` – ``fog checkpoint PID``.
- :func:`snapshot_instance` / :func:`restore_instance` – service (reactor) instances,
  between two calls of their exports.
- :func:`load_snapshot`, :func:`parse_snapshot`, :func:`describe` – read and show a snapshot.
- :class:`SnapshotMeta` – the typed, versioned metadata (checked whole on every read).
- :func:`diff_pages` – which pages changed between two snapshots (pre-copy migration).
- Live migration, pre-copy (``_precopy``): :class:`PageStream` (source: rounds of changed
  pages as bounded, hashed chunks, built one at a time: :class:`PendingRound`), :class:`PageSink` (target: an instance prepared early,
  every chunk checked whole), :func:`service_state` / :func:`command_state` (the last
  delta: globals, Asyncify stack, WASI state), :func:`encode_chunk` / :func:`map_digest`
  (chunks and page-map digests rebuilt from stored pages), :func:`finish_service` /
  :func:`finish_command` (the switch, descriptors re-opened inside the target's dirs).
  :func:`warm_dirty_scan` loads the native scan of changed pages ahead of a move;
  :func:`dirty_scan_path` says which scan is used ("native" or "python"); :data:`DIRTY_SCAN`
  is its :class:`foglayer.toolchain.NativeLibrary` (readied by the host for the arm64 root).
  Volumes (``_treecopy``): :class:`TreeStream` / :class:`TreeSink`, files as 64 KiB blocks by
  hash; :class:`TreeCollector` / :class:`TreePlan` store and rebuild them by block.
- :class:`SnapshotError`, :class:`RewriteError`, :class:`FilesChanged`.
"""

from foglayer.snapshot._capture import Checkpoint, CheckpointOptions, Session
from foglayer.snapshot._dirty import LIBRARY as DIRTY_SCAN
from foglayer.snapshot._dirty import path as dirty_scan_path
from foglayer.snapshot._dirty import warm as warm_dirty_scan
from foglayer.snapshot._errors import FilesChanged, RewriteError, SnapshotError
from foglayer.snapshot._format import PageDiff, Snapshot, diff_pages
from foglayer.snapshot._format import load as load_snapshot
from foglayer.snapshot._format import parse as parse_snapshot
from foglayer.snapshot._inspect import describe
from foglayer.snapshot._meta import FORMAT_VERSION, SnapshotMeta
from foglayer.snapshot._precopy import (
    PageSink,
    PageStream,
    PendingRound,
    Round,
    command_state,
    decode_chunk,
    encode_chunk,
    finish_command,
    finish_service,
    map_digest,
    page_hashes,
    service_state,
)
from foglayer.snapshot._registry import checkpoint_pid
from foglayer.snapshot._rewrite import Rewritten, make_checkpointable
from foglayer.snapshot._run import Outcome, open_session, restore, run_checkpointable
from foglayer.snapshot._service import restore_instance, snapshot_instance
from foglayer.snapshot._treecopy import BLOCK as TREE_BLOCK
from foglayer.snapshot._treecopy import Entry as TreeEntry
from foglayer.snapshot._treecopy import (
    SpooledRound,
    TreeCollector,
    TreePlan,
    TreeRound,
    TreeSink,
    TreeStream,
    block_lengths,
    check_manifest,
)

__all__ = [
    "FORMAT_VERSION", "Checkpoint", "CheckpointOptions", "FilesChanged", "Outcome", "PageDiff",
    "PageSink", "PageStream", "PendingRound", "Round", "command_state", "decode_chunk", "encode_chunk", "map_digest", "finish_command",
    "finish_service", "page_hashes", "service_state", "TreeRound", "TreeSink", "TreeStream",
    "TREE_BLOCK", "SpooledRound", "TreeCollector", "TreeEntry", "TreePlan", "block_lengths", "check_manifest",
    "RewriteError", "Rewritten", "Session", "Snapshot", "SnapshotError", "SnapshotMeta", "checkpoint_pid",
    "describe", "diff_pages", "load_snapshot", "make_checkpointable", "open_session",
    "parse_snapshot", "restore", "restore_instance", "run_checkpointable", "snapshot_instance", "warm_dirty_scan",
    "DIRTY_SCAN", "dirty_scan_path",
]
