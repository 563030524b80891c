"""`odradek topics ...` against a running broker, cross-checked with confluent-kafka's
AdminClient and producer (librdkafka) over a real socket."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cli.conftest import cli
from tests.clients.conftest import in_thread
from tests.conftest import RunningBroker

pytestmark = pytest.mark.timeout(120)


def confluent_view(bootstrap: str, topic: str) -> dict[str, Any]:
    from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource

    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=30)
    if topic not in metadata.topics:
        return {"exists": False}
    resource = ConfigResource("topic", topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    return {"exists": True, "partitions": len(metadata.topics[topic].partitions),
            "overrides": {name: entry.value for name, entry in configs.items()
                          if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value}}


def confluent_produce(bootstrap: str, topic: str, partition: int, count: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(count):
        producer.produce(topic, value=f"v{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


async def test_topic_commands_seen_by_confluent_kafka(broker: RunningBroker) -> None:
    created = await cli(broker, "topics", "create", "orders", "--partitions", "3",
                        "--config", "retention.ms=60000")
    assert (created.exit_code, created.stdout) == (0, "Created topic orders.\n")
    assert await in_thread(confluent_view, broker.bootstrap, "orders") == {
        "exists": True, "partitions": 3, "overrides": {"retention.ms": "60000"}}

    again = await cli(broker, "topics", "create", "orders")
    assert again.exit_code == 1
    assert again.stderr.startswith("Error: TOPIC_ALREADY_EXISTS: Topic 'orders' already exists.")
    assert (await cli(broker, "topics", "create", "orders", "--if-not-exists")).exit_code == 0
    too_many = await cli(broker, "topics", "create", "rf", "--replication-factor", "3")
    assert too_many.exit_code == 1 and "INVALID_REPLICATION_FACTOR" in too_many.stderr

    await in_thread(confluent_produce, broker.bootstrap, "orders", 1, 2)
    listed = await cli(broker, "topics", "list")
    assert "orders" in listed.stdout.splitlines()
    described = await cli(broker, "topics", "describe", "orders")
    assert described.exit_code == 0, described.stderr
    header, columns, *rows = described.stdout.splitlines()
    assert header.split("\t")[0] == "Topic: orders"
    assert "PartitionCount: 3" in header and "Configs: retention.ms=60000" in header
    assert columns.split() == ["PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START-OFFSET",
                               "LOG-END-OFFSET"]
    assert [row.split() for row in rows] == [["0", "1", "1", "1", "0", "0"],
                                             ["1", "1", "1", "1", "0", "2"],
                                             ["2", "1", "1", "1", "0", "0"]]

    altered = await cli(broker, "topics", "alter", "orders", "--partitions", "5",
                        "--config", "cleanup.policy=compact", "--delete-config", "retention.ms")
    assert altered.exit_code == 0, altered.stderr
    assert await in_thread(confluent_view, broker.bootstrap, "orders") == {
        "exists": True, "partitions": 5, "overrides": {"cleanup.policy": "compact"}}
    shrink = await cli(broker, "topics", "alter", "orders", "--partitions", "2")
    assert shrink.exit_code == 1
    assert shrink.stderr.startswith("Error: INVALID_PARTITIONS: ")
    bad = await cli(broker, "topics", "alter", "orders", "--config", "retention.ms=soon")
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: INVALID_CONFIG: ")

    deleted = await cli(broker, "topics", "delete", "orders", "missing")
    assert deleted.exit_code == 1
    assert deleted.stdout == "Deleted topic orders.\n"
    assert "UNKNOWN_TOPIC_OR_PARTITION" in deleted.stderr
    assert await in_thread(confluent_view, broker.bootstrap, "orders") == {"exists": False}
    assert (await cli(broker, "topics", "delete", "missing", "--if-exists")).exit_code == 0


async def test_unknown_topic_and_unreachable_broker() -> None:
    down = await cli(None, "topics", "list", "--bootstrap-server", "127.0.0.1:1")
    assert down.exit_code == 1
    assert down.stderr.startswith("Error: cannot connect to 127.0.0.1:1")
    usage = await cli(None, "topics", "alter", "t", "--bootstrap-server", "127.0.0.1:1")
    assert usage.exit_code == 2 and "nothing to alter" in usage.stderr
