"""The Prometheus endpoint (`broker.metrics`): scraped over HTTP after real client traffic.

Values are checked against what was sent: bytes in equals the bytes the log holds (one
segment, nothing duplicated), messages in the records produced, lag the high watermark
minus the offset the consumer committed.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

from broker.metrics import BrokerMetrics, MetricsListener
from protocol.errors import ErrorCode
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.records import build_batch

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def broker_config(tmp_path) -> dict[str, Any]:
    return {
        "listeners": "PLAINTEXT://127.0.0.1:0",
        "log.dirs": str(tmp_path / "data"),
        "metrics.listener": "http://127.0.0.1:0/metrics",
        "group.initial.rebalance.delay.ms": "0",
    }


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def scrape_blocking(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return str(response.read().decode())


async def scrape(running: Any) -> Samples:
    port = running.broker.metrics_port
    assert port is not None
    return parse(await trio.to_thread.run_sync(scrape_blocking, port))


async def raw_http(port: int, request: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


def produce_and_consume(bootstrap: str, topic: str, count: int, commit_at: int) -> int:
    """Produce `count` records with confluent-kafka, read them in a group, commit
    `commit_at`; the bytes of the values sent."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    sent = 0
    for i in range(count):
        payload = f"value-{i}".encode() * 10
        producer.produce(topic, key=b"k%d" % i, value=payload, partition=0)
        producer.poll(0)
        sent += len(payload)
    assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "metrics-g",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        got = 0
        for _ in range(600):
            if got >= count:
                break
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            got += 1
        assert got == count
        consumer.commit(offsets=[TopicPartition(topic, 0, commit_at)], asynchronous=False)
    finally:
        consumer.close()
    return sent


