"""Fetch (key 1), versions 4-18.

Serves consumers from the local log; record bytes are never copied: each partition's
records are the `FileSlice` that `PartitionLog.read` cut, passed through the codec as its
own chunk and `sendfile`d by the connection.

What a fetch does, as Kafka's `KafkaApis.handleFetchRequest` and `ReplicaManager.readFromLog`:

* Topics by name (v4-12) or by id (v13+; an unknown id -> UNKNOWN_TOPIC_ID, the response
  echoes the id and no name). Unknown topics/partitions -> UNKNOWN_TOPIC_OR_PARTITION.
  Partitions that fail this lookup are answered after the partitions that were read.
* Incremental fetch sessions (v7+): `broker.fetch_sessions`, see `broker.fetch_sessions`.
* Size limits (KIP-74): the request's `max_bytes` (capped by the broker's
  `fetch.max.bytes`) is shared by the partitions in order, each also capped by its own
  `partition_max_bytes`; the first batch of the first partition that has data is returned
  whole even when it is larger than either limit. Reads stop at the end of a segment (as
  Kafka's do) and return whole batches only (Kafka may end a response with a partial
  batch, which clients skip). A negative limit is UNKNOWN_SERVER_ERROR for the partition.
* Per partition, in Kafka's order: `current_leader_epoch` (v9+) above our epoch 0 ->
  UNKNOWN_LEADER_EPOCH (negative values are "no epoch"); a replica fetch (replica id >= 0)
  -> NOT_LEADER_OR_FOLLOWER (v16+ also fills `current_leader`); `last_fetched_epoch`
  (v12+) other than 0 -> OFFSET_OUT_OF_RANGE, and 0 with a fetch offset past the log end
  -> `diverging_epoch` (0, log end offset); a fetch offset outside [log start, log end]
  -> OFFSET_OUT_OF_RANGE. A partition that fails after lookup reports high watermark,
  last stable offset and log start offset -1 and null aborted transactions.
* Isolation (`isolation_level`, KIP-98): read_uncommitted (0) reads up to the high
  watermark, read_committed (1) up to the last stable offset (the first offset of the
  oldest open transaction, else the high watermark; `PartitionLog.last_stable_offset`).
  `last_stable_offset` is reported for both levels, as Kafka does. `aborted_transactions`
  is null for read_uncommitted; for read_committed it lists (producer id, first offset)
  of the aborted transactions overlapping the returned batches (from the segments'
  `.txnindex`), an empty list when there are none or nothing is returned. Control
  batches (markers) are returned as stored: clients skip them.
  `preferred_read_replica` is always -1.
* Long poll: when no partition failed and fewer than `min_bytes` could be returned, the
  request waits on `broker.waiters` for an append to one of its partitions or for
  `max_wait_ms`, then reads again (only this connection waits, as in Kafka, where a
  connection's next request is not read until its fetch is answered). While waiting, the
  bytes that count are those available to each partition up to its own limit (Kafka's
  DelayedFetch); a partition that starts failing (deleted, truncated) ends the wait.
  A read_committed fetch counts only bytes below the last stable offset, so it wakes when
  a transaction marker moves that offset (the marker's writer notifies the waiters).
* Fetch sessions resend a partition when its high watermark, log start offset or error
  changes, or it has records (Kafka's `CachedPartition`; Kafka does not track the last
  stable offset there: a marker moves the high watermark anyway).
"""

from __future__ import annotations

from typing import Any

import trio

from broker.context import RequestContext
from broker.fetch_sessions import ZERO_UUID, FetchContext, FetchTarget, Key, partition_key
from broker.handlers import handles
from protocol.errors import ErrorCode
from protocol.messages.fetch_request import FetchRequest
from protocol.messages.fetch_response import (
    AbortedTransaction,
    EpochEndOffset,
    FetchableTopicResponse,
    FetchResponse,
    LeaderIdAndEpoch,
    PartitionData,
    SnapshotId,
)
from storage.errors import OffsetOutOfRange, StorageError

API_KEY = 1
#: A one-node cluster: every partition's leader epoch.
LEADER_EPOCH = 0
READ_COMMITTED = 1

# Response parts every partition without a divergence, leader change or snapshot shares.
# Response objects are built, encoded and dropped: nothing changes them after they are
# built (a partition that needs one of these parts gets its own object).
_NO_DIVERGENCE = EpochEndOffset()
_NO_LEADER = LeaderIdAndEpoch()
_NO_SNAPSHOT = SnapshotId()
_NO_TAGS: list[tuple[int, bytes]] = []


