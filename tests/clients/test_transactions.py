"""Transactions end to end with real clients over real sockets.

confluent-kafka (librdkafka) commits and aborts transactions (read_committed consumers see
exactly the committed records, read_uncommitted ones everything, no control record reaches
the app), runs a consume-transform-produce app that is SIGKILLed mid-stream and restarted
(every input transformed exactly once in the read_committed output; an instance started
after the last commit finishes at once), and is fenced by a second producer with the same
transactional.id. kafka-python and aiokafka transactional producers commit and abort. A
broker restart with an open transaction aborts it once it times out, and the log stays
consistent for read_committed consumers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from broker.config import BrokerConfig
from broker.server import Broker
from broker.transactions.state import TransactionState
from protocol.records import build_batch, iter_batches
from tests.clients.conftest import in_asyncio, in_thread

TIMEOUT_S = 40
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker_config(tmp_path) -> dict[str, Any]:
    return {
        "listeners": "PLAINTEXT://127.0.0.1:0",
        "log.dirs": str(tmp_path / "data"),
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.num.partitions": "3",
        "group.initial.rebalance.delay.ms": "0",
    }


def consume_all(bootstrap: str, topic: str, isolation: str, expected: int,
                partitions: int = 1) -> list[bytes]:
    """Every value in `topic` as a consumer with `isolation` sees it: read until `expected`
    values came, then until the end offsets (as that consumer sees them) are reached."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{isolation}",
                         "enable.auto.commit": False, "isolation.level": isolation})
    tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
    consumer.assign(tps)
    values: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            for m in consumer.consume(100, timeout=0.3):
                assert m.error() is None, m.error()
                values.append(m.value())
            if len(values) < expected:
                continue
            positions = consumer.position([TopicPartition(topic, p) for p in range(partitions)])
            ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10,
                                                   cached=False)[1]
                    for p in range(partitions)]
            if all(pos.offset >= end for pos, end in zip(positions, ends, strict=True)):
                return values
        raise AssertionError(f"timed out reading {topic} ({isolation}): {len(values)} values")
    finally:
        consumer.close()


def marker_count(broker: Broker, topic: str, partition: int = 0) -> int:
    plog = broker.topics.log(topic, partition)
    data = plog.read_bytes(plog.log_start_offset, 1 << 24, max_offset=plog.high_watermark)
    return sum(1 for _, h in iter_batches(data) if h.is_control)


# ------------------------------------------------------------------------ confluent-kafka


def commit_and_abort(bootstrap: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "ck-1"})
    producer.init_transactions(TIMEOUT_S)
    producer.begin_transaction()
    for i in range(3):
        producer.produce("txn", f"committed-{i}".encode(), partition=i % 2)
    producer.commit_transaction(TIMEOUT_S)
    producer.begin_transaction()
    for i in range(2):
        producer.produce("txn", f"aborted-{i}".encode(), partition=i % 2)
    producer.flush(TIMEOUT_S)
    producer.abort_transaction(TIMEOUT_S)
    producer.begin_transaction()
    producer.produce("txn", b"committed-3", partition=1)
    producer.commit_transaction(TIMEOUT_S)


async def test_confluent_commit_and_abort(broker, make_topic):
    make_topic("txn", 2)
    await in_thread(commit_and_abort, broker.bootstrap)
    committed = await in_thread(consume_all, broker.bootstrap, "txn", "read_committed", 4, 2)
    assert sorted(committed) == [b"committed-0", b"committed-1", b"committed-2", b"committed-3"]
    everything = await in_thread(consume_all, broker.bootstrap, "txn", "read_uncommitted", 6, 2)
    assert sorted(everything) == sorted(committed + [b"aborted-0", b"aborted-1"])
    # Three transactions on partition 1, two on partition 0 (the last touched only 1).
    assert marker_count(broker.broker, "txn", 0) == 2
    assert marker_count(broker.broker, "txn", 1) == 3
    meta = broker.broker.transactions.coordinator.txns["ck-1"]
    assert meta.state is TransactionState.COMPLETE_COMMIT and meta.producer_epoch == 0


