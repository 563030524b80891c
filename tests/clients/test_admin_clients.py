"""Topic administration and cluster description through real admin clients over a real
socket: kafka-python's KafkaAdminClient, confluent-kafka's AdminClient (librdkafka) and
aiokafka's AIOKafkaAdminClient; auto-creation through producers that name unknown topics.

Wire-level coverage of every version and error is in tests/broker/test_topics.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from broker.metadata import topic_id_to_base64
from tests.clients.conftest import in_asyncio, in_thread
from tests.conftest import RunningBroker

pytestmark = pytest.mark.timeout(120)


def partitions_of(running: RunningBroker, name: str) -> int | None:
    topic = running.broker.topics.get(name)
    return None if topic is None else topic.partitions


# -- kafka-python ---------------------------------------------------------------------------


def kafka_python_admin_session(bootstrap: str, **extra: Any) -> dict[str, Any]:
    from kafka import KafkaAdminClient
    from kafka.admin import NewPartitions, NewTopic
    from kafka.errors import (
        InvalidPartitionsError,
        InvalidReplicationFactorError,
        TopicAlreadyExistsError,
        UnknownTopicOrPartitionError,
    )

    seen: dict[str, Any] = {}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000, **extra)
    try:
        admin.create_topics([NewTopic("kp", 3, 1, topic_configs={"retention.ms": "60000"})])
        admin.create_topics([NewTopic("kp-check", 2, 1)], validate_only=True)
        seen["topics"] = sorted(admin.list_topics())
        seen["described"] = admin.describe_topics(["kp"])
        seen["cluster"] = admin.describe_cluster()
        errors = []
        for bad, expected in ((NewTopic("kp", 1, 1), TopicAlreadyExistsError),
                              (NewTopic("kp-rf", 1, 3), InvalidReplicationFactorError)):
            try:
                admin.create_topics([bad])
            except expected as exc:
                errors.append(type(exc).__name__)
        admin.create_partitions({"kp": NewPartitions(5)})
        try:
            admin.create_partitions({"kp": NewPartitions(2)})
        except InvalidPartitionsError as exc:
            errors.append(type(exc).__name__)
        seen["partitions_after_grow"] = len(admin.describe_topics(["kp"])[0]["partitions"])
        admin.delete_topics(["kp"])
        try:
            admin.delete_topics(["kp"])
        except UnknownTopicOrPartitionError as exc:
            errors.append(type(exc).__name__)
        seen["errors"] = errors
        seen["topics_after_delete"] = sorted(admin.list_topics())
    finally:
        admin.close()
    return seen


#: kafka-python picks each API's version from `api_version`: its newest (Metadata v13,
#: CreateTopics v7, DeleteTopics v6, CreatePartitions v3, DescribeCluster v2) and, capped at
#: Kafka 2.1's, older ones.
@pytest.mark.parametrize("api_version", [None, (2, 1)])
async def test_kafka_python_admin(broker: RunningBroker, api_version: Any) -> None:
    extra = {} if api_version is None else {"api_version": api_version}
    seen = await in_thread(kafka_python_admin_session, broker.bootstrap, **extra)
    b = broker.broker
    assert seen["topics"] == ["kp"]  # validate_only created nothing
    [described] = seen["described"]
    assert (described["name"], described["error_code"], described["is_internal"]) == (
        "kp", 0, False)
    assert sorted((p["partition_index"], p["leader_id"], p["leader_epoch"], p["replica_nodes"],
                   p["isr_nodes"]) for p in described["partitions"]) == [
        (i, 1, 0, [1], [1]) for i in range(3)]
    if api_version is None:  # Metadata v8+
        assert described["authorized_operations"] == [
            "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS",
            "ALTER_CONFIGS"]
    cluster = seen["cluster"]
    assert (cluster["cluster_id"], cluster["controller_id"]) == (b.cluster_id, b.node_id)
    assert [(n["broker_id"], n["host"], n["port"]) for n in cluster["brokers"]] == [
        (b.node_id, "127.0.0.1", broker.port)]
    assert seen["errors"] == ["TopicAlreadyExistsError", "InvalidReplicationFactorError",
                              "InvalidPartitionsError", "UnknownTopicOrPartitionError"]
    assert seen["partitions_after_grow"] == 5
    assert seen["topics_after_delete"] == []
    assert len(b.topics) == 0


def kafka_python_auto_create(bootstrap: str) -> set[int]:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, max_block_ms=30000)
    try:
        # The first Metadata answer is UNKNOWN_TOPIC_OR_PARTITION (as from KRaft Kafka); the
        # producer asks again and finds the topic the broker created.
        return producer.partitions_for("auto-kp")
    finally:
        producer.close(10)


@pytest.mark.parametrize("broker_config", [{"num.partitions": "3"}], indirect=True)
async def test_kafka_python_producer_auto_creates_topic(broker: RunningBroker) -> None:
    assert await in_thread(kafka_python_auto_create, broker.bootstrap) == {0, 1, 2}
    assert partitions_of(broker, "auto-kp") == 3


@pytest.fixture
def broker_config(tmp_path: Any, request: Any) -> dict[str, Any]:
    """tests/conftest.py's config, plus what a test passes with `indirect=True`."""
    extra = getattr(request, "param", {})
    return {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(tmp_path / "data"), **extra}


