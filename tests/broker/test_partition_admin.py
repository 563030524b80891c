"""ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments, DescribeQuorum,
ListConfigResources and AlterReplicaLogDirs on the wire, every version, against the answers
Apache Kafka 4.4 gave to the same requests on a single node (node.id 1, two log dirs).

Real clients drive the same APIs in tests/clients/test_partition_admin_clients.py.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

import pytest
import trio

from protocol.messages.alter_partition_reassignments_request import (
    AlterPartitionReassignmentsRequest,
    ReassignablePartition,
    ReassignableTopic,
)
from protocol.messages.alter_replica_log_dirs_request import (
    AlterReplicaLogDir,
    AlterReplicaLogDirsRequest,
    AlterReplicaLogDirTopic,
)
from protocol.messages.describe_log_dirs_request import DescribeLogDirsRequest
from protocol.messages.describe_quorum_request import (
    DescribeQuorumRequest,
    PartitionData,
    TopicData,
)
from protocol.messages.elect_leaders_request import ElectLeadersRequest, TopicPartitions
from protocol.messages.list_config_resources_request import ListConfigResourcesRequest
from protocol.messages.list_partition_reassignments_request import (
    ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsTopics,
)
from tests.conftest import RunningBroker

pytestmark = pytest.mark.timeout(60)

NOT_NEEDED = (84, "Leader election not needed for topic partition.")


@pytest.fixture
def broker_config(tmp_path: Any) -> dict[str, Any]:
    return {"listeners": "PLAINTEXT://127.0.0.1:0", "node.id": 1,
            "log.dirs": f"{tmp_path / 'd1'},{tmp_path / 'd2'}"}


@pytest.fixture
def topic(broker: RunningBroker) -> str:
    broker.broker.topics.create("t", 2, {})
    return "t"


def election(response: Any) -> list[tuple[str, list[tuple[int, int, str | None]]]]:
    return [(r.topic, [(p.partition_id, p.error_code, p.error_message)
                       for p in r.partition_result])
            for r in response.replica_election_results]


# -- ElectLeaders ---------------------------------------------------------------------------


async def test_elect_leaders_every_version_and_type(wire: Any, topic: str) -> None:
    asked = [TopicPartitions(topic, [0, 1, 5]), TopicPartitions("nope", [0]),
             TopicPartitions("bad name!", [0]), TopicPartitions(topic, [0, 0, -1])]
    expected = [
        (topic, [(0, *NOT_NEEDED), (1, *NOT_NEEDED), (5, 3, "No such partition as t-5")]),
        ("nope", [(0, 3, "No such topic as nope")]),
        ("bad name!", [(0, 3, "No such topic as bad name!")]),
        (topic, [(0, *NOT_NEEDED), (0, *NOT_NEEDED), (-1, 3, "No such partition as t--1")]),
    ]
    for version in (0, 1, 2):
        for kind in ((0,) if version == 0 else (0, 1)):
            response = await wire.request(43, version, ElectLeadersRequest(
                election_type=kind, topic_partitions=asked, timeout_ms=1000))
            assert response.error_code == 0
            assert election(response) == expected


async def test_elect_leaders_for_all_partitions_lists_topics_without_partitions(
        wire: Any, broker: RunningBroker, topic: str) -> None:
    broker.broker.topics.create("a", 3, {})
    for version in (0, 1, 2):
        response = await wire.request(43, version, ElectLeadersRequest(topic_partitions=None))
        assert (response.error_code, election(response)) == (0, [("a", []), (topic, [])])
    empty = await wire.request(43, 2, ElectLeadersRequest(election_type=7, topic_partitions=[]))
    assert (empty.error_code, election(empty)) == (0, [])


async def test_elect_leaders_unknown_election_type(wire: Any, topic: str) -> None:
    message = "Unknown election type 2"
    for version in (1, 2):
        response = await wire.request(43, version, ElectLeadersRequest(
            election_type=2, topic_partitions=[TopicPartitions(topic, [0]),
                                               TopicPartitions("nope", [3])]))
        assert response.error_code == 42
        assert election(response) == [(topic, [(0, 42, message)]), ("nope", [(3, 42, message)])]
        everything = await wire.request(43, version, ElectLeadersRequest(
            election_type=2, topic_partitions=None))
        assert (everything.error_code, election(everything)) == (42, [])


# -- AlterPartitionReassignments / ListPartitionReassignments -----------------------------


def reassigned(response: Any) -> list[tuple[str, list[tuple[int, int, str | None]]]]:
    return [(t.name, [(p.partition_index, p.error_code, p.error_message) for p in t.partitions])
            for t in response.responses]


async def test_alter_partition_reassignments(wire: Any, topic: str) -> None:
    P, T = ReassignablePartition, ReassignableTopic
    no_broker = "The manual partition assignment includes broker {}, but no such broker is " \
                "registered."
    cases = [
        ([T(topic, [P(0, [1]), P(1, None), P(9, [1])]), T("nope", [P(0, [1]), P(1, None)])],
         [(topic, [(0, 0, None), (1, 85, None), (9, 3, "Unable to find partition t:9.")]),
          ("nope", [(0, 3, "Unable to find a topic named nope."),
                    (1, 3, "Unable to find a topic named nope.")])]),
        ([T(topic, [P(0, [2])])], [(topic, [(0, 39, no_broker.format(2))])]),
        ([T(topic, [P(0, [1, 2])])], [(topic, [(0, 39, no_broker.format(2))])]),
        ([T(topic, [P(0, [1, -1])])], [(topic, [(0, 39, no_broker.format(-1))])]),
        ([T(topic, [P(0, [1, 1])])], [(topic, [(
            0, 39, "The manual partition assignment includes the broker 1 more than once.")])]),
        ([T(topic, [P(0, [])])], [(topic, [(
            0, 39, "The manual partition assignment includes an empty replica list.")])]),
        ([T(topic, [P(0, [1]), P(0, None)]), T(topic, [P(-1, [1])])],
         [(topic, [(0, 0, None), (0, 85, None)]),
          (topic, [(-1, 3, "Unable to find partition t:-1.")])]),
    ]
    for version in (0, 1):
        for topics, expected in cases:
            response = await wire.request(45, version, AlterPartitionReassignmentsRequest(
                topics=topics))
            assert (response.error_code, response.error_message) == (0, None)
            assert reassigned(response) == expected
    kept = await wire.request(45, 1, AlterPartitionReassignmentsRequest(
        allow_replication_factor_change=False, topics=[T(topic, [P(0, [1])])]))
    assert kept.allow_replication_factor_change is False
    assert reassigned(kept) == [(topic, [(0, 0, None)])]
    empty = await wire.request(45, 1, AlterPartitionReassignmentsRequest(topics=[]))
    assert (empty.error_code, empty.error_message, empty.responses) == (0, "", [])


async def test_list_partition_reassignments_is_always_empty(wire: Any, topic: str) -> None:
    await wire.request(45, 1, AlterPartitionReassignmentsRequest(topics=[
        ReassignableTopic(topic, [ReassignablePartition(0, [1])])]))
    for topics in (None, [], [ListPartitionReassignmentsTopics(topic, [0, 1, 9]),
                              ListPartitionReassignmentsTopics("nope", [0])]):
        response = await wire.request(46, 0, ListPartitionReassignmentsRequest(topics=topics))
        assert (response.error_code, response.error_message, response.topics) == (0, None, [])


# -- DescribeQuorum -------------------------------------------------------------------------


def metadata_partition(index: int = 0) -> list[TopicData]:
    return [TopicData("__cluster_metadata", [PartitionData(index)])]


async def test_describe_quorum_every_version(wire: Any, broker: RunningBroker) -> None:
    before = (await wire.request(55, 2, DescribeQuorumRequest(metadata_partition())))
    end = before.topics[0].partitions[0].high_watermark
    broker.broker.topics.create("q", 3, {"retention.ms": "1000"})
    for version in (0, 1, 2):
        response = await wire.request(55, version, DescribeQuorumRequest(metadata_partition()))
        assert response.error_code == 0
        [topic] = response.topics
        assert topic.topic_name == "__cluster_metadata"
        [p] = topic.partitions
        assert (p.partition_index, p.error_code, p.leader_id, p.leader_epoch) == (0, 0, 1, 1)
        assert p.high_watermark == end + 5  # a TopicRecord, 3 PartitionRecords, a ConfigRecord
        [voter] = p.current_voters
        assert (voter.replica_id, voter.log_end_offset) == (1, p.high_watermark)
        assert voter.replica_directory_id == uuid.UUID(int=0)
        assert p.observers == []
        if version == 0:
            assert voter.last_fetch_timestamp == voter.last_caught_up_timestamp == -1
        else:
            assert voter.last_fetch_timestamp == voter.last_caught_up_timestamp > 0
        if version == 2:
            [node] = response.nodes
            assert node.node_id == 1
            assert [(listener.name, listener.host, listener.port)
                    for listener in node.listeners] == [("PLAINTEXT", "127.0.0.1", broker.port)]


async def test_describe_quorum_of_another_partition(wire: Any) -> None:
    message = "This server does not host this topic-partition."
    requests = [
        [TopicData("t", [PartitionData(0)])],
        metadata_partition(1),
        [TopicData("__cluster_metadata", [PartitionData(0), PartitionData(0)])],
    ]
    for version in (0, 1, 2):
        for topics in requests:
            response = await wire.request(55, version, DescribeQuorumRequest(topics))
            assert response.error_code == 0
            assert [(t.topic_name, [(p.partition_index, p.error_code, p.error_message,
                                     p.leader_id, p.current_voters) for p in t.partitions])
                    for t in response.topics] == [
                (t.topic_name, [(p.partition_index, 3, message if version == 2 else "", 0, [])
                                for p in t.partitions]) for t in topics]
        empty = await wire.request(55, version, DescribeQuorumRequest([]))
        assert (empty.error_code, empty.topics) == (0, [])


# -- ListConfigResources --------------------------------------------------------------------


async def test_list_config_resources(wire: Any, topic: str, broker: RunningBroker) -> None:
    broker.broker.topics.create("a", 1, {})
    v0 = await wire.request(74, 0, ListConfigResourcesRequest())
    assert (v0.error_code, v0.config_resources) == (0, [])
    everything = [("1", 8), ("1", 4), ("a", 2), (topic, 2)]
    cases = [([], everything), ([2, 4, 8, 16, 32], everything), ([2], [("a", 2), (topic, 2)]),
             ([4], [("1", 4)]), ([8], [("1", 8)]), ([16], []), ([32], []),
             ([2, 2], [("a", 2), (topic, 2)]), ([4, 0], []), ([1], []), ([3], []), ([99], [])]
    for types, expected in cases:
        response = await wire.request(74, 1, ListConfigResourcesRequest(resource_types=types))
        valid = all(t in (2, 4, 8, 16, 32) for t in types)
        assert response.error_code == (0 if valid else 35), types
        assert [(r.resource_name, r.resource_type)
                for r in response.config_resources] == expected, types


# -- AlterReplicaLogDirs --------------------------------------------------------------------


async def describe_dirs(wire: Any) -> dict[str, list[tuple[str, int, bool]]]:
    response = await wire.request(35, 4, DescribeLogDirsRequest(topics=None))
    return {r.log_dir: [(t.name, p.partition_index, p.is_future_key)
                        for t in r.topics for p in t.partitions] for r in response.results}


async def test_alter_replica_log_dirs_answers(wire: Any, broker: RunningBroker,
                                              topic: str) -> None:
    d1, d2 = broker.broker.logs.log_dirs
    topics = broker.broker.topics
    topics.log(topic, 0), topics.log(topic, 1)
    home = {p: broker.broker.logs.log_dir_of(topic, p) for p in (0, 1)}
    assert sorted(home.values()) == [d1, d2]
    other = {d1: d2, d2: d1}
    D, T = AlterReplicaLogDir, AlterReplicaLogDirTopic
    for version in (1, 2):
        response = await wire.request(34, version, AlterReplicaLogDirsRequest(dirs=[
            D(home[0], [T(topic, [0, 1, 7]), T("nope", [0])]),
            D("/nonexistent", [T(topic, [1]), T("x" * 220, [0])]),
            D(home[0] + "/", [T("y", [0])]),
            D(os.path.relpath(home[0]), [T("z", [0])]),
            D(home[0], [T("y" * 200, [0])]),
        ]))
        assert [(r.topic_name, [(p.partition_index, p.error_code) for p in r.partitions])
                for r in response.results] == [
            (topic, [(0, 0), (1, 57), (7, 3)]), ("nope", [(0, 3)]), ("x" * 220, [(0, 17)]),
            ("y", [(0, 57)]), ("z", [(0, 57)]), ("y" * 200, [(0, 3)])]
    assert {p: broker.broker.logs.log_dir_of(topic, p) for p in (0, 1)} == home
    # The last destination named wins: partition 0 goes to the other dir.
    response = await wire.request(34, 2, AlterReplicaLogDirsRequest(dirs=[
        D(home[0], [T(topic, [0])]), D(other[home[0]], [T(topic, [0])])]))
    assert [(p.partition_index, p.error_code) for p in response.results[0].partitions] == [(0, 0)]
    assert broker.broker.logs.log_dir_of(topic, 0) == other[home[0]]
    dirs = await describe_dirs(wire)
    assert dirs[other[home[0]]].count((topic, 0, False)) == 1
    assert (topic, 0, False) not in dirs[home[0]]


async def test_a_move_in_progress_is_a_future_replica(wire: Any, broker: RunningBroker,
                                                      topic: str, monkeypatch: Any) -> None:
    """While the bulk copy runs, DescribeLogDirs lists the partition in both dirs, as a
    future replica in its destination; other requests are served meanwhile."""
    from storage.log_move import LogMove
    from tests.wire import WireClient

    topics = broker.broker.topics
    topics.log(topic, 0)
    home = broker.broker.logs.log_dir_of(topic, 0)
    [other] = [d for d in broker.broker.logs.log_dirs if d != home]
    copied, release = threading.Event(), threading.Event()
    bulk = LogMove.copy_bulk

    def paused_copy(self: LogMove) -> None:
        bulk(self)
        copied.set()
        assert release.wait(30)

    monkeypatch.setattr(LogMove, "copy_bulk", paused_copy)
    await wire.send(34, 2, AlterReplicaLogDirsRequest(dirs=[
        AlterReplicaLogDir(other, [AlterReplicaLogDirTopic(topic, [0])])]))
    assert await trio.to_thread.run_sync(copied.wait, 30)
    second = await WireClient.connect(broker.host, broker.port)
    try:
        dirs = await describe_dirs(second)
    finally:
        await second.aclose()
    assert (topic, 0, False) in dirs[home] and (topic, 0, True) in dirs[other]
    release.set()
    _, response = await wire.receive(34, 2)
    assert response.results[0].partitions[0].error_code == 0
    dirs = await describe_dirs(wire)
    assert (topic, 0, False) in dirs[other] and (topic, 0, True) not in dirs[other]
    assert not any(p == (topic, 0, False) for p in dirs[home])


async def test_a_failed_copy_is_a_storage_error(wire: Any, broker: RunningBroker, topic: str,
                                                monkeypatch: Any) -> None:
    from storage.log_move import LogMove

    broker.broker.topics.log(topic, 0)
    home = broker.broker.logs.log_dir_of(topic, 0)
    [other] = [d for d in broker.broker.logs.log_dirs if d != home]

    def full_disk(self: LogMove) -> None:
        os.makedirs(self.future_path)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LogMove, "copy_bulk", full_disk)
    response = await wire.request(34, 2, AlterReplicaLogDirsRequest(dirs=[
        AlterReplicaLogDir(other, [AlterReplicaLogDirTopic(topic, [0])])]))
    assert response.results[0].partitions[0].error_code == 56
    assert broker.broker.logs.log_dir_of(topic, 0) == home
    assert not [n for n in os.listdir(other) if n.endswith("-future")]
