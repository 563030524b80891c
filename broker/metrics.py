"""Prometheus metrics: what the broker counts, and the HTTP endpoint that serves them.

Each `Broker` owns one `BrokerMetrics` with its own `CollectorRegistry`, so several brokers
in one process (tests) never share a series. Names follow the JMX exporter's Kafka rules
(`lowercaseOutputName`, `kafka.<domain><type=T, name=NPerSec, k=v><>Count` ->
`kafka_<domain>_<t>_<n>_total{k=v}`, `...><>Value` -> `kafka_<domain>_<t>_<n>`), so a
dashboard built for Apache Kafka behind the JMX exporter finds the same series here:

========================================================  ==================================
series                                                    Kafka MBean it mirrors
========================================================  ==================================
kafka_network_requestmetrics_requests_total               RequestMetrics RequestsPerSec
  {request, version}                                      (per API name and version)
kafka_network_requestmetrics_totaltimems (histogram)      RequestMetrics TotalTimeMs
  {request}                                               (receive to response written, ms)
kafka_network_requestmetrics_errors_total                 RequestMetrics ErrorsPerSec
  {request, error}                                        (Produce and Fetch partition errors)
kafka_server_brokertopicmetrics_bytesin_total{topic}      BrokerTopicMetrics BytesInPerSec
kafka_server_brokertopicmetrics_messagesin_total{topic}   BrokerTopicMetrics MessagesInPerSec
kafka_server_brokertopicmetrics_bytesout_total{topic}     BrokerTopicMetrics BytesOutPerSec
kafka_server_brokertopicmetrics_failedproducerequests_    BrokerTopicMetrics
  total{topic}                                            FailedProduceRequestsPerSec
kafka_server_brokertopicmetrics_failedfetchrequests_      BrokerTopicMetrics
  total{topic}                                            FailedFetchRequestsPerSec
kafka_server_socket_server_metrics_connection_count       socket-server-metrics
  {listener}                                              connection-count
kafka_log_log_logendoffset{topic, partition}              Log LogEndOffset
kafka_log_log_logstartoffset{topic, partition}            Log LogStartOffset
kafka_log_log_size{topic, partition}                      Log Size
kafka_server_replicamanager_underreplicatedpartitions     ReplicaManager
                                                          UnderReplicatedPartitions (0: one node)
kafka_server_delayedoperationpurgatory_purgatorysize      DelayedOperationPurgatory
  {delayedoperation="Fetch"}                              PurgatorySize (parked long polls)
kafka_consumergroup_current_offset{consumergroup,         (no broker MBean: the names of
  topic, partition}, kafka_consumergroup_lag{...}         danielqsj/kafka_exporter)
========================================================  ==================================

The counters are bumped on the request path: one increment per request and per produced or
fetched partition, never per record. The log and group series are read when scraped, by a
custom collector, so nothing is kept up to date between scrapes. Errors count only codes
other than NONE (Kafka also counts NONE).

The endpoint (`metrics.listener`, e.g. `http://127.0.0.1:9644/metrics`; empty: off) is a
minimal HTTP/1.1 server on trio: GET (or HEAD) of the configured path answers the text
exposition format, any other path 404, any other method 405; one request per connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import prometheus_client
import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from protocol.errors import ErrorCode
from protocol.messages import REQUESTS

if TYPE_CHECKING:
    from broker.server import Broker

log = logging.getLogger("odradek.metrics")

# The `_created` series double the output and no Kafka dashboard uses them.
prometheus_client.disable_created_metrics()

#: Kafka's request names (`ApiKeys.name` as RequestMetrics prints it): "Produce", "Fetch"...
REQUEST_NAMES: dict[int, str] = {
    key: cls.__name__.removesuffix("Request") for key, cls in REQUESTS.items()
}

#: Latency buckets in milliseconds (TotalTimeMs is in ms); long polls reach max.wait.ms.
LATENCY_BUCKETS_MS = (0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000,
                      10000, 30000)

MAX_REQUEST_HEAD = 8192


def request_name(api_key: int) -> str:
    return REQUEST_NAMES.get(api_key, str(api_key))


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


class BrokerMetrics:
    """The broker's metrics and its own registry; hooks called by the request path."""

    def __init__(self, broker: Broker) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._produce_children: dict[str, tuple[Any, Any]] = {}
        self._fetch_children: dict[str, Any] = {}
        r = self.registry
        self.requests = Counter(
            "kafka_network_requestmetrics_requests", "Requests handled, by API and version.",
            ["request", "version"], registry=r)
        self.total_time = Histogram(
            "kafka_network_requestmetrics_totaltimems",
            "Time from a request's arrival to its response written, in milliseconds.",
            ["request"], buckets=LATENCY_BUCKETS_MS, registry=r)
        self.errors = Counter(
            "kafka_network_requestmetrics_errors",
            "Partition error codes returned by Produce and Fetch.", ["request", "error"],
            registry=r)
        self.bytes_in = Counter(
            "kafka_server_brokertopicmetrics_bytesin",
            "Record batch bytes appended by producers.", ["topic"], registry=r)
        self.messages_in = Counter(
            "kafka_server_brokertopicmetrics_messagesin",
            "Records appended by producers.", ["topic"], registry=r)
        self.bytes_out = Counter(
            "kafka_server_brokertopicmetrics_bytesout",
            "Record batch bytes returned to fetchers.", ["topic"], registry=r)
        self.failed_produce = Counter(
            "kafka_server_brokertopicmetrics_failedproducerequests",
            "Produce partitions that failed.", ["topic"], registry=r)
        self.failed_fetch = Counter(
            "kafka_server_brokertopicmetrics_failedfetchrequests",
            "Fetch partitions that failed.", ["topic"], registry=r)
        self.connections = Gauge(
            "kafka_server_socket_server_metrics_connection_count",
            "Open client connections.", ["listener"], registry=r)
        r.register(_StateCollector(broker))
        # Label children cached by key: a request costs two dict lookups, not label parsing.
        self._request_children: dict[tuple[int, int], tuple[Any, Any]] = {}

    # -- hooks on the request path -------------------------------------------------------

    def request_done(self, api_key: int, api_version: int, started: float) -> None:
        """Count a handled request and observe its latency (`started`: perf_counter)."""
        children = self._request_children.get((api_key, api_version))
        if children is None:
            name = request_name(api_key)
            children = (self.requests.labels(name, str(api_version)),
                        self.total_time.labels(name))
            self._request_children[(api_key, api_version)] = children
        children[0].inc()
        children[1].observe((time.perf_counter() - started) * 1000)

    def produced(self, topic: str, size: int, records: int) -> None:
        # The labelled children are cached per topic: `labels()` costs microseconds.
        children = self._produce_children.get(topic)
        if children is None:
            children = self._produce_children[topic] = (
                self.bytes_in.labels(topic), self.messages_in.labels(topic))
        children[0].inc(size)
        children[1].inc(records)

    def produce_failed(self, topic: str, code: int) -> None:
        if topic:  # not for a topic id that names no topic
            self.failed_produce.labels(topic).inc()
        self.errors.labels("Produce", error_name(code)).inc()

    def fetched(self, topic: str, size: int) -> None:
        if size:
            child = self._fetch_children.get(topic)
            if child is None:
                child = self._fetch_children[topic] = self.bytes_out.labels(topic)
            child.inc(size)

    def fetch_failed(self, topic: str, code: int) -> None:
        if topic:
            self.failed_fetch.labels(topic).inc()
        self.errors.labels("Fetch", error_name(code)).inc()

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)


