"""Errors of the venue I/O layer; they live in the one tree of ``meltica_trio._errors``.

Foreign errors (trio-websocket, httpx, ``OSError``) are translated into these at the
transport's edge with ``raise ... from exc``, so the provider runtime handles one type.
"""

from meltica_trio._errors import ProviderError, ProviderGaveUpError, TransportError

__all__ = ["ProviderError", "ProviderGaveUpError", "TransportError"]
