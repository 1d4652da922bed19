"""Defaults of the order gateway, each with its unit and the reason for it.

(To be moved into ``meltica_trio/_defaults.py`` with the other defaults.)
"""

from __future__ import annotations

from typing import Final

LEDGER_TTL: Final = 24 * 3600.0
"""Seconds the idempotency ledger remembers an order: a trading day, so a strategy that
restarts and resends the day's client order ids creates no second order."""

LEDGER_MAX_ENTRIES: Final = 100_000
"""Orders the ledger remembers at once (about 50 MB); beyond it new orders are refused
(fail closed) until old entries expire, rather than forgetting a live idempotency key."""

ORDER_WORKERS: Final = 16
"""Gateway workers. Work on one order is serialized on one worker (chosen by a hash of
its key), so a cancel never overtakes its submit; a venue call stuck for its whole
timeout delays only the orders that share its worker."""

ORDER_QUEUE_CAPACITY: Final = 1024
"""Venue jobs queued across all workers before new commands are refused as busy."""

UPDATE_CAPACITY: Final = 1024
"""Venue execution updates buffered between a venue's stream reader and the gateway."""

MAX_ATTEMPTS: Final = 6
"""Venue calls one step (place, cancel, reconcile) makes before giving up."""

BACKOFF_BASE: Final = 0.25
"""Seconds before the first retry; doubled on each further retry (with full jitter)."""

BACKOFF_CAP: Final = 8.0
"""Longest pause between two retries of one step, seconds."""

RECV_WINDOW_MS: Final = 5000
"""Binance ``recvWindow`` in ms: a signed request reaching the engine later is dropped.

It is also why a query that finds no order is trusted only once this window has passed
since the last submit was signed: until then a delayed submit may still land."""

REQUEST_TIMEOUT: Final = 10.0
"""Seconds an order REST call may take before its outcome is treated as unknown."""

LISTEN_KEY_KEEPALIVE: Final = 30 * 60.0
"""Seconds between user-data-stream keepalives: a listenKey lives 60 minutes and Binance
recommends a keepalive about every 30."""

RECONNECT_BASE: Final = 0.5
"""Seconds before the first user-data-stream reconnect; doubled per failure (jittered)."""

RECONNECT_CAP: Final = 30.0
"""Longest pause between user-data-stream reconnects, seconds."""
