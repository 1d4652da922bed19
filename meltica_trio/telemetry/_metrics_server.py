"""Serving metrics over HTTP from the trio thread: a small ASGI app on hypercorn.

``statistics()`` reads counters that trio tasks change without locks, so a scrape
must run in the trio thread; prometheus-client's own HTTP server would call the
collector from a thread of its own. The app answers ``GET /metrics`` (text format,
or OpenMetrics when asked) as a task of the pipeline's nursery, and stops with it.
A scrape takes the trio thread for about a millisecond per few dozen consumers.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Final

import attrs
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from meltica_trio._net import check_bindable

from ._prometheus import PipelineCollector, ProviderSource

if TYPE_CHECKING:
    from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, Scope

log = logging.getLogger(__name__)

METRICS_HOST: Final = "127.0.0.1"
"""Interface the endpoint binds by default: loopback, so metrics are never exposed
beyond the machine unless asked (``0.0.0.0``)."""

METRICS_PATH: Final = "/metrics"


@attrs.define(eq=False)
class MetricsServer:
    """A running metrics endpoint (from :func:`serve_metrics` or ``pipe.metrics``).

    Attributes:
        url: where to scrape, e.g. ``http://127.0.0.1:9464/metrics``.
        collector: the pipeline's collector (``watch`` providers through it).
        registry: everything served: the collector, process and GC metrics.
        scrapes: requests answered with metrics.
    """

    url: str
    collector: PipelineCollector
    registry: CollectorRegistry
    scrapes: int = 0

    def watch(self, provider: ProviderSource) -> None:
        """Export ``provider``'s statistics too."""
        self.collector.watch(provider)


def metrics_registry(collector: Collector) -> CollectorRegistry:
    """A registry of ``collector`` plus the process (CPU, RSS, fds) and GC collectors.

    A registry of its own, never prometheus-client's global one, so two pipelines
    in a process (or in a test run) never collide.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)  # reads /proc: in-memory files, no disk wait
    GCCollector(registry=registry)
    return registry


def _asgi_app(server: MetricsServer) -> ASGIFramework:
    async def app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] != METRICS_PATH:
            await _respond(send, 404, b"text/plain", b"metrics are at /metrics\n")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"text/plain", b"GET /metrics\n")
            return
        accept = b",".join(v for k, v in scope["headers"] if k.lower() == b"accept").decode()
        encoder, content_type = choose_encoder(accept)
        try:
            body = encoder(server.registry)
        except Exception:
            log.exception("metrics scrape failed")
            await _respond(send, 500, b"text/plain", b"the scrape failed; see the log\n")
            return
        server.scrapes += 1
        await _respond(
            send, 200, content_type.encode(), b"" if scope["method"] == "HEAD" else body
        )

    return app


async def _lifespan(receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(send: ASGISendCallable, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def serve_metrics(
    collector: PipelineCollector,
    host: str = METRICS_HOST,
    port: int = 0,
    *,
    task_status: trio.TaskStatus[MetricsServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``collector``'s metrics at ``http://host:port/metrics`` until cancelled.

    A pipeline runs this itself when ``PipelineConfig.metrics_port`` is set; the
    running server is then ``pipe.metrics``.

    Args:
        collector: what to serve (with process and GC metrics beside it).
        host: the interface to bind (loopback by default).
        port: the TCP port; 0 picks a free one (read it from the server's ``url``).
        task_status: started with the :class:`MetricsServer` once it accepts
            connections.

    Raises:
        OSError: the port cannot be bound.

    Cancellation:
        The way to stop it: the listening socket and open connections close.
    """
    await check_bindable(host, port)
    server = MetricsServer(url="", collector=collector, registry=metrics_registry(collector))
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("meltica_trio.telemetry.hypercorn")
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            functools.partial(serve, _asgi_app(server), config, mode="asgi")
        )
        server.url = binds[0] + METRICS_PATH
        log.info("metrics on %s", server.url)
        task_status.started(server)
