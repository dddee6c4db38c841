"""The live web view of a continuum: read-only, on localhost, behind a token.

Public API:

- :class:`WebView` – serve the view of the continuum that ``creds`` reach:
  ``WebView(creds).start()`` runs it in a thread (``fog up``), ``.serve()`` in the foreground
  (``fog ui``); ``.url`` carries the token.
- :class:`ViewState` – what the page shows, as one typed snapshot (sites, nodes, apps and
  their replicas, recent events), built from the same KV buckets and event stream as ``fog``.

The page is plain HTML with a little JS: it loads the snapshot, then follows server-sent
events (``/api/stream``) that push a new snapshot whenever anything changed. Every route needs
the token (``?token=`` or the ``Authorization: Bearer`` header); it listens on 127.0.0.1
unless told otherwise.
"""

from foglayer.web._server import WebView
from foglayer.web._state import ViewState

__all__ = ["ViewState", "WebView"]
