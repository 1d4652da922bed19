"""The bridge's defaults, each with its unit and the reason for it."""

from __future__ import annotations

from typing import Final

PREFIX: Final = "meltica"
"""First part of every Redis key the bridge uses, so one Redis can serve many deployments."""

REDIS_URL: Final = "redis://127.0.0.1:6379/0"
"""Where Redis is when nothing says otherwise: the local server of DESIGN.md section 8."""

MARKET_MAXLEN: Final = 10_000
"""Entries a market data stream keeps (``MAXLEN ~``): seconds of a busy stream, enough for a
worker that blinks to catch up, and a bound on Redis memory per topic."""

CRITICAL_CAPACITY: Final = 4096
"""Critical entries the exporter holds while Redis is unreachable before its consumers wait
(backpressure): four lanes' worth of execution reports and answers."""

MARKET_CAPACITY: Final = 4096
"""Market data entries waiting for the writer; beyond it the oldest is dropped and counted."""

WRITE_BATCH: Final = 512
"""Entries per XADD pipeline: one round trip amortised over many, yet a short pause per batch."""

READ_COUNT: Final = 64
"""Entries per XREADGROUP/XREAD, and the critical entries a worker holds unacknowledged."""

READ_BLOCK: Final = 0.2
"""Seconds a blocking read waits for new entries; bounds how stale the topic list may be."""

CLAIM_IDLE: Final = 30.0
"""Seconds an entry stays pending with a silent owner before another worker claims it.

Much longer than any heartbeat pause (a third of it), so only a dead or partitioned worker
loses its entries; short enough that a crash delays its events by half a minute at most."""

APPLIED_TTL: Final = 24 * 3600.0
"""Seconds an applied id is remembered: as long as the order gateway's idempotency ledger."""

TRIM_INTERVAL: Final = 5.0
"""Seconds between trims of acknowledged entries from critical and control streams."""

TOPIC_REFRESH: Final = 1.0
"""Seconds between looks at the set of market data topics, to read new ones."""

COMMAND_CAPACITY: Final = 1024
"""Commands a worker queues for the control stream; beyond it ``submit_order`` is refused,
like the in-process control bus (``bus.CONTROL_CAPACITY``)."""

DLQ_MAXLEN: Final = 10_000
"""Entries a DLQ stream keeps (``MAXLEN ~``), like the in-memory DLQ."""

CONNECT_TIMEOUT: Final = 2.0
"""Seconds to open a connection to Redis before counting the link down."""

STREAM_TIMEOUT: Final = 10.0
"""Seconds a command may wait for its reply; above ``READ_BLOCK`` so blocking reads fit."""

RECONNECT_INITIAL: Final = 0.1
"""Seconds before the first retry after Redis failed: a restart takes about that long."""

RECONNECT_MAX: Final = 5.0
"""Longest pause between retries, seconds: an outage's end is noticed within five seconds."""

POOL_MAX_WAIT: Final = 0.05
"""Seconds a worker waits for an envelope before lending one from the heap (counted)."""

BRIDGE_GROUP: Final = "bridge"
"""The consumer group on the control stream read by the pipeline's bridge."""

MARKET_CONSUMER: Final = "bridge.market"
"""The pipeline consumer id of the market data exporter."""
