"""The async cluster client, one module per command group, assembled in :class:`Client`."""

from foglayer.cluster.client._client import Client, UnknownApp, check_app, resolve
from foglayer.cluster.client._services import check_function

__all__ = ["Client", "UnknownApp", "check_app", "check_function", "resolve"]
