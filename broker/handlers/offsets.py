"""ListOffsets (key 2) v1-11, OffsetForLeaderEpoch (key 23) v2-4, DeleteRecords (key 21) v0-2.

A one-node cluster has one leader epoch, 0, which starts at the log start offset (Kafka
assigns epoch 0 at offset 0 when the partition is created and moves the entry's start
offset up with the log start offset). Behaviour matched against Apache Kafka 4.4:

ListOffsets
  * v0 is not served (KIP-896). A partition named twice in a request (even under two
    entries of the same topic) -> INVALID_REQUEST, answered once, after the others of its
    topic. Unknown topic or partition -> UNKNOWN_TOPIC_OR_PARTITION.
  * `current_leader_epoch` (v4+): -1 = no check; below 0 -> FENCED_LEADER_EPOCH, above 0 ->
    UNKNOWN_LEADER_EPOCH. An isolation level other than 0/1 -> UNKNOWN_SERVER_ERROR.
  * The last fetchable offset (Kafka's `Partition.fetchOffsetForTimestamp`) is the high
    watermark for read_uncommitted (0) and the last stable offset for read_committed (1,
    v2+; the first offset of the oldest open transaction, else the high watermark).
  * Timestamps: -1 latest (the last fetchable offset), -2 earliest and -4 earliest local
    (v8+) (the log start offset), -3 max timestamp (v7+; the first record with the
    largest timestamp), -5 latest tiered (v9+) and -6 earliest pending upload (v11+)
    (offset -1: no tiered storage), a timestamp >= 0: the first record at or after it
    below the last fetchable offset. A sentinel newer than the request's version, or any
    other negative value -> UNSUPPORTED_VERSION. Nothing found -> timestamp/offset/epoch
    -1. The leader epoch (v4+) of a found offset is 0.
OffsetForLeaderEpoch
  * Epoch 0 -> (0, log end offset); epoch -1 or any epoch above 0 -> (-1, -1); an epoch
    below -1 -> (that epoch, log start offset) (Kafka's "older than any known epoch" rule).
    `current_leader_epoch` as for ListOffsets. `replica_id` (v3+) changes nothing.
DeleteRecords
  * Offset -1 means the high watermark; an offset past the high watermark or below -1 ->
    OFFSET_OUT_OF_RANGE; internal topics -> INVALID_TOPIC_EXCEPTION. The low watermark is
    the log start offset afterwards (never moved backwards). Failures report -1. A
    partition named twice keeps its first position and its last offset. One replica:
    nothing to wait for, so `timeout_ms` is not used.
"""

from __future__ import annotations

from typing import Any

from broker.context import RequestContext
from broker.handlers import handles
from protocol.errors import ErrorCode
from protocol.messages.delete_records_request import DeleteRecordsRequest
from protocol.messages.delete_records_response import (
    DeleteRecordsPartitionResult,
    DeleteRecordsResponse,
    DeleteRecordsTopicResult,
)
from protocol.messages.list_offsets_request import ListOffsetsRequest
from protocol.messages.list_offsets_response import (
    ListOffsetsPartitionResponse,
    ListOffsetsResponse,
    ListOffsetsTopicResponse,
)
from protocol.messages.offset_for_leader_epoch_request import OffsetForLeaderEpochRequest
from protocol.messages.offset_for_leader_epoch_response import (
    EpochEndOffset,
    OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult,
)
from storage.errors import OffsetOutOfRange, StorageError

LIST_OFFSETS = 2
DELETE_RECORDS = 21
OFFSET_FOR_LEADER_EPOCH = 23
LEADER_EPOCH = 0
NO_EPOCH = -1
READ_COMMITTED = 1

LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL_TIMESTAMP = -4
LATEST_TIERED_TIMESTAMP = -5
EARLIEST_PENDING_UPLOAD_TIMESTAMP = -6
#: The first ListOffsets version that accepts each sentinel timestamp.
_SENTINEL_SINCE = {
    LATEST_TIMESTAMP: 1,
    EARLIEST_TIMESTAMP: 1,
    MAX_TIMESTAMP: 7,
    EARLIEST_LOCAL_TIMESTAMP: 8,
    LATEST_TIERED_TIMESTAMP: 9,
    EARLIEST_PENDING_UPLOAD_TIMESTAMP: 11,
}


def leader_epoch_error(current_leader_epoch: int) -> ErrorCode:
    """Kafka's check of a request's `current_leader_epoch` against ours (-1: no check)."""
    if current_leader_epoch == NO_EPOCH:
        return ErrorCode.NONE
    if current_leader_epoch < LEADER_EPOCH:
        return ErrorCode.FENCED_LEADER_EPOCH
    if current_leader_epoch > LEADER_EPOCH:
        return ErrorCode.UNKNOWN_LEADER_EPOCH
    return ErrorCode.NONE


# ------------------------------------------------------------------------------ ListOffsets


