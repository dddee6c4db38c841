"""The async cluster client, one module per command group, assembled in :class:`Client`."""

from foglayer.cluster.client._client import (
    Client,
    UnknownApp,
    check_app,
    default_creds_path,
    resolve,
)
from foglayer.cluster.client._services import check_function
from foglayer.cluster.client._usage import UsageRow, UsageSummary, parse_since

__all__ = ["Client", "UnknownApp", "UsageRow", "UsageSummary", "check_app", "check_function",
           "default_creds_path", "parse_since", "resolve"]
