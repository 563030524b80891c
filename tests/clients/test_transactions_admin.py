"""DescribeTransactions and ListTransactions through Apache Kafka 4.4's Java admin client
(`kafka-transactions.sh`, `org.apache.kafka.tools.TransactionsCommand`), with an open
transaction of a confluent-kafka producer and a completed one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import trio

from tests.clients.conftest import in_thread

KAFKA_LIB = Path(__file__).resolve().parents[2] / "compat" / "apache-kafka" / "lib"
TIMEOUT_S = 40

pytestmark = pytest.mark.skipif(
    shutil.which("java") is None or shutil.which("mvn") is None,
    reason="Kafka's Java tools need a JDK, and Maven to fetch their jars")


async def kafka_transactions(bootstrap: str, *args: str) -> tuple[int, list[list[str]], str]:
    """(exit code, rows of the tab-separated table, stderr) of `kafka-transactions.sh`."""
    with trio.fail_after(60):
        done = await trio.run_process(
            ["java", "-cp", f"{KAFKA_LIB}/*", "org.apache.kafka.tools.TransactionsCommand",
             "--bootstrap-server", bootstrap, *args],
            capture_stdout=True, capture_stderr=True, check=False)
    rows = [[cell.strip() for cell in line.split("\t") if cell.strip()]
            for line in done.stdout.decode().splitlines() if line.strip()]
    return done.returncode, rows, done.stderr.decode()


def open_and_completed(bootstrap: str) -> object:
    from confluent_kafka import Producer

    done = Producer({"bootstrap.servers": bootstrap, "transactional.id": "done"})
    done.init_transactions(TIMEOUT_S)
    done.begin_transaction()
    done.produce("adm", b"x")
    done.commit_transaction(TIMEOUT_S)
    open_ = Producer({"bootstrap.servers": bootstrap, "transactional.id": "open"})
    open_.init_transactions(TIMEOUT_S)
    open_.begin_transaction()
    open_.produce("adm", b"y", partition=1)
    open_.flush(TIMEOUT_S)
    return open_


async def test_kafka_transactions_list_and_describe(broker, make_topic):
    await trio.to_thread.run_sync(
        lambda: subprocess.run(["bash", str(KAFKA_LIB.parent / "fetch.sh")], check=True))
    make_topic("adm", 2)
    producer = await in_thread(open_and_completed, broker.bootstrap)
    code, rows, err = await kafka_transactions(broker.bootstrap, "list")
    assert code == 0, err
    assert rows[0] == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]
    coordinator = broker.broker.transactions.coordinator
    assert sorted(rows[1:]) == [
        ["done", "1", str(coordinator.txns["done"].producer_id), "CompleteCommit"],
        ["open", "1", str(coordinator.txns["open"].producer_id), "Ongoing"]]
    code, rows, err = await kafka_transactions(broker.bootstrap, "describe",
                                               "--transactional-id", "open")
    assert code == 0, err
    described = dict(zip(rows[0], rows[1], strict=True))
    assert described["TransactionState"] == "Ongoing"
    assert described["TopicPartitions"] == "adm-1"
    assert described["ProducerEpoch"] == "0"
    code, _, err = await kafka_transactions(broker.bootstrap, "describe",
                                            "--transactional-id", "missing")
    assert code == 1 and "could not be found" in err
    del producer
