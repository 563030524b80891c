"""The broker: its state, its listeners, and their connections.

`Broker` owns everything the handlers share: configuration, the log manager, the topic
registry, the waiters of long-polling fetches, and the cluster identity (kept in each log
dir's `meta.properties`). `Broker.serve` opens one `trio.serve_tcp` per entry of
`listeners`, runs a `Connection` per client, and runs the periodic log work (retention,
flushes, checkpoints) in the same nursery. Blocking disk work (fsync, deleting files) runs
in worker threads so that the trio thread never waits on the disk.

On cancellation (SIGTERM/SIGINT in the CLI) the listeners stop accepting, each connection
finishes the response it is writing (writes are shielded), and `close()` flushes every log,
writes the checkpoints and the clean-shutdown marker.
"""

from __future__ import annotations

import logging
import os
import time
from functools import partial

import trio

from broker import dynamic_config
from broker.config import BrokerConfig, Listener, topic_defaults
from broker.connection import Connection
from broker.fetch_sessions import FetchSessionCache
from broker.groups import GroupService
from broker.handlers import load_all
from broker.metadata import (
    TopicRegistry,
    log_config_with,
    stored_topic_configs,
    topic_log_defaults,
)
from broker.metrics import BrokerMetrics, MetricsListener, serve_metrics
from broker.producer_ids import ProducerIds
from broker.transactions import TransactionService
from broker.waiters import AppendWaiters
from storage import LogManager

