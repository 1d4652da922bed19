"""The Redis Streams bridge: the Data Bus and Control Bus across processes and hosts.

Install the ``redis`` extra (``pip install 'meltica-trio[redis]'``, which brings
coredis). In the pipeline's process::

    async with open_pipeline(cfg) as pipe, open_bridge(pipe, BridgeConfig(url=...)):
        ...

and on any host, as many times as needed::

    meltica-trio worker --redis redis://host:6379/0 --group g1 --consumer mymod:on_event

Stream names, delivery guarantees across the wire, crash windows and outage
behaviour: ``docs/explanation/bridge.md``; running workers: ``docs/how-to/run-workers.md``.
"""

from ._bridge import FLUSH_TIMEOUT, Bridge, BridgeStatistics, open_bridge
from ._cli import load_handler, run_worker_cli
from ._config import Attachment, BridgeConfig, MarketExport, WorkerConfig
from ._control import ControlReaderStatistics
from ._critical import CriticalStatistics
from ._exporter import ExporterStatistics
from ._forwarder import ForwarderStatistics, RemoteControl
from ._gate import Verdict
from ._group import GroupStatistics
from ._ledger import RedisLedger, open_redis_ledger
from ._link import LinkStatistics
from ._market import MarketStatistics
from ._streams import StreamNames
from ._trim import TrimStatistics
from ._worker import DRAIN_TIMEOUT, Worker, WorkerStatistics, open_worker

__all__ = [
    "DRAIN_TIMEOUT",
    "FLUSH_TIMEOUT",
    "Attachment",
    "Bridge",
    "BridgeConfig",
    "BridgeStatistics",
    "ControlReaderStatistics",
    "CriticalStatistics",
    "ExporterStatistics",
    "ForwarderStatistics",
    "GroupStatistics",
    "LinkStatistics",
    "MarketExport",
    "MarketStatistics",
    "RedisLedger",
    "RemoteControl",
    "StreamNames",
    "TrimStatistics",
    "Verdict",
    "Worker",
    "WorkerConfig",
    "WorkerStatistics",
    "load_handler",
    "open_bridge",
    "open_redis_ledger",
    "open_worker",
    "run_worker_cli",
]
