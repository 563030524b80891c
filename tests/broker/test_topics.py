"""Metadata, CreateTopics, DeleteTopics, CreatePartitions, DescribeCluster and
DescribeTopicPartitions at the wire level: every advertised version, and the error codes and
messages Apache Kafka 4.4 answers (recorded against `compat/apache-kafka`'s ReferenceKafka).
Real clients drive the same APIs in tests/clients/test_admin_clients.py and test_kcat.py."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
import trio

from broker.handlers.topics import (
    CLUSTER_AUTHORIZED_OPERATIONS,
    TOPIC_AUTHORIZED_OPERATIONS,
)
from protocol.errors import ErrorCode
from protocol.messages.create_partitions_request import (
    CreatePartitionsAssignment,
    CreatePartitionsRequest,
    CreatePartitionsTopic,
)
from protocol.messages.create_topics_request import (
    CreatableReplicaAssignment,
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from protocol.messages.delete_topics_request import DeleteTopicsRequest, DeleteTopicState
from protocol.messages.describe_cluster_request import DescribeClusterRequest
from protocol.messages.describe_topic_partitions_request import (
    Cursor,
    DescribeTopicPartitionsRequest,
    TopicRequest,
)
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic

METADATA, CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 3, 19, 20, 37
DESCRIBE_CLUSTER, DESCRIBE_TOPIC_PARTITIONS = 60, 75
ZERO = uuid.UUID(int=0)
OMITTED = -2147483648


@pytest.fixture
def broker_overrides() -> dict[str, str]:
    """Broker configs a test sets with `@pytest.mark.parametrize("broker_overrides", ...)`."""
    return {}


@pytest.fixture
def broker_config(tmp_path, broker_overrides) -> dict[str, Any]:
    return {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(tmp_path / "data"),
            **broker_overrides}


def md_topics(*names: str | None) -> list[MetadataRequestTopic]:
    return [MetadataRequestTopic(name=n) for n in names]


def new_topic(name: str, partitions: int = -1, factor: int = -1,
              configs: dict[str, str | None] | None = None,
              assignments: list[list[int]] | None = None) -> CreatableTopic:
    return CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=factor,
        configs=[CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items()],
        assignments=[CreatableReplicaAssignment(partition_index=i, broker_ids=b)
                     for i, b in enumerate(assignments or [])])


async def create(wire: Any, *topics: CreatableTopic, version: int = 7,
                 validate_only: bool = False, timeout_ms: int = 30000) -> Any:
    return await wire.request(CREATE_TOPICS, version, CreateTopicsRequest(
        topics=list(topics), timeout_ms=timeout_ms, validate_only=validate_only))


def results_by_name(results: list[Any]) -> dict[str, tuple[int, str | None]]:
    return {r.name: (r.error_code, r.error_message) for r in results}


# -- Metadata ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", range(14))
async def test_metadata_every_version_describes_broker_and_topics(broker, wire, version) -> None:
    topic = broker.broker.topics.create("orders", 3)
    request = MetadataRequest(topics=md_topics("orders"), allow_auto_topic_creation=version < 4)
    response = await wire.request(METADATA, version, request)
    [node] = response.brokers
    assert (node.node_id, node.host, node.port, node.rack) == (
        broker.broker.node_id, "127.0.0.1", broker.port, None)
    [entry] = response.topics
    assert (entry.error_code, entry.name, entry.is_internal) == (0, "orders", False)
    assert [p.partition_index for p in entry.partitions] == [0, 1, 2]
    for p in entry.partitions:
        assert (p.error_code, p.leader_id, p.replica_nodes, p.isr_nodes, p.offline_replicas) == (
            0, broker.broker.node_id, [broker.broker.node_id], [broker.broker.node_id], [])
        assert p.leader_epoch == (0 if version >= 7 else -1)
    assert response.controller_id == (broker.broker.node_id if version >= 1 else -1)
    assert response.cluster_id == (broker.broker.cluster_id if version >= 2 else None)
    assert broker.broker.cluster_id
    # Real topic ids from v10 (clients fall back to old Fetch versions on the zero UUID).
    assert entry.topic_id == (topic.topic_id if version >= 10 else ZERO)
    assert entry.topic_id != ZERO or version < 10


async def test_metadata_null_empty_and_v0_topic_lists(broker, wire) -> None:
    for name in ("b", "a", "__consumer_offsets"):
        broker.broker.topics.create(name, 1)
    everything = await wire.request(METADATA, 1, MetadataRequest(topics=None))
    assert [t.name for t in everything.topics] == ["__consumer_offsets", "a", "b"]
    assert [t.is_internal for t in everything.topics] == [True, False, False]
    none = await wire.request(METADATA, 1, MetadataRequest(topics=[]))
    assert none.topics == [] and len(none.brokers) == 1
    # v0 has no null list: empty means every topic.
    v0 = await wire.request(METADATA, 0, MetadataRequest(topics=[]))
    assert [t.name for t in v0.topics] == ["__consumer_offsets", "a", "b"]
    duplicated = await wire.request(METADATA, 9, MetadataRequest(topics=md_topics("a", "a")))
    assert [t.name for t in duplicated.topics] == ["a"]


@pytest.mark.parametrize("broker_overrides", [{"num.partitions": "3"}])
async def test_metadata_auto_creates_like_kraft_kafka(broker, wire) -> None:
    first = await wire.request(METADATA, 12, MetadataRequest(topics=md_topics("fresh")))
    # KRaft Kafka answers the creating request before the controller has created the topic.
    [entry] = first.topics
    assert (entry.error_code, entry.name, entry.topic_id, entry.partitions) == (
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "fresh", ZERO, [])
    created = broker.broker.topics.get("fresh")
    assert created is not None and created.partitions == 3
    again = await wire.request(METADATA, 12, MetadataRequest(topics=md_topics("fresh")))
    assert again.topics[0].error_code == 0
    assert again.topics[0].topic_id == created.topic_id
    assert len(again.topics[0].partitions) == 3


@pytest.mark.parametrize("version", [1, 3])
async def test_metadata_before_v4_always_allows_auto_creation(broker, wire, version) -> None:
    response = await wire.request(METADATA, version, MetadataRequest(topics=md_topics("old")))
    assert response.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert "old" in broker.broker.topics


async def test_metadata_auto_creation_disallowed_by_request(broker, wire) -> None:
    response = await wire.request(METADATA, 4, MetadataRequest(
        topics=md_topics("nope"), allow_auto_topic_creation=False))
    assert response.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert "nope" not in broker.broker.topics


async def test_metadata_invalid_names_internal_topics_and_collisions(broker, wire) -> None:
    broker.broker.topics.create("a_b", 1)
    response = await wire.request(METADATA, 9, MetadataRequest(
        topics=md_topics("bad/name", "__transaction_state", "a.b", "x" * 250, "")))
    codes = {t.name: (t.error_code, t.is_internal) for t in response.topics}
    assert codes == {
        "bad/name": (ErrorCode.INVALID_TOPIC_EXCEPTION, False),
        "__transaction_state": (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, True),
        "a.b": (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, False),
        "x" * 250: (ErrorCode.INVALID_TOPIC_EXCEPTION, False),
        "": (ErrorCode.INVALID_TOPIC_EXCEPTION, False),
    }
    # Internal topics are left to their coordinators; a colliding name is refused.
    assert [t.name for t in broker.broker.topics] == ["a_b"]


@pytest.mark.parametrize("broker_overrides", [{"auto.create.topics.enable": "false"}])
async def test_metadata_auto_create_disabled_by_broker(broker, wire) -> None:
    response = await wire.request(METADATA, 9, MetadataRequest(topics=md_topics("t")))
    assert response.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert len(broker.broker.topics) == 0


async def test_metadata_by_topic_id(broker, wire) -> None:
    topic = broker.broker.topics.create("t", 2)
    unknown = uuid.UUID(int=12345678901234567890)
    response = await wire.request(METADATA, 12, MetadataRequest(topics=[
        MetadataRequestTopic(topic_id=topic.topic_id, name=None),
        MetadataRequestTopic(topic_id=unknown, name=None)],
        include_topic_authorized_operations=True))
    first, second = response.topics
    assert (first.error_code, first.name, first.topic_id, first.topic_authorized_operations) == (
        ErrorCode.UNKNOWN_TOPIC_ID, None, unknown, OMITTED)
    assert (second.error_code, second.name, second.topic_id, len(second.partitions)) == (
        0, "t", topic.topic_id, 2)
    assert second.topic_authorized_operations == TOPIC_AUTHORIZED_OPERATIONS


@pytest.mark.parametrize("version", [10, 11])
async def test_metadata_ids_or_null_names_before_v12_are_invalid(broker, wire, version) -> None:
    broker.broker.topics.create("t", 1)
    for topic in (MetadataRequestTopic(topic_id=uuid.uuid4(), name="t"),
                  MetadataRequestTopic(name=None)):
        response = await wire.request(METADATA, version, MetadataRequest(topics=[topic]))
        [entry] = response.topics
        assert (entry.error_code, entry.name, entry.topic_id) == (
            ErrorCode.INVALID_REQUEST, topic.name or "", topic.topic_id)
        assert (response.brokers, response.controller_id) == ([], -1)


async def test_metadata_authorized_operations(broker, wire) -> None:
    broker.broker.topics.create("t", 1)
    v10 = await wire.request(METADATA, 10, MetadataRequest(
        topics=md_topics("t", "missing"), allow_auto_topic_creation=False,
        include_cluster_authorized_operations=True, include_topic_authorized_operations=True))
    # No authorizer: every operation a resource type supports (Kafka: 3576 and 8096).
    assert (TOPIC_AUTHORIZED_OPERATIONS, CLUSTER_AUTHORIZED_OPERATIONS) == (3576, 8096)
    assert v10.cluster_authorized_operations == 8096
    assert [t.topic_authorized_operations for t in v10.topics] == [3576, 3576]
    plain = await wire.request(METADATA, 10, MetadataRequest(topics=md_topics("t")))
    assert plain.cluster_authorized_operations == OMITTED
    assert plain.topics[0].topic_authorized_operations == OMITTED
    # v11 dropped the cluster field; v13 added a top-level error code.
    v13 = await wire.request(METADATA, 13, MetadataRequest(
        topics=md_topics("t"), include_topic_authorized_operations=True))
    assert (v13.cluster_authorized_operations, v13.error_code) == (OMITTED, 0)
    assert v13.topics[0].topic_authorized_operations == 3576


# -- CreateTopics --------------------------------------------------------------------------


async def test_create_topics_v7_returns_id_counts_and_configs(broker, wire) -> None:
    response = await create(wire, new_topic("t", 2, 1, {"retention.ms": "1000"}))
    [result] = response.topics
    topic = broker.broker.topics.get("t")
    assert topic is not None and topic.partitions == 2 and topic.configs == {"retention.ms": "1000"}
    assert (result.error_code, result.error_message, result.topic_id) == (0, None, topic.topic_id)
    assert (result.num_partitions, result.replication_factor) == (2, 1)
    configs = {c.name: (c.value, c.config_source, c.read_only, c.is_sensitive)
               for c in result.configs}
    assert configs["retention.ms"] == ("1000", 1, False, False)
    assert configs["cleanup.policy"] == ("delete", 5, False, False)
    assert configs["max.message.bytes"] == ("1048588", 5, False, False)
    assert configs["message.timestamp.after.max.ms"] == ("3600000", 5, False, False)
    assert broker.broker.topics.log("t", 1) is not None


@pytest.mark.parametrize("broker_overrides", [{"num.partitions": "2",
                                               "log.retention.hours": "1"}])
async def test_create_topics_defaults_and_broker_config_sources(broker, wire) -> None:
    response = await create(wire, new_topic("t"), version=5)
    [result] = response.topics
    assert (result.error_code, result.num_partitions, result.replication_factor) == (0, 2, 1)
    assert result.topic_id == ZERO  # v5 has no topic id
    configs = {c.name: (c.value, c.config_source) for c in result.configs}
    # log.retention.hours is in the broker's config file: STATIC_BROKER_CONFIG.
    assert configs["retention.ms"] == ("3600000", 4)
    assert configs["segment.bytes"] == ("1073741824", 5)


@pytest.mark.parametrize("version", [2, 3, 4])
async def test_create_topics_before_v5_answer_no_details(broker, wire, version) -> None:
    response = await create(wire, new_topic("t", 1, 1), new_topic("t2", 0), version=version)
    ok, bad = response.topics
    assert (ok.name, ok.error_code, ok.num_partitions, ok.configs) == ("t", 0, -1, [])
    assert (bad.error_code, bad.error_message) == (
        ErrorCode.INVALID_PARTITIONS,
        "Number of partitions was set to an invalid non-positive value.")
    assert "t" in broker.broker.topics


@pytest.mark.parametrize(("topic", "code", "message"), [
    (new_topic("t", 1, 3), ErrorCode.INVALID_REPLICATION_FACTOR,
     "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot "
     "be reached because only 1 broker(s) are registered or some brokers have all their log "
     "directories cordoned."),
    (new_topic("t", 1, 0), ErrorCode.INVALID_REPLICATION_FACTOR,
     "Replication factor must be larger than 0, or -1 to use the default value."),
    (new_topic("t", 1, -5), ErrorCode.INVALID_REPLICATION_FACTOR,
     "Replication factor must be larger than 0, or -1 to use the default value."),
    (new_topic("t", -2, 1), ErrorCode.INVALID_PARTITIONS,
     "Number of partitions was set to an invalid non-positive value."),
    (new_topic("bad/name", 1, 1), ErrorCode.INVALID_TOPIC_EXCEPTION,
     "Topic name is invalid: 'bad/name' contains one or more characters other than ASCII "
     "alphanumerics, '.', '_' and '-'"),
    (new_topic("", 1, 1), ErrorCode.INVALID_TOPIC_EXCEPTION,
     "Topic name is invalid: the empty string is not allowed"),
    (new_topic("..", 1, 1), ErrorCode.INVALID_TOPIC_EXCEPTION,
     "Topic name is invalid: '..' is not allowed"),
    (new_topic("x" * 250, 1, 1), ErrorCode.INVALID_TOPIC_EXCEPTION,
     f"Topic name is invalid: the length of '{'x' * 250}' is longer than the max allowed "
     "length 249"),
    (new_topic("t", 1, 1, {"retention.ms": "abc"}), ErrorCode.INVALID_CONFIG,
     "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
    (new_topic("t", 1, 1, {"foo.bar": "1"}), ErrorCode.INVALID_CONFIG,
     "Unknown topic config name: foo.bar"),
    (new_topic("t", 1, 1, {"retention.ms": None}), ErrorCode.INVALID_CONFIG,
     "Null value not supported for topic configs: retention.ms"),
    (new_topic("t", 1, 1, {"cleanup.policy": "nope"}), ErrorCode.INVALID_CONFIG,
     "Invalid value nope for configuration cleanup.policy: String must be one of: compact, "
     "delete"),
    # Configs are checked before counts, names before configs.
    (new_topic("t", 0, 1, {"foo": "1"}), ErrorCode.INVALID_CONFIG,
     "Unknown topic config name: foo"),
    (new_topic("a/b", 0, 1, {"foo": "1"}), ErrorCode.INVALID_TOPIC_EXCEPTION,
     "Topic name is invalid: 'a/b' contains one or more characters other than ASCII "
     "alphanumerics, '.', '_' and '-'"),
    (new_topic("t", 2, -1, assignments=[[1]]), ErrorCode.INVALID_REQUEST,
     "A manual partition assignment was specified, but numPartitions was not set to -1."),
    (new_topic("t", -1, 1, assignments=[[1]]), ErrorCode.INVALID_REQUEST,
     "A manual partition assignment was specified, but replication factor was not set to -1."),
    (new_topic("t", assignments=[[6]]), ErrorCode.INVALID_REPLICA_ASSIGNMENT,
     "The manual partition assignment includes broker 6, but no such broker is registered."),
    (new_topic("t", assignments=[[1, 1]]), ErrorCode.INVALID_REPLICA_ASSIGNMENT,
     "The manual partition assignment includes the broker 1 more than once."),
    (new_topic("t", assignments=[[]]), ErrorCode.INVALID_REPLICA_ASSIGNMENT,
     "The manual partition assignment includes an empty replica list."),
    (new_topic("__cluster_metadata", 1, 1), ErrorCode.INVALID_REQUEST,
     "Creation of internal topic __cluster_metadata is prohibited."),
])
async def test_create_topics_errors(broker, wire, topic, code, message) -> None:
    for validate_only in (True, False):
        response = await create(wire, topic, validate_only=validate_only)
        [result] = response.topics
        assert (result.name, result.error_code, result.error_message) == (
            topic.name, code, message)
        assert (result.topic_id, result.num_partitions, result.replication_factor,
                result.configs) == (ZERO, -1, -1, [])
    assert len(broker.broker.topics) == 0


async def test_create_topics_assignment_indexes(broker, wire) -> None:
    gap = new_topic("gap", assignments=[[1], [1]])
    gap.assignments[1].partition_index = 2
    twice = new_topic("twice", assignments=[[1], [1]])
    twice.assignments[1].partition_index = 0
    reordered = new_topic("reordered", assignments=[[1], [1]])
    reordered.assignments[0].partition_index, reordered.assignments[1].partition_index = 1, 0
    response = await create(wire, gap, twice, reordered, new_topic("ok", assignments=[[1]] * 3))
    assert results_by_name(response.topics) == {
        "gap": (ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                "partitions should be a consecutive 0-based integer sequence"),
        "twice": (ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                  "Found multiple manual partition assignments for partition 0"),
        "reordered": (0, None),
        "ok": (0, None),
    }
    assert [(t.name, t.partitions) for t in broker.broker.topics] == [("ok", 3), ("reordered", 2)]


async def test_create_topics_existing_colliding_and_duplicates(broker, wire) -> None:
    broker.broker.topics.create("t_1", 1)
    response = await create(wire, new_topic("d"), new_topic("t_1", 1, 1, {"foo": "x"}),
                            new_topic("t.1"), new_topic("d"), new_topic("e"))
    assert [(r.name, r.error_code, r.error_message) for r in response.topics] == [
        ("t_1", ErrorCode.TOPIC_ALREADY_EXISTS, "Topic 't_1' already exists."),
        ("t.1", ErrorCode.INVALID_TOPIC_EXCEPTION, "Topic 't.1' collides with existing topic: t_1"),
        ("e", 0, None),
        ("d", ErrorCode.INVALID_REQUEST, "Duplicate topic name."),
    ]
    assert [t.name for t in broker.broker.topics] == ["e", "t_1"]


async def test_create_topics_validate_only_creates_nothing(broker, wire) -> None:
    response = await create(wire, new_topic("t", 3, 1, {"cleanup.policy": "compact"}),
                            validate_only=True)
    [result] = response.topics
    assert (result.error_code, result.num_partitions, result.replication_factor) == (0, 3, 1)
    assert result.topic_id != ZERO  # Kafka answers a fresh id it never uses
    assert {c.name: c.value for c in result.configs}["cleanup.policy"] == "compact"
    assert len(broker.broker.topics) == 0 and len(broker.broker.logs) == 0


async def test_create_topics_internal_topics_may_be_created(broker, wire) -> None:
    response = await create(wire, new_topic("__consumer_offsets", 1, 1))
    assert response.topics[0].error_code == 0
    md = await wire.request(METADATA, 9, MetadataRequest(topics=md_topics("__consumer_offsets")))
    assert md.topics[0].is_internal


@pytest.mark.parametrize("timeout_ms", [0, -1])
async def test_create_topics_expired_timeout(broker, wire, timeout_ms) -> None:
    response = await create(wire, new_topic("t"), new_topic("t"), new_topic("bad/x"),
                            timeout_ms=timeout_ms)
    assert [(r.name, r.error_code, r.error_message) for r in response.topics] == [
        ("t", ErrorCode.REQUEST_TIMED_OUT, None), ("t", ErrorCode.REQUEST_TIMED_OUT, None),
        ("bad/x", ErrorCode.REQUEST_TIMED_OUT, None)]
    assert len(broker.broker.topics) == 0


async def test_create_topics_too_many_partitions_per_request(broker, wire) -> None:
    response = await create(wire, new_topic("huge", 10_000), new_topic("small", 1))
    message = "Excessively large number of partitions per request."
    assert [(r.error_code, r.error_message) for r in response.topics] == [
        (ErrorCode.POLICY_VIOLATION, message)] * 2
    assert len(broker.broker.topics) == 0


# -- DeleteTopics --------------------------------------------------------------------------


@pytest.mark.parametrize("version", range(1, 7))
async def test_delete_topics_every_version(broker, wire, version) -> None:
    topic = broker.broker.topics.create("t", 2)
    if version >= 6:
        request = DeleteTopicsRequest(topics=[DeleteTopicState(name="t"),
                                              DeleteTopicState(name="nope")], timeout_ms=1000)
    else:
        request = DeleteTopicsRequest(topic_names=["t", "nope"], timeout_ms=1000)
    response = await wire.request(DELETE_TOPICS, version, request)
    ok, unknown = response.responses
    assert (ok.name, ok.error_code, ok.error_message) == ("t", 0, None)
    assert ok.topic_id == (topic.topic_id if version >= 6 else ZERO)
    assert (unknown.name, unknown.error_code, unknown.error_message) == (
        "nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        "This server does not host this topic-partition." if version >= 5 else None)
    assert "t" not in broker.broker.topics
    assert broker.broker.topics.log("t", 0) is None
    assert broker.broker.logs.get_log("t", 0) is None
    assert len(broker.broker.logs.pending_deletes()) == 2


async def test_delete_topics_by_id_and_request_errors(broker, wire) -> None:
    topic = broker.broker.topics.create("t", 1)
    broker.broker.topics.create("u", 1)
    unknown = uuid.UUID(int=99)
    response = await wire.request(DELETE_TOPICS, 6, DeleteTopicsRequest(topics=[
        DeleteTopicState(name=None, topic_id=topic.topic_id),
        DeleteTopicState(name=None, topic_id=unknown),
        DeleteTopicState(name="u", topic_id=unknown),
        DeleteTopicState(name=None, topic_id=ZERO),
        DeleteTopicState(name="u"), DeleteTopicState(name="u"),
        DeleteTopicState(name=None, topic_id=uuid.UUID(int=5)),
        DeleteTopicState(name=None, topic_id=uuid.UUID(int=5)),
        DeleteTopicState(name="bad/name"),
    ], timeout_ms=1000))
    assert [(r.name, r.topic_id, r.error_code, r.error_message) for r in response.responses] == [
        ("t", topic.topic_id, 0, None),
        (None, unknown, ErrorCode.UNKNOWN_TOPIC_ID, "This server does not host this topic ID."),
        ("u", unknown, ErrorCode.INVALID_REQUEST,
         "You may not specify both topic name and topic id."),
        (None, ZERO, ErrorCode.INVALID_REQUEST, "Neither topic name nor id were specified."),
        ("u", ZERO, ErrorCode.INVALID_REQUEST, "Duplicate topic name."),
        (None, uuid.UUID(int=5), ErrorCode.INVALID_REQUEST, "Duplicate topic id."),
        ("bad/name", ZERO, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
         "This server does not host this topic-partition."),
    ]
    assert [t.name for t in broker.broker.topics] == ["u"]


async def test_delete_topics_internal_topic_and_timeout(broker, wire) -> None:
    broker.broker.topics.create("__transaction_state", 1)
    expired = await wire.request(DELETE_TOPICS, 5, DeleteTopicsRequest(
        topic_names=["__transaction_state"], timeout_ms=0))
    assert [(r.error_code, r.error_message) for r in expired.responses] == [
        (ErrorCode.REQUEST_TIMED_OUT, None)]
    # Kafka 4.x lets a client delete internal topics.
    response = await wire.request(DELETE_TOPICS, 5, DeleteTopicsRequest(
        topic_names=["__transaction_state"], timeout_ms=1000))
    assert response.responses[0].error_code == 0
    assert len(broker.broker.topics) == 0


@pytest.mark.parametrize("broker_overrides", [{"delete.topic.enable": "false"}])
@pytest.mark.parametrize(("version", "code"), [
    (1, ErrorCode.INVALID_REQUEST), (2, ErrorCode.INVALID_REQUEST),
    (3, ErrorCode.TOPIC_DELETION_DISABLED), (6, ErrorCode.TOPIC_DELETION_DISABLED)])
async def test_delete_topics_disabled(broker, wire, version, code) -> None:
    broker.broker.topics.create("t", 1)
    if version >= 6:
        request = DeleteTopicsRequest(timeout_ms=1000, topics=[
            DeleteTopicState(name="t"), DeleteTopicState(name=None, topic_id=uuid.UUID(int=7))])
        expected = [("t", ZERO), (None, uuid.UUID(int=7))]
    else:
        request = DeleteTopicsRequest(topic_names=["t", "nope"], timeout_ms=1000)
        expected = [("t", ZERO), ("nope", ZERO)]
    response = await wire.request(DELETE_TOPICS, version, request)
    assert [(r.name, r.topic_id) for r in response.responses] == expected
    assert {(r.error_code, r.error_message) for r in response.responses} == {(code, None)}
    assert "t" in broker.broker.topics


async def test_deleted_topic_can_be_recreated_with_a_new_id(broker, wire) -> None:
    old = broker.broker.topics.create("t", 1)
    await wire.request(DELETE_TOPICS, 5, DeleteTopicsRequest(topic_names=["t"], timeout_ms=1000))
    response = await create(wire, new_topic("t", 3))
    assert response.topics[0].error_code == 0
    assert response.topics[0].topic_id not in (ZERO, old.topic_id)
    md = await wire.request(METADATA, 12, MetadataRequest(topics=md_topics("t")))
    assert len(md.topics[0].partitions) == 3


# -- CreatePartitions ----------------------------------------------------------------------


def grow(name: str, count: int, assignments: list[list[int]] | None = None
         ) -> CreatePartitionsTopic:
    return CreatePartitionsTopic(
        name=name, count=count,
        assignments=None if assignments is None else
        [CreatePartitionsAssignment(broker_ids=b) for b in assignments])


@pytest.mark.parametrize("version", range(4))
async def test_create_partitions_every_version(broker, wire, version) -> None:
    broker.broker.topics.create("t", 1)
    response = await wire.request(CREATE_PARTITIONS, version, CreatePartitionsRequest(
        topics=[grow("t", 3), grow("nope", 2)], timeout_ms=1000))
    assert [(r.name, r.error_code, r.error_message) for r in response.results] == [
        ("t", 0, None), ("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None)]
    topic = broker.broker.topics.get("t")
    assert topic is not None and topic.partitions == 3
    assert broker.broker.topics.log("t", 2) is not None
    md = await wire.request(METADATA, 9, MetadataRequest(topics=md_topics("t")))
    assert [p.partition_index for p in md.topics[0].partitions] == [0, 1, 2]


@pytest.mark.parametrize(("request_topic", "code", "message"), [
    (grow("t", 4), ErrorCode.INVALID_PARTITIONS, "Topic already has 4 partition(s)."),
    (grow("t", 2), ErrorCode.INVALID_PARTITIONS,
     "The topic t currently has 4 partition(s); 2 would not be an increase."),
    (grow("t", 0), ErrorCode.INVALID_PARTITIONS,
     "The topic t currently has 4 partition(s); 0 would not be an increase."),
    (grow("t", 4, [[1]]), ErrorCode.INVALID_PARTITIONS, "Topic already has 4 partition(s)."),
    (grow("t", 7, [[1]]), ErrorCode.INVALID_REPLICA_ASSIGNMENT,
     "Attempted to add 3 additional partition(s), but only 1 assignment(s) were specified."),
    (grow("t", 5, [[6]]), ErrorCode.INVALID_REPLICA_ASSIGNMENT,
     "The manual partition assignment includes broker 6, but no such broker is registered."),
    (grow("t", 5, [[1, 1]]), ErrorCode.INVALID_REPLICA_ASSIGNMENT,
     "The manual partition assignment includes the broker 1 more than once."),
    (grow("t", 5, [[]]), ErrorCode.INVALID_REPLICA_ASSIGNMENT,
     "The manual partition assignment includes an empty replica list."),
    (grow("t", 10_005), ErrorCode.POLICY_VIOLATION,
     "Excessively large number of additional partitions per request."),
    (grow("bad/name", 5), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None),
])
async def test_create_partitions_errors(broker, wire, request_topic, code, message) -> None:
    broker.broker.topics.create("t", 4)
    for validate_only in (True, False):
        response = await wire.request(CREATE_PARTITIONS, 3, CreatePartitionsRequest(
            topics=[request_topic], timeout_ms=1000, validate_only=validate_only))
        assert [(r.name, r.error_code, r.error_message) for r in response.results] == [
            (request_topic.name, code, message)]
    topic = broker.broker.topics.get("t")
    assert topic is not None and topic.partitions == 4


async def test_create_partitions_assignments_validate_only_duplicates_timeout(broker,
                                                                              wire) -> None:
    broker.broker.topics.create("t", 1)
    broker.broker.topics.create("u", 1)
    checked = await wire.request(CREATE_PARTITIONS, 3, CreatePartitionsRequest(
        topics=[grow("t", 5)], timeout_ms=1000, validate_only=True))
    assert checked.results[0].error_code == 0
    assert broker.broker.topics.get("t").partitions == 1  # type: ignore[union-attr]
    expired = await wire.request(CREATE_PARTITIONS, 3, CreatePartitionsRequest(
        topics=[grow("t", 5)], timeout_ms=0))
    assert [(r.error_code, r.error_message) for r in expired.results] == [
        (ErrorCode.REQUEST_TIMED_OUT, None)]
    response = await wire.request(CREATE_PARTITIONS, 3, CreatePartitionsRequest(
        topics=[grow("u", 7), grow("t", 3, [[1], [1]]), grow("u", 8)], timeout_ms=1000))
    assert [(r.name, r.error_code, r.error_message) for r in response.results] == [
        ("t", 0, None), ("u", ErrorCode.INVALID_REQUEST, "Duplicate topic name.")]
    assert [(t.name, t.partitions) for t in broker.broker.topics] == [("t", 3), ("u", 1)]


# -- DescribeCluster -----------------------------------------------------------------------


@pytest.mark.parametrize("version", range(3))
async def test_describe_cluster_every_version(broker, wire, version) -> None:
    b = broker.broker
    response = await wire.request(DESCRIBE_CLUSTER, version, DescribeClusterRequest(
        include_cluster_authorized_operations=True))
    assert (response.error_code, response.error_message, response.cluster_id,
            response.controller_id, response.endpoint_type) == (
        0, None, b.cluster_id, b.node_id, 1)
    assert [(n.broker_id, n.host, n.port, n.rack, n.is_fenced) for n in response.brokers] == [
        (b.node_id, "127.0.0.1", broker.port, None, False)]
    assert response.cluster_authorized_operations == CLUSTER_AUTHORIZED_OPERATIONS
    plain = await wire.request(DESCRIBE_CLUSTER, version, DescribeClusterRequest())
    assert plain.cluster_authorized_operations == OMITTED


@pytest.mark.parametrize(("endpoint_type", "code", "message"), [
    (2, ErrorCode.MISMATCHED_ENDPOINT_TYPE,
     "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type "
     "CONTROLLER"),
    (0, ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, "Unsupported endpoint type 0"),
    (7, ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, "Unsupported endpoint type 7"),
])
async def test_describe_cluster_endpoint_types(broker, wire, endpoint_type, code,
                                               message) -> None:
    response = await wire.request(DESCRIBE_CLUSTER, 1, DescribeClusterRequest(
        endpoint_type=endpoint_type))
    assert (response.error_code, response.error_message, response.brokers,
            response.cluster_id, response.controller_id) == (code, message, [], "", -1)


# -- DescribeTopicPartitions ---------------------------------------------------------------


async def describe_partitions(wire: Any, names: list[str], limit: int = 2000,
                              cursor: tuple[str, int] | None = None) -> Any:
    return await wire.request(DESCRIBE_TOPIC_PARTITIONS, 0, DescribeTopicPartitionsRequest(
        topics=[TopicRequest(name=n) for n in names], response_partition_limit=limit,
        cursor=None if cursor is None else Cursor(topic_name=cursor[0],
                                                  partition_index=cursor[1])))


def summary(response: Any) -> list[tuple[str, int, list[int]]]:
    return [(t.name, t.error_code, [p.partition_index for p in t.partitions])
            for t in response.topics]


def cursor_of(response: Any) -> tuple[str, int] | None:
    c = response.next_cursor
    return None if c is None else (c.topic_name, c.partition_index)


async def test_describe_topic_partitions(broker, wire) -> None:
    t1 = broker.broker.topics.create("t1", 5)
    broker.broker.topics.create("t7", 2)
    broker.broker.topics.create("__consumer_offsets", 1)
    response = await describe_partitions(wire, ["t7", "nope", "bad/name", "t1", "t1"])
    assert summary(response) == [
        ("bad/name", ErrorCode.INVALID_TOPIC_EXCEPTION, []),
        ("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, []),
        ("t1", 0, [0, 1, 2, 3, 4]), ("t7", 0, [0, 1])]
    assert cursor_of(response) is None
    assert {t.topic_authorized_operations for t in response.topics} == {3576}
    entry = response.topics[2]
    assert (entry.topic_id, entry.is_internal) == (t1.topic_id, False)
    p = entry.partitions[0]
    assert (p.leader_id, p.leader_epoch, p.replica_nodes, p.isr_nodes, p.eligible_leader_replicas,
            p.last_known_elr, p.offline_replicas) == (1, 0, [1], [1], [], [], [])
    everything = await describe_partitions(wire, [])
    assert [(t.name, t.is_internal) for t in everything.topics] == [
        ("__consumer_offsets", True), ("t1", False), ("t7", False)]


async def test_describe_topic_partitions_pagination(broker, wire) -> None:
    for name, n in (("a", 1), ("b", 1), ("t1", 5), ("t7", 2)):
        broker.broker.topics.create(name, n)
    first = await describe_partitions(wire, ["t1", "t7"], limit=3)
    assert (summary(first), cursor_of(first)) == ([("t1", 0, [0, 1, 2])], ("t1", 3))
    second = await describe_partitions(wire, ["t1", "t7"], limit=3, cursor=("t1", 3))
    assert (summary(second), cursor_of(second)) == (
        [("t1", 0, [3, 4]), ("t7", 0, [0])], ("t7", 1))
    # A topic that exactly fills the page: the next topic starts the cursor.
    full = await describe_partitions(wire, [], limit=2)
    assert (summary(full), cursor_of(full)) == ([("a", 0, [0]), ("b", 0, [0])], ("t1", 0))
    resumed = await describe_partitions(wire, [], limit=20, cursor=("t1", 4))
    assert (summary(resumed), cursor_of(resumed)) == ([("t1", 0, [4]), ("t7", 0, [0, 1])], None)
    beyond = await describe_partitions(wire, ["t1"], cursor=("t1", 99))
    assert (summary(beyond), cursor_of(beyond)) == ([("t1", 0, [])], None)
    # Limits below 1 act as 1; above the broker's 2000 as 2000.
    for limit in (0, -1):
        tiny = await describe_partitions(wire, ["t1"], limit=limit)
        assert (summary(tiny), cursor_of(tiny)) == ([("t1", 0, [0])], ("t1", 1))


@pytest.mark.parametrize(("names", "cursor"), [
    (["t1", "t7"], ("zzz", 0)), (["t7"], ("t1", 0)), (["t1"], ("t1", -1))])
async def test_describe_topic_partitions_bad_cursor(broker, wire, names, cursor) -> None:
    broker.broker.topics.create("t1", 2)
    broker.broker.topics.create("t7", 2)
    response = await describe_partitions(wire, names, cursor=cursor)
    assert [(t.name, t.error_code, t.topic_id, t.partitions, t.topic_authorized_operations)
            for t in response.topics] == [
        (n, ErrorCode.INVALID_REQUEST, ZERO, [], OMITTED) for n in names]
    assert response.next_cursor is None


@pytest.mark.parametrize("broker_overrides", [{"log.segment.delete.delay.ms": "1000"}])
async def test_deleted_topic_logs_are_removed_after_the_delay(broker, wire) -> None:
    """The broker's maintenance task removes `-delete` dirs once `file.delete.delay.ms`
    has passed (here 1 s: the shortest cadence of that task)."""
    broker.broker.topics.create("t", 2)
    await wire.request(DELETE_TOPICS, 5, DeleteTopicsRequest(topic_names=["t"], timeout_ms=1000))
    pending = broker.broker.logs.pending_deletes()
    assert len(pending) == 2 and all(os.path.isdir(p) for p in pending)
    with trio.fail_after(15):
        while broker.broker.logs.pending_deletes():
            await trio.sleep(0.05)
    assert not any(os.path.exists(p) for p in pending)


async def test_registry_set_defaults_reaches_logs_without_overrides(broker) -> None:
    registry = broker.broker.topics
    registry.create("plain", 1)
    registry.create("own", 1, {"retention.ms": "5000"})
    registry.set_defaults({"retention.ms": "7000", "segment.bytes": "2000000"})
    assert registry.log("plain", 0).config.retention_ms == 7000
    assert registry.log("own", 0).config.retention_ms == 5000
    assert registry.log("own", 0).config.segment_bytes == 2000000
