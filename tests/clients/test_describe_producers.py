"""DescribeProducers (key 61) with real clients: kafka-python's admin client and Apache
Kafka's own `kafka-transactions.sh describe-producers` (`TransactionsCommand`, Java).

Producers are written through the storage API: an idempotent producer, a transactional
one with an open transaction, and one whose transaction a marker (coordinator epoch 7)
closed. The error cases go over the wire with exact requests.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

from protocol.errors import ErrorCode
from protocol.messages.describe_producers_request import DescribeProducersRequest, TopicRequest
from protocol.records import build_batch
from tests.conftest import RunningBroker
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(120)

T0 = 1_700_000_000_000
KAFKA_DIR = Path(__file__).resolve().parents[2] / "compat" / "apache-kafka"
#: (producer id, epoch, last sequence, last timestamp, coordinator epoch, txn start offset)
EXPECTED = [
    (1000, 2, 4, T0 + 1, -1, -1),   # idempotent, sequences 0-4
    (1001, 0, 1, T0 + 2, -1, 5),    # transactional, open at offset 5
    (1002, 1, 0, T0 + 4, 7, -1),    # transactional, closed by a COMMIT marker
]


def seed(running: RunningBroker) -> None:
    running.broker.topics.create("t", 2)
    log = running.broker.topics.log("t", 0)
    assert log is not None
    log.append(build_batch([(b"k", b"v", [], T0 + 1)] * 5, producer_id=1000, producer_epoch=2,
                           base_sequence=0))
    log.append(build_batch([(b"k", b"v", [], T0 + 2)] * 2, producer_id=1001, producer_epoch=0,
                           base_sequence=0, is_transactional=True))
    log.append(build_batch([(b"k", b"v", [], T0 + 3)], producer_id=1002, producer_epoch=1,
                           base_sequence=0, is_transactional=True))
    log.append_marker(1002, 1, 7, commit=True, timestamp_ms=T0 + 4)


def kafka_python_describe(bootstrap: str) -> Any:
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        return admin.describe_producers([TopicPartition("t", 0), TopicPartition("t", 1)])
    finally:
        admin.close()


async def test_kafka_python_describe_producers(broker: RunningBroker) -> None:
    seed(broker)
    result = await trio.to_thread.run_sync(kafka_python_describe, broker.bootstrap)
    by_partition = {tp.partition: state.active_producers for tp, state in result.items()}
    assert by_partition[1] == []
    assert sorted(tuple(p) for p in by_partition[0]) == EXPECTED


async def test_describe_producers_errors(broker: RunningBroker, wire: WireClient) -> None:
    seed(broker)
    response = await wire.request(61, 0, DescribeProducersRequest(topics=[
        TopicRequest(name="t", partition_indexes=[0, 5]),
        TopicRequest(name="nope", partition_indexes=[0]),
        TopicRequest(name="bad/name", partition_indexes=[1, 2]),
    ]))
    rows = [(t.name, p.partition_index, p.error_code, p.error_message, len(p.active_producers))
            for t in response.topics for p in t.partitions]
    bad = ("Topic name is invalid: 'bad/name' contains one or more characters other than "
           "ASCII alphanumerics, '.', '_' and '-'")
    assert rows == [
        ("t", 0, ErrorCode.NONE, None, 3),
        ("t", 5, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None, 0),
        ("nope", 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None, 0),
        ("bad/name", 1, ErrorCode.INVALID_TOPIC_EXCEPTION, bad, 0),
        ("bad/name", 2, ErrorCode.INVALID_TOPIC_EXCEPTION, bad, 0),
    ]


@pytest.mark.skipif(shutil.which("java") is None or shutil.which("mvn") is None,
                    reason="Kafka's Java tools need a JDK, and Maven to fetch their jars")
async def test_kafka_transactions_tool_describe_producers(broker: RunningBroker) -> None:
    # Kafka 4.4's jars from Maven Central, once (idempotent).
    await trio.run_process(["bash", str(KAFKA_DIR / "fetch.sh")])
    seed(broker)
    classpath = os.path.join(KAFKA_DIR, "lib", "*")
    with trio.fail_after(90):
        done = await trio.run_process(
            ["java", "-cp", classpath, "org.apache.kafka.tools.TransactionsCommand",
             "--bootstrap-server", broker.bootstrap, "describe-producers", "--topic", "t",
             "--partition", "0"],
            capture_stdout=True, capture_stderr=True, check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = [line.split() for line in out.splitlines() if line.strip()]
    header, rows = lines[0], lines[1:]
    assert header == ["ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch",
                      "LastSequence", "LastTimestamp", "CurrentTransactionStartOffset"]

    def num(text: str) -> int:  # the tool prints an absent epoch/offset (-1) as None
        return -1 if text == "None" else int(text)

    parsed = sorted((num(r[0]), num(r[1]), num(r[3]), num(r[4]), num(r[2]), num(r[5]))
                    for r in rows)
    assert parsed == EXPECTED

