"""DescribeLogDirs (35) v1-5.

As Kafka's `ReplicaManager.describeLogDirs`: one result per log dir (its absolute path),
listing the partitions it holds - all of them for a null topic list, else those of the
requested topics and partitions that exist here (unknown ones are left out, an empty list
gives none). `partition_size` is the size of the partition's segments, `offset_lag` the
log end offset minus the high watermark (0 on one node), `is_future_key` false (no
AlterReplicaLogDirs). v3+ has a top-level error code (0); v4+ the volume's total and
usable bytes (`statvfs`; Kafka answers -1 before v4); v5 `is_cordoned`, always false
(no `cordoned.log.dirs` support). A log dir that cannot be read answers
KAFKA_STORAGE_ERROR.
"""

from __future__ import annotations

import os
from collections import defaultdict

from broker.context import RequestContext
from broker.handlers import handles
from protocol.errors import ErrorCode
from protocol.messages.describe_log_dirs_request import DescribeLogDirsRequest
from protocol.messages.describe_log_dirs_response import (
    DescribeLogDirsPartition,
    DescribeLogDirsResponse,
    DescribeLogDirsResult,
    DescribeLogDirsTopic,
)


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
    results = []
    for directory, topics in by_dir.items():
        result = DescribeLogDirsResult(error_code=ErrorCode.NONE, log_dir=directory, topics=[
            DescribeLogDirsTopic(name=name, partitions=sorted(
                partitions, key=lambda p: p.partition_index))
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
