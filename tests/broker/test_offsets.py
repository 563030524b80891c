"""ListOffsets v1-11, OffsetForLeaderEpoch v2-4, DeleteRecords v0-2 at exact versions.

Expected answers come from Apache Kafka 4.4 given the same requests and data.
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol.errors import ErrorCode
from protocol.messages.delete_records_request import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsTopic,
)
from protocol.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from protocol.messages.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from protocol.records import build_batch

LIST_OFFSETS, DELETE_RECORDS, OFFSET_FOR_LEADER_EPOCH = 2, 21, 23
T0 = 1_700_000_000_000


def seed(running: Any, name: str = "t") -> None:
    """Partition 0: offsets 0-2 at T0+0/10/20, 3-5 at T0+100/110/120, 6-7 at T0+50.
    Partition 1: empty."""
    topics = running.broker.topics
    topics.create(name, 2)
    log = topics.log(name, 0)
    log.append(build_batch([(b"k", b"a", [], T0 + i * 10) for i in range(3)]))
    log.append(build_batch([(b"k", b"b", [], T0 + 100 + i * 10) for i in range(3)]))
    log.append(build_batch([(b"k", b"c", [], T0 + 50) for _ in range(2)]))


async def list_offsets(wire: Any, version: int, partitions: list[tuple[int, int]],
                       topic: str = "t", **kw: Any) -> list[tuple[Any, ...]]:
    replica_id = kw.pop("replica_id", -1)
    isolation_level = kw.pop("isolation_level", 0)
    body = ListOffsetsRequest(
        replica_id=replica_id, isolation_level=isolation_level, topics=[ListOffsetsTopic(
            name=topic, partitions=[ListOffsetsPartition(partition_index=p, timestamp=ts, **kw)
                                    for p, ts in partitions])])
    response = await wire.request(LIST_OFFSETS, version, body)
    return [(p.partition_index, p.error_code, p.timestamp, p.offset, p.leader_epoch)
            for t in response.topics for p in t.partitions]


# ------------------------------------------------------------------------------ ListOffsets

CASES = [
    # (timestamp, partition 0 answer, partition 1 answer) as (error, ts, offset, epoch)
    (-1, (0, -1, 8, 0), (0, -1, 0, 0)),
    (-2, (0, -1, 0, 0), (0, -1, 0, 0)),
    (-3, (0, T0 + 120, 5, 0), (0, -1, -1, -1)),
    (-4, (0, -1, 0, 0), (0, -1, 0, 0)),
    (-5, (0, -1, -1, -1), (0, -1, -1, -1)),
    (-6, (0, -1, -1, -1), (0, -1, -1, -1)),
    (-7, (35, -1, -1, -1), (35, -1, -1, -1)),
    (0, (0, T0, 0, 0), (0, -1, -1, -1)),
    (T0 + 5, (0, T0 + 10, 1, 0), (0, -1, -1, -1)),
    (T0 + 60, (0, T0 + 100, 3, 0), (0, -1, -1, -1)),
    (T0 + 999, (0, -1, -1, -1), (0, -1, -1, -1)),
]


@pytest.mark.parametrize(("timestamp", "first", "second"), CASES)
async def test_list_offsets_v11(broker, wire, timestamp, first, second) -> None:
    seed(broker)
    got = await list_offsets(wire, 11, [(0, timestamp), (1, timestamp)])
    assert got == [(0, *first), (1, *second)]


@pytest.mark.parametrize(("version", "timestamp", "error"), [
    (1, -3, 35), (6, -3, 35), (7, -3, 0), (7, -4, 35), (8, -4, 0), (8, -5, 35), (9, -5, 0),
    (10, -6, 35), (11, -6, 0), (11, -100, 35), (1, -1, 0), (1, -2, 0), (1, 0, 0)])
async def test_list_offsets_sentinels_by_version(broker, wire, version, timestamp, error) -> None:
    seed(broker)
    [(_, code, *_rest)] = await list_offsets(wire, version, [(0, timestamp)])
    assert code == error


@pytest.mark.parametrize("version", range(1, 12))
async def test_list_offsets_every_version(broker, wire, version) -> None:
    seed(broker)
    got = await list_offsets(wire, version, [(0, -1), (1, -2)])
    epoch = 0 if version >= 4 else -1
    assert got == [(0, 0, -1, 8, epoch), (1, 0, -1, 0, epoch)]
    if version >= 2:
        committed = await list_offsets(wire, version, [(0, -1)], isolation_level=1)
        assert committed == [(0, 0, -1, 8, epoch)]


async def test_list_offsets_errors(broker, wire) -> None:
    seed(broker)
    assert await list_offsets(wire, 4, [(0, -1)], current_leader_epoch=1) == [
        (0, ErrorCode.UNKNOWN_LEADER_EPOCH, -1, -1, -1)]
    assert await list_offsets(wire, 4, [(0, -1)], current_leader_epoch=-3) == [
        (0, ErrorCode.FENCED_LEADER_EPOCH, -1, -1, -1)]
    assert await list_offsets(wire, 4, [(0, -1)], current_leader_epoch=0) == [(0, 0, -1, 8, 0)]
    assert await list_offsets(wire, 4, [(9, -1)]) == [
        (9, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1)]
    assert await list_offsets(wire, 4, [(0, -1)], topic="missing") == [
        (0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1)]
    assert await list_offsets(wire, 4, [(0, -1)], isolation_level=5) == [
        (0, ErrorCode.UNKNOWN_SERVER_ERROR, -1, -1, -1)]
    for replica_id in (1, -2, -5):
        assert await list_offsets(wire, 4, [(0, -1)], replica_id=replica_id) == [
            (0, 0, -1, 8, 0)]


async def test_list_offsets_duplicates_are_invalid(broker, wire) -> None:
    seed(broker)
    body = ListOffsetsRequest(replica_id=-1, topics=[
        ListOffsetsTopic(name="t", partitions=[ListOffsetsPartition(partition_index=0,
                                                                    timestamp=-1)]),
        ListOffsetsTopic(name="t", partitions=[
            ListOffsetsPartition(partition_index=1, timestamp=-1),
            ListOffsetsPartition(partition_index=0, timestamp=-2)]),
        ListOffsetsTopic(name="missing", partitions=[
            ListOffsetsPartition(partition_index=0, timestamp=-1),
            ListOffsetsPartition(partition_index=0, timestamp=-1)]),
    ])
    response = await wire.request(LIST_OFFSETS, 4, body)
    got = [(t.name, p.partition_index, p.error_code, p.offset)
           for t in response.topics for p in t.partitions]
    assert got == [("t", 1, 0, 0), ("t", 0, 42, -1), ("missing", 0, 42, -1)]


# --------------------------------------------------------------------- OffsetForLeaderEpoch


@pytest.mark.parametrize("version", [2, 3, 4])
async def test_offset_for_leader_epoch(broker, wire, version) -> None:
    seed(broker)
    partitions = [(0, 0), (0, 1), (0, -1), (0, -5), (1, 0), (7, 0)]
    body = OffsetForLeaderEpochRequest(replica_id=-1, topics=[OffsetForLeaderTopic(
        topic="t", partitions=[OffsetForLeaderPartition(partition=p, leader_epoch=e)
                               for p, e in partitions])])
    response = await wire.request(OFFSET_FOR_LEADER_EPOCH, version, body)
    got = [(p.partition, p.error_code, p.leader_epoch, p.end_offset)
           for t in response.topics for p in t.partitions]
    assert got == [(0, 0, 0, 8), (0, 0, -1, -1), (0, 0, -1, -1), (0, 0, -5, 0), (1, 0, 0, 0),
                   (7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, -1)]


async def test_offset_for_leader_epoch_checks_and_log_start(broker, wire) -> None:
    seed(broker)
    broker.broker.topics.log("t", 0).delete_records(3)
    body = OffsetForLeaderEpochRequest(replica_id=-1, topics=[
        OffsetForLeaderTopic(topic="t", partitions=[
            OffsetForLeaderPartition(partition=0, current_leader_epoch=1, leader_epoch=0),
            OffsetForLeaderPartition(partition=0, current_leader_epoch=-7, leader_epoch=0),
            OffsetForLeaderPartition(partition=0, current_leader_epoch=0, leader_epoch=-5)]),
        OffsetForLeaderTopic(topic="missing", partitions=[
            OffsetForLeaderPartition(partition=0, leader_epoch=0)])])
    response = await wire.request(OFFSET_FOR_LEADER_EPOCH, 4, body)
    got = [(t.topic, p.error_code, p.leader_epoch, p.end_offset)
           for t in response.topics for p in t.partitions]
    assert got == [("t", 75, -1, -1), ("t", 74, -1, -1), ("t", 0, -5, 3), ("missing", 3, -1, -1)]


# ---------------------------------------------------------------------------- DeleteRecords


async def delete_records(wire: Any, version: int, partitions: list[tuple[int, int]],
                         topic: str = "t") -> list[tuple[int, int, int]]:
    body = DeleteRecordsRequest(timeout_ms=1000, topics=[DeleteRecordsTopic(name=topic, partitions=[
        DeleteRecordsPartition(partition_index=p, offset=o) for p, o in partitions])])
    response = await wire.request(DELETE_RECORDS, version, body)
    return [(p.partition_index, p.low_watermark, p.error_code)
            for t in response.topics for p in t.partitions]


@pytest.mark.parametrize("version", [0, 1, 2])
async def test_delete_records(broker, wire, version) -> None:
    seed(broker)
    log = broker.broker.topics.log("t", 0)
    assert await delete_records(wire, version, [(0, 2)]) == [(0, 2, 0)]
    assert log.log_start_offset == 2
    assert await delete_records(wire, version, [(0, 1)]) == [(0, 2, 0)]  # never backwards
    assert await delete_records(wire, version, [(0, 100), (1, -2)]) == [
        (0, -1, ErrorCode.OFFSET_OUT_OF_RANGE), (1, -1, ErrorCode.OFFSET_OUT_OF_RANGE)]
    assert await delete_records(wire, version, [(0, -1), (9, 1)]) == [
        (0, 8, 0), (9, -1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]
    assert log.log_start_offset == 8
    assert await delete_records(wire, version, [(0, 1)], topic="missing") == [
        (0, -1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]
    # A partition named twice keeps its place and its last offset.
    assert await delete_records(wire, version, [(1, -2), (0, 8), (1, -1)]) == [
        (1, 0, 0), (0, 8, 0)]
    # The new log start shows in ListOffsets.
    assert await list_offsets(wire, 11, [(0, -2)]) == [(0, 0, -1, 8, 0)]


async def test_delete_records_refuses_internal_topics(broker, wire) -> None:
    broker.broker.topics.create("__consumer_offsets", 1)
    assert await delete_records(wire, 2, [(0, 0)], topic="__consumer_offsets") == [
        (0, -1, ErrorCode.INVALID_TOPIC_EXCEPTION)]
