"""ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments, DescribeQuorum,
ListConfigResources and AlterReplicaLogDirs (with DescribeLogDirs) through real clients
over a real socket: kafka-python's KafkaAdminClient, and Apache Kafka 4.4's own tools
(kafka-leader-election, kafka-metadata-quorum, kafka-reassign-partitions, kafka-log-dirs,
kafka-client-metrics), which use the Java admin client.

Wire-level coverage of every version and error is in tests/broker/test_partition_admin.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.clients.conftest import in_thread
from tests.clients.test_admin_clients import KAFKA_LIB, _fetch_kafka_jars
from tests.conftest import RunningBroker

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def broker_config(tmp_path: Any) -> dict[str, Any]:
    return {"listeners": "PLAINTEXT://127.0.0.1:0", "node.id": 1,
            "log.dirs": f"{tmp_path / 'd1'},{tmp_path / 'd2'}",
            "group.initial.rebalance.delay.ms": 0}


# -- kafka-python ---------------------------------------------------------------------------


def kafka_python_session(bootstrap: str) -> dict[str, Any]:
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import NewTopic

    seen: dict[str, Any] = {}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        admin.create_topics([NewTopic("kp", 2, 1)])
        election = admin.elect_leaders(0, {"kp": [0, 1]})
        seen["elect"] = [(r[0], sorted((p[0], p[1]) for p in r[1]))
                         for r in election.replica_election_results]
        # None: kafka-python names every partition of every topic itself.
        everything = admin.elect_leaders(1, None)
        seen["elect_all"] = [(r[0], sorted((p[0], p[1]) for p in r[1]))
                             for r in everything.replica_election_results]
        seen["quorum"] = admin.describe_metadata_quorum()
        tp = TopicPartition("kp", 0)
        seen["reassign"] = admin.alter_partition_reassignments({tp: [1]})
        seen["list_all"] = admin.list_partition_reassignments()
        seen["list_one"] = admin.list_partition_reassignments([tp])
        seen["config_resources"] = admin.list_config_resources()
        seen["topic_resources"] = admin.list_config_resources(["TOPIC"])
    finally:
        admin.close()
    return seen


async def test_kafka_python_admin(broker: RunningBroker) -> None:
    seen = await in_thread(kafka_python_session, broker.bootstrap)
    assert seen["elect"] == [("kp", [(0, 84), (1, 84)])]
    assert seen["elect_all"] == [("kp", [(0, 84), (1, 84)])]
    quorum = seen["quorum"]
    [topic] = quorum["topics"]
    assert topic["topic_name"] == "__cluster_metadata"
    [p] = topic["partitions"]
    assert (p["partition_index"], p["error"], p["leader_id"], p["leader_epoch"]) == (0, None, 1, 1)
    assert p["high_watermark"] == 2 + 1 + 2  # feature, broker, topic kp and its partitions
    assert [v["replica_id"] for v in p["current_voters"]] == [1]
    assert [n["node_id"] for n in quorum["nodes"]] == [1]
    from kafka import TopicPartition

    assert seen["reassign"] == {TopicPartition("kp", 0): None}
    assert seen["list_all"] == {} and seen["list_one"] == {}
    resources = {k.lower(): sorted(v) for k, v in seen["config_resources"].items() if v}
    assert resources == {"broker": ["1"], "broker_logger": ["1"], "topic": ["kp"]}
    assert {k.lower(): v for k, v in seen["topic_resources"].items() if v} == {"topic": ["kp"]}


PADDING = b"." * 4000


def move_with_kafka_python(bootstrap: str, target: str) -> dict[str, Any]:
    """Produce, move the replica to `target`, produce again, consume everything."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartitionReplica
    from kafka.admin import NewTopic

    seen: dict[str, Any] = {}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    try:
        admin.create_topics([NewTopic("mv", 1, 1, topic_configs={"segment.bytes": "1048576"})])
        for i in range(300):  # 1.2 MB: two segments
            producer.send("mv", value=b"%04d" % i + PADDING, partition=0)
        producer.flush(30)
        tpr = TopicPartitionReplica("mv", 0, 1)
        seen["moved"] = admin.alter_replica_log_dirs({tpr: target})[tpr].__name__
        seen["missing_dir"] = admin.alter_replica_log_dirs({tpr: target + "-x"})[tpr].__name__
        for i in range(300, 400):
            producer.send("mv", value=b"%04d" % i + PADDING, partition=0)
        producer.flush(30)
        seen["dirs"] = admin.describe_log_dirs()
        consumer = KafkaConsumer("mv", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                 consumer_timeout_ms=10000)
        values = []
        for record in consumer:
            values.append(record.value)
            if len(values) == 400:
                break
        consumer.close()
        seen["values"] = values
    finally:
        producer.close(10)
        admin.close()
    return seen


async def test_kafka_python_moves_a_replica_between_log_dirs(broker: RunningBroker) -> None:
    logs = broker.broker.logs
    d1, d2 = logs.log_dirs
    broker.broker.topics.create("filler", 1, {})
    broker.broker.topics.log("filler", 0)  # so that the new partition lands in d2
    seen = await in_thread(move_with_kafka_python, broker.bootstrap, d1)
    assert (seen["moved"], seen["missing_dir"]) == ("NoError", "LogDirNotFoundError")
    assert logs.log_dir_of("mv", 0) == d1
    assert seen["values"] == [b"%04d" % i + PADDING for i in range(400)]
    [described] = seen["dirs"]
    by_dir = {d["log_dir"]: [(t["name"], p["partition_index"], p["is_future_key"])
                             for t in d["topics"] for p in t["partitions"]]
              for d in described["log_dirs"]}
    assert ("mv", 0, False) in by_dir[d1] and ("mv", 0, False) not in by_dir[d2]
    assert len(logs.get_log("mv", 0).segments) > 1  # type: ignore[union-attr]


