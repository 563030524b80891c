"""DescribeLogDirs (35) v1-5 and AlterReplicaLogDirs (34) v1-2.

DescribeLogDirs, as Kafka's `ReplicaManager.describeLogDirs`: one result per log dir (its
absolute path), listing the partitions it holds - all of them for a null topic list, else
those of the requested topics and partitions that exist here (unknown ones are left out,
an empty list gives none). `partition_size` is the size of the partition's segments,
`offset_lag` the log end offset minus the high watermark (0 on one node). A partition
being moved (AlterReplicaLogDirs) is also listed in its destination dir with
`is_future_key` true, its size the bytes copied so far. v3+ has a top-level error code
(0); v4+ the volume's total and usable bytes (`statvfs`; Kafka answers -1 before v4); v5
`is_cordoned`, always false (no `cordoned.log.dirs` support). A log dir that cannot be
read answers KAFKA_STORAGE_ERROR.

AlterReplicaLogDirs, as Kafka's `ReplicaManager.alterReplicaLogDirs`: the request becomes
a map from partition to destination (a partition named twice goes where it is named
last), answered per partition, grouped by topic. In Kafka's order of checks: a topic
whose future dir name (`<topic>-<partition>.<uuid>-future`) would pass 255 characters is
INVALID_TOPIC_EXCEPTION; a path that is not exactly one of `log.dirs` (absolute, no
trailing slash) LOG_DIR_NOT_FOUND; an unknown topic or partition
UNKNOWN_TOPIC_OR_PARTITION; the dir the log is in already NONE. Otherwise the log moves
for real (`storage.log_move`: a `-future` copy, then a swap) and the answer, NONE, comes
once it is done (Kafka answers at once and moves in the background; its clients poll
DescribeLogDirs until the future replica is gone, which then holds at once). A failed
copy is KAFKA_STORAGE_ERROR and leaves the log where it was. Moves run one at a time.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections import defaultdict
from typing import TYPE_CHECKING

import trio

from broker.context import RequestContext
from broker.handlers import handles
from protocol.errors import ErrorCode
from protocol.messages.alter_replica_log_dirs_request import AlterReplicaLogDirsRequest
from protocol.messages.alter_replica_log_dirs_response import (
    AlterReplicaLogDirPartitionResult,
    AlterReplicaLogDirsResponse,
    AlterReplicaLogDirTopicResult,
)
from protocol.messages.describe_log_dirs_request import DescribeLogDirsRequest
from protocol.messages.describe_log_dirs_response import (
    DescribeLogDirsPartition,
    DescribeLogDirsResponse,
    DescribeLogDirsResult,
    DescribeLogDirsTopic,
)
from storage.errors import StorageError
from storage.log_move import future_dir_name_length

if TYPE_CHECKING:
    from broker.server import Broker

logger = logging.getLogger("odradek.log_dirs")
#: Kafka's limit on a file name, which its future dir name must respect.
MAX_DIR_NAME_LENGTH = 255


@handles(35, 1, 5)
def handle_describe_log_dirs(ctx: RequestContext, request: DescribeLogDirsRequest
                             ) -> DescribeLogDirsResponse:
    logs = ctx.broker.logs
    wanted: dict[str, set[int]] | None = None
    if request.topics is not None:
        wanted = defaultdict(set)
        for t in request.topics:
            wanted[t.topic].update(t.partitions)
    by_dir: dict[str, dict[str, list[DescribeLogDirsPartition]]] = {
        d: defaultdict(list) for d in logs.log_dirs}
    for tp, log in logs.all_logs():
        if wanted is not None and tp.partition not in wanted.get(tp.topic, ()):
            continue
        directory = logs.log_dir_of(tp.topic, tp.partition)
        if directory not in by_dir:
            continue
        by_dir[directory][tp.topic].append(DescribeLogDirsPartition(
            partition_index=tp.partition, partition_size=log.size_in_bytes(),
            offset_lag=max(0, log.log_end_offset - log.high_watermark), is_future_key=False))
    for move in logs.moves():
        if wanted is not None and move.partition not in wanted.get(move.topic, ()):
            continue
        if move.dest_dir in by_dir:
            by_dir[move.dest_dir][move.topic].append(DescribeLogDirsPartition(
                partition_index=move.partition, partition_size=move.size, offset_lag=0,
                is_future_key=True))
    results = []
    for directory, topics in by_dir.items():
        result = DescribeLogDirsResult(error_code=ErrorCode.NONE, log_dir=directory, topics=[
            DescribeLogDirsTopic(name=name, partitions=sorted(
                partitions, key=lambda p: (p.partition_index, p.is_future_key)))
            for name, partitions in sorted(topics.items())])
        if ctx.api_version >= 4:
            try:
                stats = os.statvfs(directory)
            except OSError:
                result = DescribeLogDirsResult(error_code=ErrorCode.KAFKA_STORAGE_ERROR,
                                               log_dir=directory)
            else:
                result.total_bytes = stats.f_blocks * stats.f_frsize
                result.usable_bytes = stats.f_bavail * stats.f_frsize
        results.append(result)
    return DescribeLogDirsResponse(error_code=ErrorCode.NONE, results=results)


# -- AlterReplicaLogDirs -------------------------------------------------------------------

_move_locks: weakref.WeakKeyDictionary[Broker, trio.Lock] = weakref.WeakKeyDictionary()


def _move_lock(broker: Broker) -> trio.Lock:
    lock = _move_locks.get(broker)
    if lock is None:
        lock = _move_locks[broker] = trio.Lock()
    return lock


async def _alter_one(broker: Broker, topic: str, partition: int, path: str) -> ErrorCode:
    if future_dir_name_length(topic, partition) > MAX_DIR_NAME_LENGTH:
        return ErrorCode.INVALID_TOPIC_EXCEPTION
    logs = broker.logs
    if path not in logs.log_dirs:
        return ErrorCode.LOG_DIR_NOT_FOUND
    if broker.topics.log(topic, partition) is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    try:
        move = logs.begin_move(topic, partition, path)
    except (KeyError, StorageError):
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if move is None:
        return ErrorCode.NONE
    try:
        await trio.to_thread.run_sync(move.copy_bulk)
    except OSError:
        logger.exception("moving %s-%d to %s failed", topic, partition, path)
        logs.abort_move(move)
        return ErrorCode.KAFKA_STORAGE_ERROR
    except BaseException:  # cancelled (shutdown): the log stays where it is
        logs.abort_move(move)
        raise
    try:
        moved = logs.finish_move(move)
    except OSError:
        logger.exception("moving %s-%d to %s failed", topic, partition, path)
        return ErrorCode.KAFKA_STORAGE_ERROR
    if moved is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    logger.info("moved %s-%d from %s to %s", topic, partition, move.source_dir, path)
    return ErrorCode.NONE


@handles(34, 1, 2)
async def handle_alter_replica_log_dirs(ctx: RequestContext,
                                        request: AlterReplicaLogDirsRequest
                                        ) -> AlterReplicaLogDirsResponse:
    destinations: dict[tuple[str, int], str] = {}
    for entry in request.dirs:
        for wanted in entry.topics:
            for index in wanted.partitions:
                destinations[(wanted.name, index)] = entry.path
    by_topic: dict[str, list[AlterReplicaLogDirPartitionResult]] = {}
    async with _move_lock(ctx.broker):
        for (topic, partition), path in destinations.items():
            code = await _alter_one(ctx.broker, topic, partition, path)
            by_topic.setdefault(topic, []).append(
                AlterReplicaLogDirPartitionResult(partition_index=partition, error_code=code))
    return AlterReplicaLogDirsResponse(results=[
        AlterReplicaLogDirTopicResult(topic_name=name, partitions=results)
        for name, results in by_topic.items()])
