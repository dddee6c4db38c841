"""foglayer: one WebAssembly layer from the cloud to the edge to IoT."""

from foglayer.errors import FogError

__version__ = "0.1.0"
__all__ = ["FogError", "__version__"]