def _partition(partition: int, error: int, high_watermark: int, last_stable_offset: int,
               log_start_offset: int, aborted: list[AbortedTransaction] | None,
               records: Any) -> PartitionData:
    """A response partition with no diverging epoch, leader or snapshot: one object, all
    fields given (the dataclass's defaults would build four more per partition)."""
    return PartitionData(partition, error, high_watermark, last_stable_offset,
                         log_start_offset, _NO_DIVERGENCE, _NO_LEADER, _NO_SNAPSHOT, aborted,
                         -1, records, _NO_TAGS)


def _failed(partition: int, error: ErrorCode, *, aborted: list[Any] | None) -> PartitionData:
    return _partition(partition, error, -1, -1, -1, aborted, b"")


def _targets(version: int, request: FetchRequest) -> tuple[dict[Key, FetchTarget], list[Key]]:
    """The request's partitions (a later duplicate replaces an earlier one in place, as in
    Kafka's LinkedHashMap) and the partitions it asks a session to forget."""
    by_id = version >= 13
    targets: dict[Key, FetchTarget] = {}
    for topic in request.topics:
        name = "" if by_id else topic.topic
        topic_id = topic.topic_id if by_id else ZERO_UUID
        for p in topic.partitions:
            target = FetchTarget(  # positional, in FetchTarget's field order: the hot path
                name, topic_id, p.partition, p.fetch_offset, p.log_start_offset,
                p.partition_max_bytes, p.current_leader_epoch, p.last_fetched_epoch)
            targets[target.key] = target
    forget: list[Key] = []
    for forgotten in request.forgotten_topics_data:
        for partition in forgotten.partitions:
            if by_id:
                forget.append(partition_key("", forgotten.topic_id, partition))
            else:
                forget.append(partition_key(forgotten.topic, ZERO_UUID, partition))
    return targets, forget