class _StateCollector(Collector):
    """Series read from the broker's state at scrape time."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def collect(self) -> Iterator[Metric]:
        broker = self.broker
        tp_labels = ["topic", "partition"]
        end = GaugeMetricFamily("kafka_log_log_logendoffset",
                                "The offset the next appended record gets.", labels=tp_labels)
        start = GaugeMetricFamily("kafka_log_log_logstartoffset",
                                  "The first offset still in the log.", labels=tp_labels)
        size = GaugeMetricFamily("kafka_log_log_size",
                                 "Bytes of the partition's segments.", labels=tp_labels)
        for tp, plog in sorted(broker.logs.all_logs(),
                                key=lambda item: (item[0].topic, item[0].partition)):
            if plog.closed:
                continue
            labels = [tp.topic, str(tp.partition)]
            end.add_metric(labels, plog.log_end_offset)
            start.add_metric(labels, plog.log_start_offset)
            size.add_metric(labels, plog.size_in_bytes())
        yield end
        yield start
        yield size

        yield GaugeMetricFamily(
            "kafka_server_replicamanager_underreplicatedpartitions",
            "Partitions with fewer in-sync replicas than replicas (always 0: one node).",
            value=0)
        waiters = GaugeMetricFamily(
            "kafka_server_delayedoperationpurgatory_purgatorysize",
            "Requests parked waiting (Fetch: long polls waiting for data).",
            labels=["delayedoperation"])
        waiters.add_metric(["Fetch"], broker.waiters.parked)
        yield waiters

        group_labels = ["consumergroup", "topic", "partition"]
        current = GaugeMetricFamily("kafka_consumergroup_current_offset",
                                    "The group's committed offset.", labels=group_labels)
        lag = GaugeMetricFamily(
            "kafka_consumergroup_lag",
            "High watermark minus the group's committed offset.", labels=group_labels)
        topics = broker.topics
        for group_id, group in sorted(broker.groups.coordinator.groups.items()):
            for (topic, partition), committed in sorted(group.offsets.items()):
                labels = [group_id, topic, str(partition)]
                current.add_metric(labels, committed.offset)
                glog = topics.log(topic, partition)
                if glog is not None and not glog.closed:
                    lag.add_metric(labels, max(0, glog.high_watermark - committed.offset))
        yield current
        yield lag


# -- the HTTP endpoint ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricsListener:
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, text: str) -> MetricsListener:
        """`http://host:port/path` (path defaults to /metrics); ValueError otherwise."""
        parts = urlsplit(text.strip())
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"metrics.listener {text!r} is not of the form "
                             "http://host:port/path")
        port = parts.port if parts.port is not None else 9644
        return cls(parts.hostname, port, parts.path or "/metrics")


def _response(status: str, body: bytes, content_type: str, head: bool = False) -> bytes:
    header = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
              f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("ascii")
    return header if head else header + body


async def _serve_http(metrics: BrokerMetrics, path: str, stream: trio.abc.Stream) -> None:
    try:
        head = b""
        with trio.move_on_after(10):
            while b"\r\n\r\n" not in head and len(head) < MAX_REQUEST_HEAD:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                head += chunk
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(request_line) < 2 or b"\r\n\r\n" not in head:
            response = _response("400 Bad Request", b"bad request\n", "text/plain")
        else:
            method, target = request_line[0], request_line[1]
            target_path = urlsplit(target).path
            if target_path != path:
                response = _response("404 Not Found", b"not found\n", "text/plain")
            elif method not in ("GET", "HEAD"):
                response = _response("405 Method Not Allowed", b"method not allowed\n",
                                     "text/plain")
            else:
                response = _response("200 OK", metrics.render(),
                                     prometheus_client.CONTENT_TYPE_LATEST, method == "HEAD")
        await stream.send_all(response)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(stream)


async def serve_metrics(metrics: BrokerMetrics, listener: MetricsListener,
                        *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
                        ) -> None:
    """Serve the metrics endpoint until cancelled; `task_status.started` gets the port."""

    async def handler(stream: trio.SocketStream) -> None:
        await _serve_http(metrics, listener.path, stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_tcp, handler, listener.port, host=listener.host or None))
        port = listeners[0].socket.getsockname()[1]
        log.info("metrics listening url=http://%s:%d%s", listener.host, port, listener.path)
        task_status.started(port)