log = logging.getLogger("odradek.server")


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Broker:
    def __init__(self, config: BrokerConfig) -> None:
        load_all()
        self.config = config
        self.node_id: int = config["node.id"]
        self.clock = wall_clock_ms
        started = time.monotonic()
        log_dirs: list[str | os.PathLike[str]] = list(config.log_dirs)
        # Each log is loaded (and recovered) with its topic's settings, read before the
        # logs are opened.
        defaults = topic_log_defaults(topic_defaults(config))
        stored = stored_topic_configs(os.path.abspath(config.log_dirs[0]))
        # inline_flush=False: an append never fsyncs; Produce flushes in a worker thread.
        self.logs = LogManager(log_dirs, defaults, node_id=self.node_id, clock=self.clock,
                               inline_flush=False,
                               topic_config=lambda t: log_config_with(defaults, stored.get(t, {})))
        self.cluster_id: str = self.logs.cluster_id or ""
        self.topics = TopicRegistry(self.logs, topic_defaults(config))
        self.waiters = AppendWaiters()
        self.producer_ids = ProducerIds.from_config(self.logs.log_dirs[0], config)
        self.fetch_sessions = FetchSessionCache.from_config(config, self.clock)
        self.groups = GroupService(self)
        # After the groups: recovered markers on __consumer_offsets settle their offsets.
        self.transactions = TransactionService(self)
        self.metrics = BrokerMetrics(self)
        #: The bound port of the metrics endpoint, once serving (None: `metrics.listener` off).
        self.metrics_port: int | None = None
        #: (listener, bound port) for each listener, once serving.
        self.bound: list[tuple[Listener, int]] = []
        self._closed = False
        # Persisted dynamic configs (AlterConfigs) take effect before the first request.
        dynamic_config.attach(self)
        used = {self.logs.log_dir_of(tp.topic, tp.partition) for tp, _ in self.logs.all_logs()}
        unclean = [d for d, clean in self.logs.had_clean_shutdown.items()
                   if not clean and d in used]
        log.info("loaded logs partitions=%d topics=%d log.dirs=%s last_stop=%s seconds=%.3f",
                 len(self.logs), len(self.topics), ",".join(self.logs.log_dirs),
                 "unclean (recovered " + ",".join(unclean) + ")" if unclean else "clean",
                 time.monotonic() - started)
        #: When start-up began, the partitions recovered and the last stop: for the banner.
        self._startup = (started, sum(1 for tp, _ in self.logs.all_logs()
                                      if self.logs.log_dir_of(tp.topic, tp.partition) in unclean),
                         "unclean" if unclean else "clean")

    def _log_banner(self) -> None:
        """One `started` line once every listener is bound: version, listeners (with their
        bound ports), advertised listeners, log dirs, partitions (and how many were
        recovered after an unclean stop), how the last stop went, seconds since start-up
        began."""
        from importlib import metadata

        try:
            version = metadata.version("odradek")
        except metadata.PackageNotFoundError:
            version = "unknown"
        began, recovered, last_stop = self._startup
        listeners = ",".join(f"{listener.name}://{listener.host or '0.0.0.0'}:{port}"
                             for listener, port in self.bound)
        advertised = ",".join(f"{name}://{host}:{port}" for name, host, port in self.advertised())
        log.info("started version=%s node.id=%d cluster.id=%s listeners=%s "
                 "advertised.listeners=%s log.dirs=%s partitions=%d recovered=%d "
                 "last_stop=%s seconds=%.3f", version, self.node_id, self.cluster_id, listeners,
                 advertised, ",".join(self.logs.log_dirs), len(self.logs), recovered, last_stop,
                 time.monotonic() - began)

    def advertised(self) -> list[tuple[str, str, int]]:
        """(listener name, host, port) as clients should reach this broker.

        A port of 0 in `advertised.listeners` (or in `listeners` when no advertised
        listeners are set) means the port that was actually bound.
        """
        bound = {listener.name: port for listener, port in self.bound}
        out = []
        for listener in self.config.advertised_listeners:
            port = listener.port or bound.get(listener.name, listener.port)
            host = listener.host or "localhost"
            out.append((listener.name, host, port))
        return out

    async def handle_stream(self, stream: trio.abc.Stream, listener: str = "") -> None:
        await Connection(self, stream, listener).serve()

    async def serve(self, *, task_status: trio.TaskStatus[list[int]] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        """Serve every listener until cancelled; `task_status.started` gets the bound ports."""
        try:
            async with trio.open_nursery() as nursery:
                ports = []
                for listener in self.config.listeners:
                    host = listener.host or None
                    listeners = await nursery.start(
                        partial(trio.serve_tcp, partial(self.handle_stream, listener=listener.name),
                                listener.port, host=host))
                    port = listeners[0].socket.getsockname()[1]
                    self.bound.append((listener, port))
                    ports.append(port)
                    log.info("listening name=%s host=%s port=%d", listener.name,
                             listener.host or "*", port)
                if self.config["metrics.listener"]:
                    self.metrics_port = await nursery.start(
                        serve_metrics, self.metrics,
                        MetricsListener.parse(self.config["metrics.listener"]))
                nursery.start_soon(self._log_maintenance)
                nursery.start_soon(self._log_cleaner)
                nursery.start_soon(self.groups.run)
                nursery.start_soon(self.transactions.run)
                self._log_banner()
                task_status.started(ports)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.close)

    async def _log_maintenance(self) -> None:
        """Retention every `log.retention.check.interval.ms`; flushes and checkpoints; the
        removal of deleted topics' logs and segments once `file.delete.delay.ms` has passed
        (checked every `log.segment.delete.delay.ms`, between 1 s and 60 s)."""
        retention_every = self.config["log.retention.check.interval.ms"] / 1000
        delete_every = min(max(self.config["log.segment.delete.delay.ms"] / 1000, 1.0), 60.0)
        next_delete = trio.current_time() + delete_every
        checkpoint_every = self.config["log.flush.offset.checkpoint.interval.ms"] / 1000
        # Kafka flushes a rolled segment right after the roll; checking every second keeps
        # that promptly, and honours each log's flush.ms.
        flush_every = min(self.config["log.flush.scheduler.interval.ms"] / 1000, 1.0)
        next_retention = trio.current_time() + retention_every
        next_checkpoint = trio.current_time() + checkpoint_every
        next_flush = trio.current_time() + flush_every
        while True:
            await trio.sleep_until(min(next_retention, next_checkpoint, next_flush, next_delete))
            now = trio.current_time()
            if now >= next_delete:
                next_delete = now + delete_every
                await trio.to_thread.run_sync(self.logs.delete_pending, self.clock())
            if now >= next_retention:
                next_retention = now + retention_every
                await trio.to_thread.run_sync(self.logs.cleanup_logs, self.clock())
            if now >= next_flush:
                next_flush = now + flush_every
                await trio.to_thread.run_sync(self.logs.flush_dirty_logs, self.clock())
                self.producer_ids.maybe_expire((p for _, p in self.logs.all_logs()),
                                               self.clock())
            if now >= next_checkpoint:
                next_checkpoint = now + checkpoint_every
                await trio.to_thread.run_sync(self._checkpoint)

    async def _log_cleaner(self) -> None:
        """Compaction (`log.cleaner.enable`): clean the filthiest log in a worker thread;
        again at once after a pass that cleaned something, else after
        `log.cleaner.backoff.ms`."""
        while True:
            stats = None
            if self.config["log.cleaner.enable"]:
                stats = await trio.to_thread.run_sync(self.logs.cleaner.clean_once, self.clock())
            if stats is None:
                await trio.sleep(self.config["log.cleaner.backoff.ms"] / 1000)
            else:
                await trio.sleep(0)

    def _checkpoint(self) -> None:
        self.logs.checkpoint_recovery_points()
        self.logs.checkpoint_log_start_offsets()

    def close(self) -> None:
        """Flush every log, write checkpoints and the clean-shutdown marker. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.logs.shutdown()
        log.info("logs closed cleanly")