# -- confluent-kafka ------------------------------------------------------------------------


def confluent_admin_session(bootstrap: str) -> dict[str, Any]:
    from confluent_kafka import KafkaException, TopicCollection
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

    seen: dict[str, Any] = {}
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def outcome(futures: dict[str, Any]) -> dict[str, str]:
        out = {}
        for name, future in futures.items():
            try:
                future.result(timeout=30)
                out[name] = "ok"
            except KafkaException as exc:
                out[name] = exc.args[0].name()
        return out

    seen["validate"] = outcome(admin.create_topics(
        [NewTopic("cf-check", 2, 1)], validate_only=True, operation_timeout=30))
    seen["after_validate"] = sorted(admin.list_topics(timeout=30).topics)
    seen["create"] = outcome(admin.create_topics([
        NewTopic("cf", 3, 1, config={"cleanup.policy": "compact"}),
        NewTopic("cf-rf", 1, 3),
        NewTopic("cf-bad", 1, 1, config={"retention.ms": "soon"}),
        NewTopic("bad/name", 1, 1)], operation_timeout=30))
    metadata = admin.list_topics(timeout=30)
    seen["brokers"] = [(b.id, b.host, b.port) for b in metadata.brokers.values()]
    seen["cluster_id"], seen["controller_id"] = metadata.cluster_id, metadata.controller_id
    seen["cf_partitions"] = sorted(
        (p.id, p.leader, p.replicas, p.isrs) for p in metadata.topics["cf"].partitions.values())
    cluster = admin.describe_cluster(include_authorized_operations=True).result(timeout=30)
    seen["cluster"] = (cluster.cluster_id, cluster.controller.id,
                       [(n.id, n.host, n.port) for n in cluster.nodes],
                       sorted(op.name for op in cluster.authorized_operations))
    [described] = admin.describe_topics(TopicCollection(["cf"])).values()
    topic = described.result(timeout=30)
    seen["described"] = (topic.name, str(topic.topic_id), topic.is_internal,
                         [(p.id, p.leader.id, [r.id for r in p.replicas]) for p in
                          topic.partitions])
    seen["grow"] = outcome(admin.create_partitions(
        [NewPartitions("cf", 5), NewPartitions("cf-missing", 2)], operation_timeout=30))
    seen["shrink"] = outcome(admin.create_partitions(
        [NewPartitions("cf", 4)], validate_only=True, operation_timeout=30))
    seen["delete"] = outcome(admin.delete_topics(["cf", "cf-missing"], operation_timeout=30))
    seen["after_delete"] = sorted(admin.list_topics(timeout=30).topics)
    return seen