def fenced_zombie(bootstrap: str) -> tuple[Any, bool]:
    from confluent_kafka import KafkaException, Producer

    zombie = Producer({"bootstrap.servers": bootstrap, "transactional.id": "zombie"})
    zombie.init_transactions(TIMEOUT_S)
    zombie.begin_transaction()
    zombie.produce("fence", b"from-zombie")
    zombie.flush(TIMEOUT_S)
    successor = Producer({"bootstrap.servers": bootstrap, "transactional.id": "zombie"})
    successor.init_transactions(TIMEOUT_S)  # aborts the zombie's transaction, fences it
    successor.begin_transaction()
    successor.produce("fence", b"from-successor")
    successor.commit_transaction(TIMEOUT_S)
    try:
        zombie.produce("fence", b"zombie-again")
        zombie.commit_transaction(TIMEOUT_S)
    except KafkaException as exc:
        error = exc.args[0]
        return error.code(), error.fatal()
    raise AssertionError("the fenced producer committed")


async def test_confluent_zombie_is_fenced(broker, make_topic):
    from confluent_kafka import KafkaError

    make_topic("fence", 1)
    code, fatal = await in_thread(fenced_zombie, broker.bootstrap)
    assert fatal and code in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                              KafkaError.INVALID_PRODUCER_EPOCH)
    assert await in_thread(consume_all, broker.bootstrap, "fence", "read_committed", 1) == [
        b"from-successor"]
    meta = broker.broker.transactions.coordinator.txns["zombie"]
    assert meta.producer_epoch == 2  # fenced once by the abort, bumped once by the retry


# ------------------------------------------------------------- consume-transform-produce


def ctp_app(bootstrap: str) -> subprocess.Popen[bytes]:
    """Start `tests.clients.txn_app` (ctp-in -> ctp-out, group ctp, transactional id
    ctp-app). `TXN_APP_DEBUG` in the test's environment passes on (librdkafka debug
    contexts on the app's stderr)."""
    args = [sys.executable, "-m", "tests.clients.txn_app", bootstrap, "ctp-in", "ctp-out",
            "ctp", "ctp-app"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


async def finish(app: subprocess.Popen[bytes], timeout_s: float = 60) -> int:
    """The app's exit code; an app still running after `timeout_s` is killed and fails the
    test (rather than the worker thread waiting past the test's own timeout)."""
    try:
        return await in_thread(app.wait, timeout_s)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the app did not finish within {timeout_s} s") from None
    finally:
        if app.poll() is None:
            app.kill()
            await in_thread(app.wait)


def append_input(broker: Broker, count: int) -> None:
    plog = broker.topics.log("ctp-in", 0)
    for start in range(0, count, 50):
        end = min(start + 50, count)
        plog.append(build_batch([(None, f"in-{i}".encode()) for i in range(start, end)]))


def committed_offset(broker: Broker) -> int:
    om = broker.groups.coordinator.fetch_offsets("ctp", [("ctp-in", 0)])[("ctp-in", 0)]
    return -1 if om is None else om.offset


async def test_consume_transform_produce_survives_sigkills(broker, make_topic):
    make_topic("ctp-in", 1)
    make_topic("ctp-out", 1)
    count = 400
    append_input(broker.broker, count)

    def committed() -> int:
        return committed_offset(broker.broker)

    # Each instance is killed once it has committed more than 40 records (wherever it is
    # then: producing, committing, consuming).
    kills = 0
    with trio.fail_after(90):
        for _ in range(3):
            before = committed()
            app = ctp_app(broker.bootstrap)
            try:
                while committed() <= before + 40 and app.poll() is None:
                    await trio.sleep(0.02)
            finally:
                app.kill()
                await in_thread(app.wait)
            kills += app.returncode == -9
        # The third instance may have committed the last batch before its kill: the fourth
        # then starts at the end (test_consume_transform_produce_restarts_at_the_end) and
        # only initialises.
        last_start = committed()
        assert await finish(ctp_app(broker.bootstrap)) == 0
    assert kills == 3
    out = await in_thread(consume_all, broker.bootstrap, "ctp-out", "read_committed", count)
    assert sorted(out) == sorted(f"T:in-{i}".encode() for i in range(count))
    assert committed() == count
    describe = broker.broker.transactions.coordinator.describe("ctp-app")[1]
    assert describe is not None and describe.state is (
        TransactionState.COMPLETE_COMMIT if last_start < count else TransactionState.EMPTY)


async def test_consume_transform_produce_restarts_at_the_end(broker, make_topic):
    """An instance started after its predecessor committed the last input consumes nothing,
    so librdkafka has no position for it (OFFSET_INVALID): it must still see, from its
    committed offset (OffsetFetch with require_stable), that it is done, and exit. This was
    the SIGKILL test's intermittent hang: a third instance killed after its last commit left
    a fourth that never finished."""
    make_topic("ctp-in", 1)
    make_topic("ctp-out", 1)
    append_input(broker.broker, 30)
    assert await finish(ctp_app(broker.bootstrap)) == 0
    assert committed_offset(broker.broker) == 30
    assert await finish(ctp_app(broker.bootstrap)) == 0
    meta = broker.broker.transactions.coordinator.txns["ctp-app"]
    # The second instance initialised (epoch 1) and had nothing to transform.
    assert (meta.state, meta.producer_epoch) == (TransactionState.EMPTY, 1)
    assert committed_offset(broker.broker) == 30
    out = await in_thread(consume_all, broker.bootstrap, "ctp-out", "read_committed", 30)
    assert sorted(out) == sorted(f"T:in-{i}".encode() for i in range(30))


# --------------------------------------------------------------- kafka-python / aiokafka


def kafka_python_transactions(bootstrap: str) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp-1")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("kp", b"kp-committed")
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send("kp", b"kp-aborted")
    producer.flush()
    producer.abort_transaction()
    producer.close()


async def test_kafka_python_transactional_producer(broker, make_topic):
    make_topic("kp", 1)
    await in_thread(kafka_python_transactions, broker.bootstrap)
    assert await in_thread(consume_all, broker.bootstrap, "kp", "read_committed", 1) == [
        b"kp-committed"]
    assert sorted(await in_thread(consume_all, broker.bootstrap, "kp", "read_uncommitted",
                                  2)) == [b"kp-aborted", b"kp-committed"]
    assert marker_count(broker.broker, "kp") == 2


async def aiokafka_transactions(bootstrap: str) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="aio-1")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait("aio", b"aio-committed")
        await producer.begin_transaction()
        await producer.send_and_wait("aio", b"aio-aborted")
        await producer.abort_transaction()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer("aio", bootstrap_servers=bootstrap,
                                isolation_level="read_committed",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        got: list[bytes] = []
        async with asyncio_timeout(TIMEOUT_S):
            while not got:
                batches = await consumer.getmany(timeout_ms=500)
                got += [m.value for msgs in batches.values() for m in msgs]
            # Nothing else is visible: the aborted record and the markers are skipped.
            batches = await consumer.getmany(timeout_ms=300)
            got += [m.value for msgs in batches.values() for m in msgs]
        return got
    finally:
        await consumer.stop()


def asyncio_timeout(seconds: float) -> Any:
    import asyncio

    return asyncio.timeout(seconds)


async def test_aiokafka_transactional_producer(broker, make_topic):
    make_topic("aio", 1)
    assert await in_asyncio(aiokafka_transactions, broker.bootstrap) == [b"aio-committed"]
    assert marker_count(broker.broker, "aio") == 2


# ------------------------------------------------------------------------ broker restart


def open_transaction(bootstrap: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "restart-1",
                         "transaction.timeout.ms": 2000, "socket.timeout.ms": 2000})
    producer.init_transactions(TIMEOUT_S)
    producer.begin_transaction()
    producer.produce("rs", b"before-restart-committed")
    producer.commit_transaction(TIMEOUT_S)
    producer.begin_transaction()
    producer.produce("rs", b"left-open")
    producer.flush(TIMEOUT_S)
    # The process "dies" here: no commit, no abort.


