"""Group APIs over the wire at every advertised version, and `__consumer_offsets` records."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio

from broker.config import BrokerConfig
from broker.groups.records import (
    OFFSETS_TOPIC,
    decode_group_value,
    decode_key,
    decode_offset_value,
    partition_for,
)
from broker.handlers import REGISTRY, load_all
from broker.server import Broker
from protocol.errors import ErrorCode as E
from protocol.messages.delete_groups_request import DeleteGroupsRequest
from protocol.messages.describe_groups_request import DescribeGroupsRequest
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.heartbeat_request import HeartbeatRequest
from protocol.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from protocol.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from protocol.messages.list_groups_request import ListGroupsRequest
from protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from protocol.messages.offset_delete_request import (
    OffsetDeleteRequest,
    OffsetDeleteRequestPartition,
    OffsetDeleteRequestTopic,
)
from protocol.messages.offset_fetch_request import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopic,
    OffsetFetchRequestTopics,
)
from protocol.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment
from protocol.records import iter_batches, iter_records
from tests.wire import WireClient


@pytest.fixture
def broker_config(tmp_path) -> dict[str, Any]:
    return {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(tmp_path / "data"),
            "group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "10",
            "offsets.topic.num.partitions": "3"}


def test_advertised_versions():
    load_all()
    assert {k: (r.min_version, r.max_version) for k, r in REGISTRY.items()
            if k in (8, 9, 10, 11, 12, 13, 14, 15, 16, 42, 47)} == {
        8: (2, 10), 9: (1, 10), 10: (0, 6), 11: (0, 9), 12: (0, 4), 13: (0, 5), 14: (0, 5),
        15: (0, 6), 16: (0, 5), 42: (0, 2), 47: (0, 0)}
    assert (REGISTRY[68].min_version, REGISTRY[68].max_version) == (0, 1)  # KIP-848
    assert (REGISTRY[69].min_version, REGISTRY[69].max_version) == (0, 0)


@pytest.mark.parametrize("version", range(0, 7))
async def test_find_coordinator(broker, wire, version):
    if version >= 4:
        body = FindCoordinatorRequest(key_type=0, coordinator_keys=["a", "b"])
    else:
        body = FindCoordinatorRequest(key="a", key_type=0)
    res = await wire.request(10, version, body)
    if version >= 4:
        assert [(c.key, c.error_code, c.port) for c in res.coordinators] == [
            ("a", 0, broker.port), ("b", 0, broker.port)]
        txn = await wire.request(10, version, FindCoordinatorRequest(
            key_type=1, coordinator_keys=["t"]))
        assert (txn.coordinators[0].error_code, txn.coordinators[0].port) == (0, broker.port)
        bad = await wire.request(10, version, FindCoordinatorRequest(
            key_type=7, coordinator_keys=["t"]))
        assert bad.coordinators[0].error_code == E.INVALID_REQUEST
    else:
        assert (res.error_code, res.node_id, res.port) == (0, 1, broker.port)
        if version >= 1:
            assert res.error_message == "NONE"
            txn = await wire.request(10, version, FindCoordinatorRequest(key="t", key_type=1))
            assert (txn.error_code, txn.node_id) == (0, 1)  # the transaction coordinator
    topic = broker.broker.topics.get(OFFSETS_TOPIC)
    assert topic is not None and topic.internal and topic.partitions == 3
    assert topic.configs == {"cleanup.policy": "compact", "segment.bytes": "104857600",
                             "compression.type": "producer"}


def protocols() -> list[JoinGroupRequestProtocol]:
    return [JoinGroupRequestProtocol(name="range", metadata=b"m")]


async def run_group(wire: WireClient, jv: int, sv: int, hv: int, lv: int) -> dict[str, Any]:
    """One member through join, sync, heartbeat and leave at the given versions."""
    out: dict[str, Any] = {}
    group = f"g-{jv}-{sv}-{hv}-{lv}"
    join = JoinGroupRequest(group_id=group, session_timeout_ms=10000,
                            rebalance_timeout_ms=10000, member_id="",
                            protocol_type="consumer", protocols=protocols())
    res = await wire.request(11, jv, join)
    if jv >= 4:
        assert res.error_code == E.MEMBER_ID_REQUIRED and res.member_id
        join.member_id = res.member_id
        res = await wire.request(11, jv, join)
    assert res.error_code == E.NONE and res.leader == res.member_id and res.generation_id == 1
    assert [m.member_id for m in res.members] == [res.member_id]
    assert res.protocol_name == "range"
    assert res.protocol_type == ("consumer" if jv >= 7 else None)
    member, generation = res.member_id, res.generation_id
    sync = SyncGroupRequest(group_id=group, generation_id=generation, member_id=member,
                            assignments=[SyncGroupRequestAssignment(member, b"mine")])
    if sv >= 5:
        sync.protocol_type, sync.protocol_name = "consumer", "range"
    res = await wire.request(14, sv, sync)
    assert (res.error_code, res.assignment) == (E.NONE, b"mine")
    assert res.protocol_name == ("range" if sv >= 5 else None)
    res = await wire.request(12, hv, HeartbeatRequest(group_id=group, generation_id=generation,
                                                      member_id=member))
    assert res.error_code == E.NONE
    res = await wire.request(12, hv, HeartbeatRequest(group_id=group, generation_id=9,
                                                      member_id=member))
    assert res.error_code == E.ILLEGAL_GENERATION
    if lv >= 3:
        res = await wire.request(13, lv, LeaveGroupRequest(group_id=group, members=[
            MemberIdentity(member_id=member), MemberIdentity(member_id="ghost")]))
        assert res.error_code == E.NONE
        assert [(m.member_id, m.error_code) for m in res.members] == [
            (member, E.NONE), ("ghost", E.UNKNOWN_MEMBER_ID)]
    else:
        res = await wire.request(13, lv, LeaveGroupRequest(group_id=group, member_id=member))
        assert res.error_code == E.NONE
        res = await wire.request(13, lv, LeaveGroupRequest(group_id=group, member_id=member))
        assert res.error_code == E.UNKNOWN_MEMBER_ID
    return out


@pytest.mark.parametrize("jv", range(0, 10))
async def test_join_group_versions(wire, jv):
    await run_group(wire, jv, min(jv, 5), min(jv, 4), min(jv, 5))


@pytest.mark.parametrize(("sv", "hv", "lv"), [(0, 0, 0), (1, 1, 1), (2, 2, 2), (3, 3, 3),
                                              (4, 4, 4), (5, 4, 5)])
async def test_sync_heartbeat_leave_versions(wire, sv, hv, lv):
    await run_group(wire, 5, sv, hv, lv)


async def test_sync_v5_requires_protocol_type_and_name(wire):
    res = await wire.request(14, 5, SyncGroupRequest(group_id="x", generation_id=1,
                                                     member_id="m"))
    assert res.error_code == E.INCONSISTENT_GROUP_PROTOCOL
    res = await wire.request(14, 4, SyncGroupRequest(group_id="x", generation_id=1,
                                                     member_id="m"))
    assert res.error_code == E.UNKNOWN_MEMBER_ID


def commit_body(version: int, group: str, topic_id: Any = None, **kw: Any) -> OffsetCommitRequest:
    parts = [OffsetCommitRequestPartition(partition_index=0, committed_offset=7,
                                          committed_metadata="md"),
             OffsetCommitRequestPartition(partition_index=5, committed_offset=1)]
    topic = OffsetCommitRequestTopic(name="t" if version < 10 else "",
                                     topic_id=topic_id if version >= 10 else
                                     OffsetCommitRequestTopic().topic_id, partitions=parts)
    return OffsetCommitRequest(group_id=group, topics=[topic], **kw)


@pytest.mark.parametrize("version", range(2, 11))
async def test_offset_commit_and_fetch_versions(broker, wire, version):
    topic = broker.broker.topics.create("t", 2)
    group = f"oc{version}"
    res = await wire.request(8, version, commit_body(version, group, topic.topic_id))
    assert [(p.partition_index, p.error_code) for p in res.topics[0].partitions] == [
        (0, E.NONE), (5, E.UNKNOWN_TOPIC_OR_PARTITION)]
    if version >= 10:
        assert res.topics[0].topic_id == topic.topic_id
        res = await wire.request(8, version, commit_body(version, group, topic_id=uuid.uuid4()))
        assert [p.error_code for p in res.topics[0].partitions] == [E.UNKNOWN_TOPIC_ID] * 2
    # With a generation but no such group.
    res = await wire.request(8, version, commit_body(version, "none", topic.topic_id,
                                                     generation_id_or_member_epoch=3,
                                                     member_id="m"))
    assert res.topics[0].partitions[0].error_code == (
        E.GROUP_ID_NOT_FOUND if version >= 9 else E.ILLEGAL_GENERATION)
    # Fetch at the matching OffsetFetch version.
    fv = min(version, 10)
    if fv < 8:
        res = await wire.request(9, fv, OffsetFetchRequest(group_id=group, topics=[
            OffsetFetchRequestTopic(name="t", partition_indexes=[0, 1])]))
        rows = [(p.partition_index, p.committed_offset, p.metadata)
                for p in res.topics[0].partitions]
    else:
        res = await wire.request(9, fv, OffsetFetchRequest(groups=[OffsetFetchRequestGroup(
            group_id=group, topics=[OffsetFetchRequestTopics(
                name="t" if fv < 10 else "", topic_id=topic.topic_id if fv >= 10 else
                OffsetFetchRequestTopics().topic_id, partition_indexes=[0, 1])])]))
        rows = [(p.partition_index, p.committed_offset, p.metadata)
                for p in res.groups[0].topics[0].partitions]
    assert rows == [(0, 7, "md"), (1, -1, "")]


@pytest.mark.parametrize("version", range(1, 11))
async def test_offset_fetch_all_topics_and_unknown_group(broker, wire, version):
    topic = broker.broker.topics.create("t", 2)
    await wire.request(8, 8, commit_body(8, "f"))
    if version < 8:
        if version >= 2:
            res = await wire.request(9, version, OffsetFetchRequest(group_id="f", topics=None))
            assert [(t.name, [p.committed_offset for p in t.partitions]) for t in res.topics] \
                == [("t", [7])]
        res = await wire.request(9, version, OffsetFetchRequest(group_id="nobody", topics=[
            OffsetFetchRequestTopic(name="t", partition_indexes=[0])]))
        assert res.topics[0].partitions[0].committed_offset == -1
        assert res.error_code == 0
        return
    res = await wire.request(9, version, OffsetFetchRequest(groups=[
        OffsetFetchRequestGroup(group_id="f", topics=None),
        OffsetFetchRequestGroup(group_id="nobody", topics=None)]))
    first, second = res.groups
    assert [[p.committed_offset for p in t.partitions] for t in first.topics] == [[7]]
    if version >= 10:
        assert first.topics[0].topic_id == topic.topic_id
    assert second.topics == [] and second.error_code == 0


@pytest.mark.parametrize("version", range(0, 6))
async def test_list_groups_versions(broker, wire, version):
    broker.broker.topics.create("t", 2)
    await wire.request(8, 8, commit_body(8, "simple"))
    res = await wire.request(16, version, ListGroupsRequest())
    assert [(g.group_id, g.protocol_type) for g in res.groups] == [("simple", "")]
    assert res.groups[0].group_state == ("Empty" if version >= 4 else "")
    assert res.groups[0].group_type == ("classic" if version >= 5 else "")
    if version >= 4:
        res = await wire.request(16, version, ListGroupsRequest(states_filter=["STABLE"]))
        assert res.groups == []
    if version >= 5:
        res = await wire.request(16, version, ListGroupsRequest(types_filter=["consumer"]))
        assert res.groups == []


@pytest.mark.parametrize("version", range(0, 7))
async def test_describe_groups_versions(broker, wire, version):
    broker.broker.topics.create("t", 2)
    await wire.request(8, 8, commit_body(8, "simple"))
    res = await wire.request(15, version, DescribeGroupsRequest(groups=["simple", "ghost"]))
    simple, ghost = res.groups
    assert (simple.error_code, simple.group_state) == (0, "Empty")
    if version >= 6:
        assert (ghost.error_code, ghost.error_message) == (E.GROUP_ID_NOT_FOUND,
                                                           "Group ghost not found.")
    else:
        assert (ghost.error_code, ghost.group_state) == (0, "Dead")


@pytest.mark.parametrize("version", range(0, 3))
async def test_delete_groups_versions(broker, wire, version):
    broker.broker.topics.create("t", 2)
    await wire.request(8, 8, commit_body(8, "simple"))
    res = await wire.request(42, version, DeleteGroupsRequest(groups_names=["simple", "ghost"]))
    assert [(r.group_id, r.error_code) for r in res.results] == [
        ("simple", E.NONE), ("ghost", E.GROUP_ID_NOT_FOUND)]
    res = await wire.request(15, 5, DescribeGroupsRequest(groups=["simple"]))
    assert res.groups[0].group_state == "Dead"


async def test_offset_delete(broker, wire):
    broker.broker.topics.create("t", 2)
    await wire.request(8, 8, commit_body(8, "simple"))
    res = await wire.request(47, 0, OffsetDeleteRequest(group_id="simple", topics=[
        OffsetDeleteRequestTopic(name="t", partitions=[OffsetDeleteRequestPartition(0),
                                                       OffsetDeleteRequestPartition(9)]),
        OffsetDeleteRequestTopic(name="nope", partitions=[OffsetDeleteRequestPartition(0)])]))
    assert res.error_code == 0
    assert [[(p.partition_index, p.error_code) for p in t.partitions] for t in res.topics] == [
        [(0, E.NONE), (9, E.UNKNOWN_TOPIC_OR_PARTITION)], [(0, E.UNKNOWN_TOPIC_OR_PARTITION)]]
    res = await wire.request(47, 0, OffsetDeleteRequest(group_id="ghost", topics=[]))
    assert res.error_code == E.GROUP_ID_NOT_FOUND


def offsets_records(broker: Broker, group: str) -> list[tuple[str, Any, Any]]:
    partition = partition_for(group, broker.topics.get(OFFSETS_TOPIC).partitions)
    plog = broker.topics.log(OFFSETS_TOPIC, partition)
    data = plog.read_bytes(0, 1 << 20)
    out = []
    for pos, header in iter_batches(data):
        for record in iter_records(data, pos, header):
            kind, key = decode_key(record.key)
            if key.group != group:
                continue
            if kind == "offset":
                value = decode_offset_value(record.value) if record.value else None
                out.append((kind, (key.group, key.topic, key.partition), value))
            else:
                value = decode_group_value(key.group, record.value, 0) if record.value else None
                out.append((kind, key.group, value))
    return out


async def test_records_in_kafka_format_and_reload(broker_config):
    async with trio.open_nursery() as nursery:
        first = Broker(BrokerConfig(broker_config))
        ports = await nursery.start(first.serve)
        first.topics.create("t", 2)
        wire = await WireClient.connect("127.0.0.1", ports[0])
        await run_group(wire, 5, 5, 4, 2)  # a group that ends Empty
        join = JoinGroupRequest(group_id="live", session_timeout_ms=10000,
                                rebalance_timeout_ms=10000, member_id="",
                                group_instance_id="inst", protocol_type="consumer",
                                protocols=protocols())
        res = await wire.request(11, 5, join)
        await wire.request(14, 5, SyncGroupRequest(
            group_id="live", generation_id=1, member_id=res.member_id, group_instance_id="inst",
            protocol_type="consumer", protocol_name="range",
            assignments=[SyncGroupRequestAssignment(res.member_id, b"A")]))
        await wire.request(8, 8, commit_body(8, "live", generation_id_or_member_epoch=1,
                                             member_id=res.member_id,
                                             group_instance_id="inst"))
        await wire.request(8, 3, commit_body(3, "simple", retention_time_ms=60000))
        await wire.request(8, 8, commit_body(8, "gone"))
        await wire.request(42, 2, DeleteGroupsRequest(groups_names=["gone"]))
        await wire.aclose()
        live = offsets_records(first, "live")
        gone = offsets_records(first, "gone")
        simple = offsets_records(first, "simple")
        nursery.cancel_scope.cancel()
    kinds = [(k, v is None) for k, _, v in live]
    assert kinds == [("group", False), ("offset", False)]
    group_value = live[0][2]
    assert group_value.generation_id == 1 and group_value.protocol_name == "range"
    assert [(m.group_instance_id, m.assignment) for m in group_value.members.values()] == [
        ("inst", b"A")]
    assert live[1][1] == ("live", "t", 0) and live[1][2].offset == 7
    assert live[1][2].metadata == "md" and live[1][2].expire_timestamp is None
    assert simple[0][2].expire_timestamp == simple[0][2].commit_timestamp + 60000
    assert [(k, v is None) for k, _, v in gone] == [("offset", False), ("offset", True),
                                                    ("group", True)]

    second = Broker(BrokerConfig(broker_config))
    coordinator = second.groups.coordinator
    assert "gone" not in coordinator.groups
    live_group = coordinator.groups["live"]
    assert live_group.state.value == "Stable" and live_group.generation_id == 1
    assert live_group.static_members == {"inst": res.member_id}
    assert live_group.members[res.member_id].assignment == b"A"
    assert coordinator.fetch_offsets("live", [("t", 0)])[("t", 0)].offset == 7
    assert coordinator.groups["g-5-5-4-2"].state.value == "Empty"
    # The reloaded static member resumes with heartbeats, without a rebalance.
    assert coordinator.heartbeat(group_id="live", generation_id=1, member_id=res.member_id,
                                 group_instance_id="inst") == E.NONE
    second.close()


async def test_deleting_a_topic_drops_its_committed_offsets(broker) -> None:
    coordinator = broker.broker.groups.coordinator
    broker.broker.topics.create("doomed", 2)
    from protocol.messages.delete_topics_request import DeleteTopicsRequest, DeleteTopicState
    from protocol.messages.offset_commit_request import (
        OffsetCommitRequest,
        OffsetCommitRequestPartition,
        OffsetCommitRequestTopic,
    )
    from tests.wire import WireClient
    client = await WireClient.connect(broker.host, broker.port)
    try:
        response = await client.request(8, 2, OffsetCommitRequest(
            group_id="g-doomed", generation_id_or_member_epoch=-1, member_id="",
            topics=[OffsetCommitRequestTopic(name="doomed", partitions=[
                OffsetCommitRequestPartition(partition_index=p, committed_offset=0)
                for p in range(2)])]))
        assert all(p.error_code == 0 for t in response.topics for p in t.partitions)
        assert set(coordinator.groups["g-doomed"].offsets) == {("doomed", 0), ("doomed", 1)}
        await client.request(20, 6, DeleteTopicsRequest(
            topics=[DeleteTopicState(name="doomed")], timeout_ms=5000))
        assert not coordinator.groups.get("g-doomed") or not coordinator.groups[
            "g-doomed"].offsets
    finally:
        await client.aclose()