async def test_confluent_admin(broker: RunningBroker) -> None:
    b = broker.broker
    seen = await in_thread(confluent_admin_session, broker.bootstrap)
    assert seen["validate"] == {"cf-check": "ok"}
    assert seen["after_validate"] == []
    assert seen["create"] == {"cf": "ok", "cf-rf": "INVALID_REPLICATION_FACTOR",
                              "cf-bad": "INVALID_CONFIG", "bad/name": "TOPIC_EXCEPTION"}
    assert seen["brokers"] == [(b.node_id, "127.0.0.1", broker.port)]
    assert (seen["cluster_id"], seen["controller_id"]) == (b.cluster_id, b.node_id)
    assert seen["cf_partitions"] == [(i, 1, [1], [1]) for i in range(3)]
    assert seen["cluster"] == (b.cluster_id, b.node_id, [(1, "127.0.0.1", broker.port)], [
        "ALTER", "ALTER_CONFIGS", "CLUSTER_ACTION", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS",
        "IDEMPOTENT_WRITE"])
    topic = b.topics.get("cf")
    assert topic is None  # deleted at the end
    name, topic_id, internal, partitions = seen["described"]
    assert (name, internal) == ("cf", False)
    assert topic_id != "AAAAAAAAAAAAAAAAAAAAAA"
    assert partitions == [(i, 1, [1]) for i in range(3)]
    assert seen["grow"] == {"cf": "ok", "cf-missing": "UNKNOWN_TOPIC_OR_PART"}
    assert seen["shrink"] == {"cf": "INVALID_PARTITIONS"}
    assert seen["delete"] == {"cf": "ok", "cf-missing": "UNKNOWN_TOPIC_OR_PART"}
    assert seen["after_delete"] == []


def confluent_produce_to_new_topic(bootstrap: str) -> list[tuple[str, int, int]]:
    from confluent_kafka import Producer

    delivered: list[tuple[str, int, int]] = []
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    producer.produce("auto-cf", b"value", callback=lambda err, msg: delivered.append(
        (str(err), msg.partition(), msg.offset())))
    producer.flush(30)
    return delivered


async def test_confluent_producer_auto_creates_topic(broker: RunningBroker) -> None:
    assert await in_thread(confluent_produce_to_new_topic, broker.bootstrap) == [
        ("None", 0, 0)]
    assert partitions_of(broker, "auto-cf") == 1


# -- aiokafka -------------------------------------------------------------------------------


async def aiokafka_admin_session(bootstrap: str) -> dict[str, Any]:
    from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic

    seen: dict[str, Any] = {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        created = await admin.create_topics([NewTopic("ak", 2, 1), NewTopic("ak", 1, 1),
                                             NewTopic("ak-rf", 1, 3)])
        seen["create"] = sorted((t[0], t[1]) for t in created.topic_errors)
        seen["topics"] = sorted(await admin.list_topics())
        seen["described"] = await admin.describe_topics(["ak"])
        seen["cluster"] = await admin.describe_cluster()
        grown = await admin.create_partitions({"ak": NewPartitions(4)})
        seen["grow"] = [(t[0], t[1]) for t in grown.topic_errors]
        deleted = await admin.delete_topics(["ak", "nope"])
        seen["delete"] = sorted((t[0], t[1]) for t in deleted.topic_error_codes)
        seen["after_delete"] = sorted(await admin.list_topics())
    finally:
        await admin.close()
    return seen


async def test_aiokafka_admin(broker: RunningBroker) -> None:
    b = broker.broker
    seen = await in_asyncio(aiokafka_admin_session, broker.bootstrap)
    # "ak" twice in one request: INVALID_REQUEST (42) for the name, as Kafka answers.
    assert seen["create"] == [("ak", 42), ("ak-rf", 38)]
    assert seen["topics"] == []
    # aiokafka describes topics with a Metadata request that allows auto-creation: like
    # Kafka, the broker answers UNKNOWN_TOPIC_OR_PARTITION and creates the topic.
    [described] = seen["described"]
    assert (described["topic"], described["error_code"]) == ("ak", 3)
    assert seen["grow"] == [("ak", 0)]
    assert seen["delete"] == [("ak", 0), ("nope", 3)]
    assert seen["after_delete"] == []
    assert seen["cluster"]["cluster_id"] == b.cluster_id
    assert seen["cluster"]["controller_id"] == b.node_id
    assert [(n["node_id"], n["host"], n["port"]) for n in seen["cluster"]["brokers"]] == [
        (b.node_id, "127.0.0.1", broker.port)]


async def aiokafka_admin_create_describe(bootstrap: str) -> dict[str, Any]:
    from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("ak", 2, 1, topic_configs={"retention.ms": "5000"})])
        await admin.create_partitions({"ak": NewPartitions(4)})
        return {"described": await admin.describe_topics(["ak"]),
                "topics": sorted(await admin.list_topics())}
    finally:
        await admin.close()