async def test_open_transaction_is_aborted_after_a_restart(broker_config):
    config = {**broker_config,
              "transaction.abort.timed.out.transaction.cleanup.interval.ms": "100"}
    first = Broker(BrokerConfig(config))
    async with trio.open_nursery() as nursery:
        ports = await nursery.start(first.serve)
        first.topics.create("rs", 1)
        await in_thread(open_transaction, f"127.0.0.1:{ports[0]}")
        assert first.transactions.coordinator.txns["restart-1"].state is TransactionState.ONGOING
        nursery.cancel_scope.cancel()
    second = Broker(BrokerConfig(config))
    meta = second.transactions.coordinator.txns["restart-1"]
    assert meta.state is TransactionState.ONGOING and meta.partitions == {("rs", 0)}
    async with trio.open_nursery() as nursery:
        ports = await nursery.start(second.serve)
        with trio.fail_after(TIMEOUT_S):
            while meta.state is not TransactionState.COMPLETE_ABORT:
                await trio.sleep(0.05)
        bootstrap = f"127.0.0.1:{ports[0]}"
        assert await in_thread(consume_all, bootstrap, "rs", "read_committed", 1) == [
            b"before-restart-committed"]
        assert sorted(await in_thread(consume_all, bootstrap, "rs", "read_uncommitted", 2)) == [
            b"before-restart-committed", b"left-open"]
        assert marker_count(second, "rs") == 2
        nursery.cancel_scope.cancel()
