"""The service ABI (docs/service-abi.md) as the cluster uses it; the call path lives in the
runtime (:class:`foglayer.runtime.Service`), the only layer that touches the engine."""

from foglayer.runtime import Service, ServiceError, check_function

__all__ = ["Service", "ServiceError", "check_function"]