class _Fetch:
    """One Fetch request being served: its resolved partitions, its reads.

    Cost: a consumer of many partitions (librdkafka sends every assigned partition in
    every request, without a session) mostly asks partitions that have nothing new, so
    the work per partition is kept small: the topic is resolved once per run of its
    partitions, the log once per read (the first read uses the logs resolved when the
    request came: nothing can change in between, since nothing is awaited), and a
    partition whose fetch offset is its read limit (the high watermark, or the last stable
    offset for read_committed) is answered from the log's offsets without a read.
    """

    def __init__(self, ctx: RequestContext, request: FetchRequest, context: FetchContext
                 ) -> None:
        self.ctx = ctx
        self.broker = ctx.broker
        self.version = ctx.api_version
        self.request = request
        replica_id = request.replica_state.replica_id if self.version >= 15 \
            else request.replica_id
        self.from_follower = replica_id >= 0
        self.read_committed = request.isolation_level == READ_COMMITTED
        self.max_bytes = min(request.max_bytes, self.broker.config["fetch.max.bytes"])
        self.min_bytes = min(request.min_bytes, self.max_bytes)
        self.omits_unchanged = context.omits_unchanged
        #: the partitions that existed when the request came, with their topic names and
        #: logs as resolved then (three parallel lists: no object per partition).
        self.readable: list[FetchTarget] = []
        self.names: list[str] = []
        self._logs: list[Any] = []
        #: partitions that failed the lookup, answered last.
        self.erroneous: list[tuple[FetchTarget, PartitionData]] = []
        self._resolve(context.targets())

    def _resolve(self, targets: list[FetchTarget]) -> None:
        topics = self.broker.topics
        by_id = self.version >= 13
        previous: Any = None  # the topic id (v13+) or name of the previous target
        name = ""
        for target in targets:
            if by_id:
                if target.topic_id is not previous:  # usually the same object: one lookup
                    previous = target.topic_id
                    topic = topics.by_id(previous)
                    name = topic.name if topic is not None else ""
                if not name:
                    self.erroneous.append((target, _failed(
                        target.partition, ErrorCode.UNKNOWN_TOPIC_ID, aborted=[])))
                    continue
            else:
                name = target.topic
            log = target.log  # a session's partition: resolved by an earlier request
            if log is None or log.closed:
                log = target.log = topics.log(name, target.partition)
                if log is None:
                    self.erroneous.append((target, _failed(
                        target.partition, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, aborted=[])))
                    continue
            self.readable.append(target)
            self.names.append(name)
            self._logs.append(log)

    # -- reading ---------------------------------------------------------------------------

    def _check(self, target: FetchTarget, log: Any) -> PartitionData | None:
        """The failure or divergence Kafka reports before reading, if any."""
        partition = target.partition
        if target.current_leader_epoch > LEADER_EPOCH:
            return _failed(partition, ErrorCode.UNKNOWN_LEADER_EPOCH, aborted=None)
        if self.from_follower:
            failed = _failed(partition, ErrorCode.NOT_LEADER_OR_FOLLOWER, aborted=None)
            if self.version >= 16:
                failed.current_leader = LeaderIdAndEpoch(
                    leader_id=self.broker.node_id, leader_epoch=LEADER_EPOCH)
            return failed
        if target.last_fetched_epoch >= 0:
            if target.last_fetched_epoch != LEADER_EPOCH:
                # The end offset of an epoch we never had cannot be determined.
                return _failed(partition, ErrorCode.OFFSET_OUT_OF_RANGE, aborted=None)
            end = log.log_end_offset
            if end < target.fetch_offset:
                # Kafka answers with FetchDataInfo.empty: no aborted transactions list.
                return PartitionData(
                    partition_index=partition, high_watermark=log.high_watermark,
                    last_stable_offset=log.last_stable_offset,
                    log_start_offset=log.log_start_offset, aborted_transactions=None,
                    diverging_epoch=EpochEndOffset(epoch=LEADER_EPOCH, end_offset=end),
                    records=b"")
        return None

    def _log(self, target: FetchTarget, name: str) -> Any:
        """The partition's log now, or the error for a partition that went away."""
        topics = self.broker.topics
        if self.version >= 13:
            topic = topics.by_id(target.topic_id)
            if topic is None:
                return _failed(target.partition, ErrorCode.UNKNOWN_TOPIC_ID, aborted=None)
            name = topic.name
        log = topics.log(name, target.partition)
        if log is None:
            return _failed(target.partition, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, aborted=None)
        return log

    def _read_one(self, target: FetchTarget, log: Any, limit: int, min_one: bool
                  ) -> PartitionData | None:
        """The partition's answer; None for one with nothing new that the response leaves
        out anyway (`FetchContext.omits_unchanged`)."""
        if (target.current_leader_epoch > LEADER_EPOCH or self.from_follower
                or target.last_fetched_epoch >= 0):
            checked = self._check(target, log)
            if checked is not None:
                return checked
        partition = target.partition
        max_bytes = min(target.max_bytes, limit)
        if max_bytes < 0:
            return _failed(partition, ErrorCode.UNKNOWN_SERVER_ERROR, aborted=None)
        committed = self.read_committed
        offset = target.fetch_offset
        lso = log.last_stable_offset
        high_watermark = log.high_watermark
        log_start = log.log_start_offset
        if offset == (lso if committed else high_watermark) and offset >= log_start \
                and not log.closed:
            # Nothing to read: what `log.read` would answer, without reading.
            if self.omits_unchanged and target.high_watermark == high_watermark \
                    and target.local_log_start_offset == log_start:
                return None
            return _partition(partition, ErrorCode.NONE, high_watermark, lso, log_start,
                              [] if committed else None, b"")
        try:
            info = log.read(offset, max_bytes,
                            max_offset=lso if committed else high_watermark,
                            min_one_message=min_one, collect_aborted=committed,
                            single_segment=True)
        except OffsetOutOfRange:
            return _failed(partition, ErrorCode.OFFSET_OUT_OF_RANGE, aborted=None)
        except StorageError as exc:
            code = ErrorCode(exc.error_code)
            if code == ErrorCode.KAFKA_STORAGE_ERROR and self.version <= 5:
                code = ErrorCode.NOT_LEADER_OR_FOLLOWER
            return _failed(partition, code, aborted=None)
        # Reads stop at a segment's end, as Kafka's do: one slice per partition.
        records = info.slices[0] if info.slices else b""
        aborted = None
        if committed:
            aborted = [AbortedTransaction(producer_id=pid, first_offset=first)
                       for pid, first in info.aborted_transactions or ()]
        return _partition(partition, ErrorCode.NONE, info.high_watermark, lso,
                          info.log_start_offset, aborted, records)

    def _current_logs(self) -> list[Any]:
        """Each readable partition's log looked up again (after a wait: a topic may have
        been deleted or re-created meanwhile), or the error that replaces its read."""
        return [self._log(target, name) for target, name in zip(self.readable, self.names,
                                                                strict=True)]

    def read(self, logs: list[Any]) -> tuple[list[tuple[FetchTarget, PartitionData]], int, bool]:
        """Read every partition: (results, bytes read, whether to answer at once)."""
        results: list[tuple[FetchTarget, PartitionData]] = []
        limit = self.max_bytes
        min_one = True
        total = 0
        done = False
        read_one = self._read_one
        for target, log in zip(self.readable, logs, strict=True):
            data = log if isinstance(log, PartitionData) else read_one(target, log, limit,
                                                                        min_one)
            if data is None:
                continue
            records = data.records
            if records:
                size = len(records)
                min_one = False
                limit = max(0, limit - size)
                total += size
            elif data.error_code != ErrorCode.NONE or data.diverging_epoch.epoch != -1:
                done = True
            results.append((target, data))
        return results, total, done

    def available(self) -> tuple[int, bool]:
        """Bytes each partition could return within its own limit (Kafka's DelayedFetch
        estimate) and whether any partition now fails."""
        total = 0
        for target, log in zip(self.readable, self._current_logs(), strict=True):
            if isinstance(log, PartitionData):
                return total, True
            data = self._read_one(target, log, max(target.max_bytes, 0), True)
            if data is None:
                continue
            if data.error_code != ErrorCode.NONE or data.diverging_epoch.epoch != -1:
                return total, True
            size = len(data.records) if data.records is not None else 0
            total += min(size, target.max_bytes)
        return total, False

    async def run(self) -> list[tuple[FetchTarget, PartitionData]]:
        results, total, done = self.read(self._logs)
        wait_ms = self.request.max_wait_ms
        if not (done or not self.readable or wait_ms <= 0 or total >= self.min_bytes):
            deadline = trio.current_time() + wait_ms / 1000
            keys = [(name, target.partition)
                    for target, name in zip(self.readable, self.names, strict=True)]
            while True:
                remaining = deadline - trio.current_time()
                if remaining <= 0:
                    break
                if not await self.broker.waiters.wait(keys, remaining):
                    break
                available, failing = self.available()
                if failing or available >= self.min_bytes:
                    break
            results, _total, _done = self.read(self._current_logs())
        return results + self.erroneous

    # -- the response ----------------------------------------------------------------------

    def response(self, error: ErrorCode, session_id: int,
                 results: list[tuple[FetchTarget, PartitionData]]) -> FetchResponse:
        by_id = self.version >= 13
        topics: list[FetchableTopicResponse] = []
        previous: Any = None
        partitions: list[PartitionData] = []
        for target, data in results:
            # A partition's key starts with its topic id (v13+) or name.
            topic_key = target.key[0]
            if topics and topic_key == previous:
                partitions.append(data)
                continue
            previous = topic_key
            partitions = [data]
            topics.append(FetchableTopicResponse(
                topic="" if by_id else target.topic,
                topic_id=target.topic_id if by_id else ZERO_UUID,
                partitions=partitions))
        response = FetchResponse(responses=topics)
        if self.version >= 7:
            response.error_code = error
            response.session_id = session_id
        return response


