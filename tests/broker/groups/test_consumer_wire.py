"""KIP-848 over the wire: ConsumerGroupHeartbeat v0-1, ConsumerGroupDescribe v0, the
`group.version` feature in ApiVersions, consumer groups in ListGroups / DescribeGroups /
OffsetCommit / OffsetFetch, and their records in `__consumer_offsets` across a restart.
Expected answers were taken from Apache Kafka 4.4 (same requests, compared by hand)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from broker.config import BrokerConfig
from broker.groups.records import OFFSETS_TOPIC, decode_key, partition_for
from broker.server import Broker
from protocol.errors import ErrorCode as E
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.consumer_group_describe_request import ConsumerGroupDescribeRequest
from protocol.messages.consumer_group_heartbeat_request import (
    ConsumerGroupHeartbeatRequest,
    TopicPartitions,
)
from protocol.messages.describe_groups_request import DescribeGroupsRequest
from protocol.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from protocol.messages.list_groups_request import ListGroupsRequest
from protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from protocol.messages.offset_fetch_request import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopics,
)
from protocol.records import iter_batches, iter_records
from tests.wire import WireClient


@pytest.fixture
def broker_config(tmp_path) -> dict[str, Any]:
    return {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(tmp_path / "data"),
            "offsets.topic.num.partitions": "3", "group.initial.rebalance.delay.ms": "0"}


def join(group: str, member: str, topics: list[str], **kw: Any) -> ConsumerGroupHeartbeatRequest:
    return ConsumerGroupHeartbeatRequest(group_id=group, member_id=member, member_epoch=0,
                                         rebalance_timeout_ms=30000,
                                         subscribed_topic_names=topics, topic_partitions=[],
                                         **kw)


async def test_api_versions_advertises_group_version(wire):
    request = ApiVersionsRequest(client_software_name="t", client_software_version="1")
    res = await wire.request(18, 3, request)
    keys = {k.api_key: (k.min_version, k.max_version) for k in res.api_keys}
    assert keys[68] == (0, 1) and keys[69] == (0, 0)
    assert [(f.name, f.min_version, f.max_version) for f in res.supported_features] == [
        ("group.version", 0, 1)]
    assert [(f.name, f.min_version_level, f.max_version_level)
            for f in res.finalized_features] == [("group.version", 1, 1)]
    assert res.finalized_features_epoch >= 0


@pytest.mark.parametrize("version", [0, 1])
async def test_heartbeat_versions(broker, wire, version):
    topic = broker.broker.topics.create("t", 3)
    member = "" if version == 0 else "m1"
    res = await wire.request(68, version, join("g", member, ["t"]))
    assert res.error_code == E.NONE and res.error_message is None
    assert res.member_epoch == 1 and res.heartbeat_interval_ms == 5000
    member = res.member_id
    assert member and (version == 0 or member == "m1")
    assert [(tp.topic_id, tp.partitions) for tp in res.assignment.topic_partitions] == [
        (topic.topic_id, [0, 1, 2])]
    owned = [TopicPartitions(topic_id=topic.topic_id, partitions=[0, 1, 2])]
    res = await wire.request(68, version, ConsumerGroupHeartbeatRequest(
        group_id="g", member_id=member, member_epoch=1, topic_partitions=owned))
    assert (res.error_code, res.member_epoch, res.assignment) == (E.NONE, 1, None)
    res = await wire.request(68, version, ConsumerGroupHeartbeatRequest(
        group_id="g", member_id=member, member_epoch=7))
    assert res.error_code == E.FENCED_MEMBER_EPOCH
    assert res.error_message == (
        "The consumer group member has a greater member epoch (7) than the one known by the "
        "group coordinator (1). The member must abandon all its partitions and rejoin.")
    assert res.member_id is None and res.member_epoch == 0 and res.assignment is None
    res = await wire.request(68, version, ConsumerGroupHeartbeatRequest(
        group_id="g", member_id=member, member_epoch=-1))
    assert (res.error_code, res.member_id, res.member_epoch, res.heartbeat_interval_ms) == (
        E.NONE, member, -1, 0)


async def test_heartbeat_v1_regex_and_errors(broker, wire):
    broker.broker.topics.create("ta", 1)
    broker.broker.topics.create("tb", 1)
    broker.broker.topics.create("other", 1)
    res = await wire.request(68, 1, ConsumerGroupHeartbeatRequest(
        group_id="g", member_id="m", member_epoch=0, rebalance_timeout_ms=1000,
        subscribed_topic_regex="t.*", topic_partitions=[]))
    assert res.error_code == E.NONE
    names = {broker.broker.topics.by_id(tp.topic_id).name
             for tp in res.assignment.topic_partitions}
    assert names == {"ta", "tb"}
    cases = [
        (ConsumerGroupHeartbeatRequest(group_id="g", member_id="", member_epoch=0,
                                       rebalance_timeout_ms=1000, subscribed_topic_names=["ta"],
                                       topic_partitions=[]),
         E.INVALID_REQUEST, "MemberId can't be empty."),
        (join("g", "x", ["ta"], server_assignor="foo"), E.UNSUPPORTED_ASSIGNOR,
         "ServerAssignor foo is not supported. Supported assignors: uniform, range."),
        (ConsumerGroupHeartbeatRequest(group_id="g", member_id="zz", member_epoch=1),
         E.UNKNOWN_MEMBER_ID, "Member zz is not a member of group g."),
        (ConsumerGroupHeartbeatRequest(group_id="nog", member_id="m", member_epoch=5),
         E.GROUP_ID_NOT_FOUND, "Consumer group nog not found."),
        (join("g", "s2", ["ta"], instance_id=""), E.INVALID_REQUEST,
         "InstanceId can't be empty."),
    ]
    for request, code, message in cases:
        res = await wire.request(68, 1, request)
        assert (res.error_code, res.error_message) == (code, message)
    res = await wire.request(68, 1, ConsumerGroupHeartbeatRequest(
        group_id="g", member_id="m", member_epoch=0, rebalance_timeout_ms=1000,
        subscribed_topic_regex="(", topic_partitions=[]))
    assert res.error_code == E.INVALID_REGULAR_EXPRESSION


async def test_regex_matches_internal_topics_too(broker, wire):
    """Kafka matches a subscription regex against every topic, internal ones included
    (franz-go's Test848RegexBrokerResolves is assigned __consumer_offsets by Kafka 4.4)."""
    broker.broker.topics.create("orders", 1)
    broker.broker.groups.ensure_offsets_topic()
    res = await wire.request(68, 1, ConsumerGroupHeartbeatRequest(
        group_id="g", member_id="m", member_epoch=0, rebalance_timeout_ms=1000,
        subscribed_topic_regex="orders|__consumer_offsets", topic_partitions=[]))
    assert res.error_code == E.NONE
    offsets_topic = broker.broker.topics.get("__consumer_offsets")
    assert offsets_topic is not None and offsets_topic.internal
    assigned: dict[str, int] = {}
    for tp in res.assignment.topic_partitions:
        name = broker.broker.topics.by_id(tp.topic_id).name
        assigned[name] = assigned.get(name, 0) + len(tp.partitions)
    assert assigned == {"orders": 1, "__consumer_offsets": offsets_topic.partitions}


async def test_describe_list_and_classic_apis(broker, wire):
    topic = broker.broker.topics.create("t", 2)
    await wire.request(68, 1, join("g", "m1", ["t"], instance_id="i1", rack_id="r1"))
    res = await wire.request(69, 0, ConsumerGroupDescribeRequest(group_ids=["g", "nope"]))
    g, nope = res.groups
    assert (g.error_code, g.group_state, g.group_epoch, g.assignment_epoch, g.assignor_name) == (
        E.NONE, "Stable", 1, 1, "uniform")
    [m] = g.members
    assert (m.member_id, m.instance_id, m.rack_id, m.member_epoch, m.client_host,
            m.subscribed_topic_names) == ("m1", "i1", "r1", 1, "/127.0.0.1", ["t"])
    assert m.client_id == "odradek-tests"
    assert [(tp.topic_id, tp.topic_name, tp.partitions)
            for tp in m.assignment.topic_partitions] == [(topic.topic_id, "t", [0, 1])]
    assert m.target_assignment == m.assignment
    assert (nope.error_code, nope.error_message) == (E.GROUP_ID_NOT_FOUND,
                                                     "Group nope not found.")
    # A classic group: not a consumer group, and the other way round.
    await wire.request(11, 9, JoinGroupRequest(
        group_id="cg", session_timeout_ms=10000, rebalance_timeout_ms=10000, member_id="",
        group_instance_id="ci", protocol_type="consumer",
        protocols=[JoinGroupRequestProtocol(name="range", metadata=b"")]))
    res = await wire.request(69, 0, ConsumerGroupDescribeRequest(group_ids=["cg"]))
    assert (res.groups[0].error_code, res.groups[0].error_message) == (
        E.GROUP_ID_NOT_FOUND, "Group cg is not a consumer group.")
    res = await wire.request(68, 1, join("cg", "m9", ["t"]))
    assert (res.error_code, res.error_message) == (E.GROUP_ID_NOT_FOUND,
                                                   "Group cg is not a consumer group.")
    res = await wire.request(15, 6, DescribeGroupsRequest(groups=["g"]))
    assert (res.groups[0].error_code, res.groups[0].error_message,
            res.groups[0].group_state) == (E.GROUP_ID_NOT_FOUND,
                                           "Group g is not a classic group.", "Dead")
    res = await wire.request(15, 5, DescribeGroupsRequest(groups=["g"]))
    assert (res.groups[0].error_code, res.groups[0].group_state) == (E.NONE, "Dead")
    res = await wire.request(16, 5, ListGroupsRequest())
    listed = sorted((x.group_id, x.protocol_type, x.group_state, x.group_type)
                    for x in res.groups)
    assert listed == [("cg", "consumer", "CompletingRebalance", "classic"),
                      ("g", "consumer", "Stable", "consumer")]
    res = await wire.request(16, 5, ListGroupsRequest(types_filter=["Consumer"]))
    assert [x.group_id for x in res.groups] == ["g"]
    res = await wire.request(16, 4, ListGroupsRequest(states_filter=["stable"]))
    assert [x.group_id for x in res.groups] == ["g"]


def commit(version: int, member: str, epoch: int) -> OffsetCommitRequest:
    return OffsetCommitRequest(
        group_id="g", generation_id_or_member_epoch=epoch, member_id=member,
        topics=[OffsetCommitRequestTopic(name="t", partitions=[
            OffsetCommitRequestPartition(partition_index=0, committed_offset=3)])])


def fetch(member: str | None, epoch: int) -> OffsetFetchRequest:
    return OffsetFetchRequest(groups=[OffsetFetchRequestGroup(
        group_id="g", member_id=member, member_epoch=epoch,
        topics=[OffsetFetchRequestTopics(name="t", partition_indexes=[0])])])


async def test_offsets_with_member_epochs(broker, wire):
    broker.broker.topics.create("t", 1)
    await wire.request(68, 1, join("g", "m1", ["t"]))
    res = await wire.request(8, 9, commit(9, "m1", 1))
    assert res.topics[0].partitions[0].error_code == E.NONE
    res = await wire.request(8, 9, commit(9, "m1", 0))
    assert res.topics[0].partitions[0].error_code == E.STALE_MEMBER_EPOCH
    res = await wire.request(8, 9, commit(9, "zz", 1))
    assert res.topics[0].partitions[0].error_code == E.UNKNOWN_MEMBER_ID
    res = await wire.request(8, 8, commit(8, "m1", 1))
    assert res.topics[0].partitions[0].error_code == E.UNSUPPORTED_VERSION
    res = await wire.request(9, 9, fetch("m1", 1))
    assert res.groups[0].error_code == E.NONE
    assert res.groups[0].topics[0].partitions[0].committed_offset == 3
    res = await wire.request(9, 9, fetch("m1", 0))
    assert (res.groups[0].error_code, res.groups[0].topics) == (E.STALE_MEMBER_EPOCH, [])
    res = await wire.request(9, 9, fetch("zz", 1))
    assert res.groups[0].error_code == E.UNKNOWN_MEMBER_ID
    res = await wire.request(9, 9, fetch(None, -1))  # an admin client
    assert res.groups[0].topics[0].partitions[0].committed_offset == 3


def consumer_record_types(broker: Broker, group: str) -> list[tuple[int, bool]]:
    plog = broker.topics.log(OFFSETS_TOPIC, partition_for(group, 3))
    assert plog is not None
    data = plog.read_bytes(0, 1 << 20, max_offset=plog.high_watermark)
    out = []
    for pos, header in iter_batches(data):
        for record in iter_records(data, pos, header):
            kind, version = decode_key(record.key)
            if kind == "consumer":
                out.append((version, record.value is None))
    return out


async def test_state_survives_a_restart(broker_config):
    async with trio.open_nursery() as nursery:
        first = Broker(BrokerConfig(broker_config))
        ports = await nursery.start(first.serve)
        topic = first.topics.create("t", 4)
        wire = await WireClient.connect("127.0.0.1", ports[0])
        a = await wire.request(68, 1, join("g", "a", ["t"]))
        b = await wire.request(68, 1, join("g", "b", ["t"]))
        owned = [TopicPartitions(topic_id=topic.topic_id, partitions=[0, 1, 2, 3])]
        a = await wire.request(68, 1, ConsumerGroupHeartbeatRequest(
            group_id="g", member_id="a", member_epoch=1, topic_partitions=owned))
        kept = a.assignment.topic_partitions[0].partitions
        a = await wire.request(68, 1, ConsumerGroupHeartbeatRequest(
            group_id="g", member_id="a", member_epoch=1,
            topic_partitions=[TopicPartitions(topic_id=topic.topic_id, partitions=kept)]))
        b = await wire.request(68, 1, ConsumerGroupHeartbeatRequest(
            group_id="g", member_id="b", member_epoch=2, topic_partitions=[]))
        assert (a.member_epoch, b.member_epoch) == (2, 2)
        await wire.request(68, 1, join("g", "c", ["t"]))
        await wire.request(68, 1, ConsumerGroupHeartbeatRequest(
            group_id="g", member_id="c", member_epoch=-1))
        before = first.groups.consumer.groups["g"]
        state = (before.group_epoch, before.target_epoch, dict(before.target),
                 {m: (x.member_epoch, x.assigned) for m, x in before.members.items()})
        types = consumer_record_types(first, "g")
        await wire.aclose()
        nursery.cancel_scope.cancel()
    first.close()
    # Kafka's record types, and tombstones for the member that left.
    assert {t for t, _ in types} == {3, 5, 6, 7, 8}
    assert (5, True) in types and (7, True) in types and (8, True) in types
    async with trio.open_nursery() as nursery:
        second = Broker(BrokerConfig(broker_config))
        ports = await nursery.start(second.serve)
        after = second.groups.consumer.groups["g"]
        assert (after.group_epoch, after.target_epoch, dict(after.target),
                {m: (x.member_epoch, x.assigned) for m, x in after.members.items()}) == state
        wire = await WireClient.connect("127.0.0.1", ports[0])
        # The members carry on with their epochs after the restart; c's leave (group epoch
        # 4) had not been assigned yet: b's heartbeat does it and moves b to epoch 4.
        assert state[:2] == (4, 3)
        res = await wire.request(68, 1, ConsumerGroupHeartbeatRequest(
            group_id="g", member_id="b", member_epoch=state[3]["b"][0]))
        assert res.error_code == E.NONE and res.member_epoch == 4
        res = await wire.request(69, 0, ConsumerGroupDescribeRequest(group_ids=["g"]))
        assert sorted(m.member_id for m in res.groups[0].members) == ["a", "b"]
        await wire.aclose()
        nursery.cancel_scope.cancel()
    second.close()