async def test_aiokafka_admin_create_and_describe(broker: RunningBroker) -> None:
    seen = await in_asyncio(aiokafka_admin_create_describe, broker.bootstrap)
    assert seen["topics"] == ["ak"]
    [described] = seen["described"]
    assert (described["topic"], described["error_code"]) == ("ak", 0)
    assert sorted(p["partition"] for p in described["partitions"]) == [0, 1, 2, 3]
    assert broker.broker.topics.log_config("ak").retention_ms == 5000


# -- Apache Kafka's Java admin client (kafka-topics) -----------------------------------------

KAFKA_LIB = Path(__file__).resolve().parents[2] / "compat" / "apache-kafka" / "lib"


def _fetch_kafka_jars() -> None:
    """Kafka's jars from Maven Central, once (compat/apache-kafka/fetch.sh)."""
    subprocess.run(["bash", str(KAFKA_LIB.parent / "fetch.sh")], check=True)


async def kafka_topics(bootstrap: str, *args: str) -> tuple[int, str]:
    """Apache Kafka 4.4's `kafka-topics` (TopicCommand, the Java admin client)."""
    with trio.fail_after(60):
        done = await trio.run_process(
            ["java", "-cp", f"{KAFKA_LIB}/*", "org.apache.kafka.tools.TopicCommand",
             "--bootstrap-server", bootstrap, *args],
            capture_stdout=True, capture_stderr=True, check=False)
    return done.returncode, (done.stdout + done.stderr).decode()


@pytest.mark.skipif(shutil.which("java") is None or shutil.which("mvn") is None,
                    reason="Kafka's Java tools need a JDK, and Maven to fetch their jars")
async def test_java_admin_kafka_topics(broker: RunningBroker) -> None:
    """The Java admin client describes topics with DescribeTopicPartitions (KIP-966);
    a small partition limit per response makes it follow the cursor."""
    await trio.to_thread.run_sync(_fetch_kafka_jars)
    code, out = await kafka_topics(broker.bootstrap, "--create", "--topic", "ja",
                                   "--partitions", "5")
    assert (code, out.strip().splitlines()[-1]) == (0, "Created topic ja.")
    broker.broker.topics.create("jb", 2)
    code, out = await kafka_topics(broker.bootstrap, "--describe",
                                   "--partition-size-limit-per-response", "2")
    assert code == 0, out
    rows = sorted(tuple(line.split("\t")[1:5]) for line in out.splitlines()
                  if line.startswith("\tTopic:"))
    assert rows == sorted(
        (f"Topic: {t}", f"Partition: {p}", "Leader: 1", "Replicas: 1")
        for t, n in (("ja", 5), ("jb", 2)) for p in range(n))
    topic_id = broker.broker.topics.get("ja").topic_id  # type: ignore[union-attr]
    assert f"Topic: ja\tTopicId: {topic_id_to_base64(topic_id)}\tPartitionCount: 5" in out
    code, out = await kafka_topics(broker.bootstrap, "--alter", "--topic", "ja",
                                   "--partitions", "7")
    assert code == 0, out
    assert partitions_of(broker, "ja") == 7
    code, out = await kafka_topics(broker.bootstrap, "--delete", "--topic", "ja")
    assert code == 0, out
    assert [t.name for t in broker.broker.topics] == ["jb"]
