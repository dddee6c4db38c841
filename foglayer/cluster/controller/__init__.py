"""The controller (``fog controller``): node registry, reconcile loop, placement, modules,
events – one module per job, assembled in :class:`Controller`."""

from foglayer.cluster.controller._controller import Controller, ControllerConfig, run_controller

__all__ = ["Controller", "ControllerConfig", "run_controller"]