# -- Apache Kafka's tools (the Java admin client) -------------------------------------------


async def kafka_tool(main: str, bootstrap: str, *args: str) -> tuple[int, str]:
    with trio.fail_after(60):
        done = await trio.run_process(
            ["java", "-cp", f"{KAFKA_LIB}/*", f"org.apache.kafka.tools.{main}",
             "--bootstrap-server", bootstrap, *args],
            capture_stdout=True, capture_stderr=True, check=False)
    return done.returncode, (done.stdout + done.stderr).decode()


requires_java = pytest.mark.skipif(
    shutil.which("java") is None or shutil.which("mvn") is None,
    reason="Kafka's Java tools need a JDK, and Maven to fetch their jars")


@requires_java
async def test_kafka_tools(broker: RunningBroker, tmp_path: Path) -> None:
    await trio.to_thread.run_sync(_fetch_kafka_jars)
    b = broker.bootstrap
    topics = broker.broker.topics
    topics.create("jt", 2, {})
    for p in (0, 1):
        topics.log("jt", p)
    home = broker.broker.logs.log_dir_of("jt", 0)
    [other] = [d for d in broker.broker.logs.log_dirs if d != home]

    code, out = await kafka_tool("LeaderElectionCommand", b, "--election-type", "PREFERRED",
                                 "--all-topic-partitions")
    assert (code, out.strip()) == (0, ""), out
    code, out = await kafka_tool("LeaderElectionCommand", b, "--election-type", "UNCLEAN",
                                 "--topic", "jt", "--partition", "1")
    assert (code, out.strip()) == (0, "Valid replica already elected for partitions jt-1")
    code, out = await kafka_tool("LeaderElectionCommand", b, "--election-type", "PREFERRED",
                                 "--topic", "nope", "--partition", "0")
    assert code == 1 and "UnknownTopicOrPartitionException: No such topic as nope" in out

    code, out = await kafka_tool("MetadataQuorumCommand", b, "describe", "--status")
    assert code == 0, out
    status = dict(line.split(":", 1) for line in out.strip().splitlines())
    assert {k: v.strip() for k, v in status.items() if k in (
        "ClusterId", "LeaderId", "LeaderEpoch", "HighWatermark", "MaxFollowerLag",
        "CurrentObservers")} == {
        "ClusterId": broker.broker.cluster_id, "LeaderId": "1", "LeaderEpoch": "1",
        "HighWatermark": "5", "MaxFollowerLag": "0", "CurrentObservers": "[]"}
    assert json.loads(status["CurrentVoters"]) == [
        {"id": 1, "endpoints": [f"PLAINTEXT://127.0.0.1:{broker.port}"]}]
    code, out = await kafka_tool("MetadataQuorumCommand", b, "describe", "--replication")
    assert code == 0, out
    [row] = [line.split() for line in out.strip().splitlines()[1:]]
    assert (row[0], row[2], row[3], row[-1]) == ("1", "5", "0", "Leader")

    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": "jt", "partition": 0, "replicas": [1], "log_dirs": [other]},
        {"topic": "jt", "partition": 1, "replicas": [1]}]}))
    code, out = await kafka_tool("reassign.ReassignPartitionsCommand", b, "--execute",
                                 "--reassignment-json-file", str(plan))
    assert code == 0, out
    assert "Successfully started partition reassignments for jt-0,jt-1" in out
    assert f"Successfully started moving log directory to {other} for replica jt-0" in out
    assert broker.broker.logs.log_dir_of("jt", 0) == other
    code, out = await kafka_tool("reassign.ReassignPartitionsCommand", b, "--verify",
                                 "--reassignment-json-file", str(plan))
    assert code == 0, out
    for line in ("Reassignment of partition jt-0 is completed.",
                 "Reassignment of partition jt-1 is completed.",
                 "Reassignment of replica jt-0-1 completed successfully."):
        assert line in out
    code, out = await kafka_tool("reassign.ReassignPartitionsCommand", b, "--list")
    assert (code, out.strip()) == (0, "No partition reassignments found."), out
    code, out = await kafka_tool("reassign.ReassignPartitionsCommand", b, "--cancel",
                                 "--reassignment-json-file", str(plan))
    assert code == 0 and "None of the specified partition reassignments are active." in out

    code, out = await kafka_tool("LogDirsCommand", b, "--describe", "--topic-list", "jt")
    assert code == 0, out
    described = json.loads(out.strip().splitlines()[-1])
    [entry] = described["brokers"]
    placed = {d["logDir"]: sorted(p["partition"] for p in d["partitions"])
              for d in entry["logDirs"]}
    assert placed[other].count("jt-0") == 1 and "jt-0" not in placed[home]

    code, out = await kafka_tool("ClientMetricsCommand", b, "--list")
    assert (code, out.strip()) == (0, ""), out