@handles(API_KEY, 4, 18)
async def handle_fetch(ctx: RequestContext, request: FetchRequest) -> FetchResponse:
    version = ctx.api_version
    targets, forget = _targets(version, request)
    replica_id = request.replica_state.replica_id if version >= 15 else request.replica_id
    context = ctx.broker.fetch_sessions.new_context(
        version, request.session_id, request.session_epoch, replica_id >= 0, targets, forget)
    fetch = _Fetch(ctx, request, context)
    if context.error != ErrorCode.NONE:
        error, session_id, _ = context.respond([])
        return fetch.response(error, session_id, [])
    results = await fetch.run()
    error, session_id, sent = context.respond(results)
    _count(fetch, sent)
    return fetch.response(error, session_id, sent)


def _count(fetch: _Fetch, sent: list[tuple[FetchTarget, PartitionData]]) -> None:
    """Bytes out and failures per topic: one counter update per partition sent with
    records or an error."""
    metrics = fetch.broker.metrics
    by_id = fetch.version >= 13
    names: dict[Key, str] | None = None
    for target, data in sent:
        records = data.records
        if not records and data.error_code == ErrorCode.NONE:
            continue
        name = target.topic
        if by_id:
            if names is None:
                names = {t.key: n for t, n in zip(fetch.readable, fetch.names, strict=True)}
            name = names.get(target.key, "")
        if data.error_code != ErrorCode.NONE:
            metrics.fetch_failed(name, data.error_code)
        elif records:
            metrics.fetched(name, len(records))