def _list_offset(version: int, isolation_level: int, log: Any, timestamp: int
                 ) -> tuple[ErrorCode, int, int, int]:
    """(error, timestamp, offset, leader epoch) for one partition."""
    if isolation_level not in (0, 1):
        return ErrorCode.UNKNOWN_SERVER_ERROR, -1, -1, -1
    if timestamp < 0 and _SENTINEL_SINCE.get(timestamp, 1 << 16) > version:
        return ErrorCode.UNSUPPORTED_VERSION, -1, -1, -1
    last_fetchable = log.last_stable_offset if isolation_level == READ_COMMITTED \
        else log.high_watermark
    if timestamp == LATEST_TIMESTAMP:
        return ErrorCode.NONE, -1, last_fetchable, LEADER_EPOCH
    if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
        return ErrorCode.NONE, -1, log.log_start_offset, LEADER_EPOCH
    if timestamp in (LATEST_TIERED_TIMESTAMP, EARLIEST_PENDING_UPLOAD_TIMESTAMP):
        return ErrorCode.NONE, -1, -1, -1
    found = log.max_timestamp_offset() if timestamp == MAX_TIMESTAMP \
        else log.offset_for_timestamp(timestamp)
    if found is None or found.offset < 0:
        return ErrorCode.NONE, -1, -1, -1
    if timestamp >= 0 and found.offset >= last_fetchable:
        return ErrorCode.NONE, -1, -1, -1
    return ErrorCode.NONE, found.timestamp, found.offset, LEADER_EPOCH


@handles(LIST_OFFSETS, 1, 11)
def handle_list_offsets(ctx: RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse:
    version = ctx.api_version
    topics = ctx.broker.topics
    seen: set[tuple[str, int]] = set()
    duplicates: dict[tuple[str, int], None] = {}
    for topic in request.topics:
        for p in topic.partitions:
            key = (topic.name, p.partition_index)
            if key in seen:
                duplicates[key] = None
            seen.add(key)

    answered: dict[str, list[ListOffsetsPartitionResponse]] = {}
    for topic in request.topics:
        out = answered.setdefault(topic.name, [])
        for p in topic.partitions:
            if (topic.name, p.partition_index) in duplicates:
                continue
            result = ListOffsetsPartitionResponse(partition_index=p.partition_index)
            out.append(result)
            log = topics.log(topic.name, p.partition_index)
            if log is None:
                result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            error = leader_epoch_error(p.current_leader_epoch) if version >= 4 \
                else ErrorCode.NONE
            if error != ErrorCode.NONE:
                result.error_code = error
                continue
            try:
                error, ts, offset, epoch = _list_offset(
                    version, request.isolation_level, log, p.timestamp)
            except StorageError as exc:
                error, ts, offset, epoch = ErrorCode(exc.error_code), -1, -1, -1
            result.error_code = error
            result.timestamp = ts
            result.offset = offset
            if version >= 4:
                result.leader_epoch = epoch
    for name, partition in duplicates:
        answered.setdefault(name, []).append(ListOffsetsPartitionResponse(
            partition_index=partition, error_code=ErrorCode.INVALID_REQUEST))
    return ListOffsetsResponse(topics=[
        ListOffsetsTopicResponse(name=name, partitions=partitions)
        for name, partitions in answered.items()])


# ---------------------------------------------------------------------- OffsetForLeaderEpoch


def _end_offset_for_epoch(log: Any, epoch: int) -> tuple[int, int]:
    """Kafka's LeaderEpochFileCache.endOffsetFor with the single epoch 0."""
    if epoch == LEADER_EPOCH:
        return LEADER_EPOCH, log.log_end_offset
    if epoch == NO_EPOCH or epoch > LEADER_EPOCH:
        return -1, -1
    # Older than any epoch we know: the start offset of the first known epoch.
    return epoch, log.log_start_offset


@handles(OFFSET_FOR_LEADER_EPOCH, 2, 4)
def handle_offset_for_leader_epoch(ctx: RequestContext, request: OffsetForLeaderEpochRequest
                                   ) -> OffsetForLeaderEpochResponse:
    topics = ctx.broker.topics
    results = []
    for topic in request.topics:
        partitions = []
        for p in topic.partitions:
            result = EpochEndOffset(partition=p.partition)
            partitions.append(result)
            log = topics.log(topic.topic, p.partition)
            if log is None:
                result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            error = leader_epoch_error(p.current_leader_epoch)
            if error != ErrorCode.NONE:
                result.error_code = error
                continue
            result.leader_epoch, result.end_offset = _end_offset_for_epoch(log, p.leader_epoch)
        results.append(OffsetForLeaderTopicResult(topic=topic.topic, partitions=partitions))
    return OffsetForLeaderEpochResponse(topics=results)


# ----------------------------------------------------------------------------- DeleteRecords


@handles(DELETE_RECORDS, 0, 2)
def handle_delete_records(ctx: RequestContext, request: DeleteRecordsRequest
                          ) -> DeleteRecordsResponse:
    registry = ctx.broker.topics
    wanted: dict[str, dict[int, int]] = {}
    for topic in request.topics:
        per_topic = wanted.setdefault(topic.name, {})
        for p in topic.partitions:
            per_topic[p.partition_index] = p.offset
    results = []
    for name, partitions in wanted.items():
        out = []
        existing = registry.get(name)
        for partition, offset in partitions.items():
            result = DeleteRecordsPartitionResult(partition_index=partition, low_watermark=-1)
            out.append(result)
            log = registry.log(name, partition)
            if existing is None or log is None:
                result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif existing.internal:
                result.error_code = ErrorCode.INVALID_TOPIC_EXCEPTION
            else:
                result.error_code, result.low_watermark = _delete_records(log, offset)
        results.append(DeleteRecordsTopicResult(name=name, partitions=out))
    return DeleteRecordsResponse(topics=results)


def _delete_records(log: Any, offset: int) -> tuple[ErrorCode, int]:
    if offset == -1:
        offset = log.high_watermark
    if offset < 0:
        return ErrorCode.OFFSET_OUT_OF_RANGE, -1
    try:
        return ErrorCode.NONE, log.delete_records(offset)
    except OffsetOutOfRange:
        return ErrorCode.OFFSET_OUT_OF_RANGE, -1
    except StorageError as exc:
        return ErrorCode(exc.error_code), -1