async def test_metrics_after_real_produce_and_consume(broker):
    topic = "metered"
    broker.broker.topics.create(topic, 1)
    await trio.to_thread.run_sync(produce_and_consume, broker.bootstrap, topic, 20, 15)

    samples = await scrape(broker)
    plog = broker.broker.topics.log(topic, 0)
    log_size = plog.size_in_bytes()
    assert log_size > 0
    assert value(samples, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == 20
    assert value(samples, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic) \
        == log_size
    # The consumer read every batch at least once.
    bytes_out = value(samples, "kafka_server_brokertopicmetrics_bytesout_total", topic=topic)
    assert bytes_out is not None and bytes_out >= log_size

    tp = {"topic": topic, "partition": "0"}
    assert value(samples, "kafka_log_log_logendoffset", **tp) == 20
    assert value(samples, "kafka_log_log_logstartoffset", **tp) == 0
    assert value(samples, "kafka_log_log_size", **tp) == log_size

    group = {"consumergroup": "metrics-g", **tp}
    assert value(samples, "kafka_consumergroup_current_offset", **group) == 15
    assert value(samples, "kafka_consumergroup_lag", **group) == 5

    produces = sum(v for (name, labels), v in samples.items()
                   if name == "kafka_network_requestmetrics_requests_total"
                   and ("request", "Produce") in labels)
    assert produces >= 1
    for api in ("Produce", "Fetch", "Metadata", "ApiVersions", "JoinGroup", "OffsetCommit"):
        count = value(samples, "kafka_network_requestmetrics_totaltimems_count", request=api)
        assert count is not None and count >= 1, api
    assert value(samples, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    # Exact values of these two are checked in test_errors_waiters_and_connections (the
    # consumer's last long poll may still be parked here).
    assert value(samples, "kafka_server_delayedoperationpurgatory_purgatorysize",
                 delayedoperation="Fetch") is not None
    assert value(samples, "kafka_server_socket_server_metrics_connection_count",
                 listener="PLAINTEXT") is not None

    # Lag follows the log: five more records, lag 10.
    plog.append(build_batch([(b"k", b"v")] * 5))
    plog.update_high_watermark(plog.log_end_offset)
    samples = await scrape(broker)
    assert value(samples, "kafka_consumergroup_lag", **group) == 10
    assert value(samples, "kafka_log_log_logendoffset", **tp) == 25


async def test_errors_waiters_and_connections(broker, wire):
    topic_id = broker.broker.topics.create("errs", 1).topic_id
    del topic_id
    port = broker.broker.metrics_port

    # A produce to a partition that does not exist, and a fetch past the log end.
    produce = ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[TopicProduceData(
        name="errs", partition_data=[PartitionProduceData(
            index=7, records=build_batch([(b"k", b"v")]))])])
    response = await wire.request(0, 9, produce)
    assert response.responses[0].partition_responses[0].error_code \
        == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    fetch = FetchRequest(max_wait_ms=0, topics=[FetchTopic(topic="errs", partitions=[
        FetchPartition(partition=0, fetch_offset=100, partition_max_bytes=1 << 20)])])
    response = await wire.request(1, 12, fetch)
    assert response.responses[0].partitions[0].error_code == ErrorCode.OFFSET_OUT_OF_RANGE

    samples = await scrape(broker)
    assert value(samples, "kafka_network_requestmetrics_errors_total", request="Produce",
                 error="UNKNOWN_TOPIC_OR_PARTITION") == 1
    assert value(samples, "kafka_network_requestmetrics_errors_total", request="Fetch",
                 error="OFFSET_OUT_OF_RANGE") == 1
    assert value(samples, "kafka_server_brokertopicmetrics_failedproducerequests_total",
                 topic="errs") == 1
    assert value(samples, "kafka_server_brokertopicmetrics_failedfetchrequests_total",
                 topic="errs") == 1
    assert value(samples, "kafka_network_requestmetrics_requests_total",
                 request="Produce", version="9") == 1
    assert value(samples, "kafka_network_requestmetrics_requests_total",
                 request="Fetch", version="12") == 1
    assert value(samples, "kafka_server_socket_server_metrics_connection_count",
                 listener="PLAINTEXT") == 1

    # A long poll parks: the purgatory gauge shows it until data arrives.
    long_poll = FetchRequest(max_wait_ms=60_000, min_bytes=1, topics=[FetchTopic(
        topic="errs", partitions=[FetchPartition(partition=0, fetch_offset=0,
                                                 partition_max_bytes=1 << 20)])])
    async with trio.open_nursery() as nursery:
        result: list[Any] = []

        async def poll() -> None:
            result.append(await wire.request(1, 12, long_poll))

        nursery.start_soon(poll)
        await trio.testing.wait_all_tasks_blocked()
        assert broker.broker.waiters.parked == 1
        text = (await raw_http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")).decode()
        assert value(parse(text.split("\r\n\r\n", 1)[1]),
                     "kafka_server_delayedoperationpurgatory_purgatorysize",
                     delayedoperation="Fetch") == 1
        broker.broker.topics.log("errs", 0).append(build_batch([(b"k", b"v")]))
        broker.broker.waiters.notify("errs", 0)
    assert result[0].responses[0].partitions[0].error_code == ErrorCode.NONE


async def test_http_paths_and_methods(broker):
    port = broker.broker.metrics_port
    assert (await raw_http(port, b"GET /nope HTTP/1.1\r\n\r\n")).startswith(
        b"HTTP/1.1 404 ")
    assert (await raw_http(port, b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(
        b"HTTP/1.1 405 ")
    assert (await raw_http(port, b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
    head = await raw_http(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
    with pytest.raises(urllib.error.HTTPError):
        await trio.to_thread.run_sync(scrape_blocking, port, "/other")


async def test_off_by_default(tmp_path, nursery):
    from broker.config import BrokerConfig
    from broker.server import Broker

    instance = Broker(BrokerConfig({"listeners": "PLAINTEXT://127.0.0.1:0",
                                    "log.dirs": str(tmp_path / "off")}))
    await nursery.start(instance.serve)
    assert instance.metrics_port is None
    assert b"kafka_server_replicamanager_underreplicatedpartitions 0.0" \
        in instance.metrics.render()


async def test_registries_are_per_broker(broker):
    other = BrokerMetrics(broker.broker)
    other.produced("t", 10, 2)
    assert other.registry is not broker.broker.metrics.registry
    assert b'bytesin_total{topic="t"} 10.0' in other.render()
    assert b'topic="t"' not in broker.broker.metrics.render()


@pytest.mark.parametrize(("text", "expected"), [
    ("http://127.0.0.1:9644/metrics", MetricsListener("127.0.0.1", 9644, "/metrics")),
    ("http://0.0.0.0:9000", MetricsListener("0.0.0.0", 9000, "/metrics")),
    ("http://localhost/m", MetricsListener("localhost", 9644, "/m")),
])
def test_listener_parse(text, expected):
    assert MetricsListener.parse(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1:9644", "https://h:1/metrics", "http://:1/x"])
def test_listener_parse_rejects(text):
    with pytest.raises(ValueError):
        MetricsListener.parse(text)
