"""Produce (0): advertised 0-11; versions 3-11 are served.

Versions 0-2 stay in ApiVersions (KAFKA-18659: old clients probe with them) but their
requests cannot be decoded by our codec, so the connection is closed, as Kafka does.
Kafka 4.4 serves 0-13, but v12 means "transactions v2" (KIP-890 part 2: the broker adds
the partition to the transaction itself, the coordinator bumps the epoch at each end),
which clients use only when ApiVersions finalizes `transaction.version` >= 2; we
advertise no `transaction.version`, and v13 (topic ids) needs v12. So clients use v11 and
the KIP-890 part 1 protocol (AddPartitionsToTxn, then a verified produce).

What happens to one request, in Kafka's order (`KafkaApis.handleProduceRequest`,
`ReplicaManager.appendRecords`/`appendToLocalLog`, `UnifiedLog.append`); checked against a
running Kafka 4.4 where noted:

1. If the first batch of any partition is transactional and the request has no
   transactional id, every partition fails with TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
2. Per partition: v13 names topics by id, an unknown id is UNKNOWN_TOPIC_ID; an unknown
   topic or partition is UNKNOWN_TOPIC_OR_PARTITION; then `ProduceRequest.validateRecords`
   (exactly one v2 batch, zstd needs v7+): its failures.
3. `acks` other than -1, 0, 1: INVALID_REQUIRED_ACKS for the partitions still standing.
4. Transactional batches (with a transactional id), when
   `transaction.partition.verification.enable` (default true): KIP-890 part 1
   verification (`ReplicaManager.appendRecords`, `AddPartitionsToTxnManager`). Batches of
   more than one producer id in a request fail the whole request with
   INVALID_PRODUCER_ID_MAPPING. A stale epoch (below the partition's) is
   INVALID_PRODUCER_EPOCH; a producer already in a transaction on the partition with this
   epoch is let through (Kafka's verification guard sentinel); the other partitions are
   checked with one `broker.transactions.verify_partitions` call per request, and its
   errors are answered as Kafka answers a v3-11 producer: PRODUCER_FENCED ->
   INVALID_PRODUCER_EPOCH; TRANSACTION_ABORTABLE -> itself on v11, INVALID_TXN_STATE
   "Partition was not added to the transaction" on v10 and below (INVALID_TXN_STATE
   always carries that message); NETWORK_EXCEPTION, COORDINATOR_LOAD_IN_PROGRESS,
   COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR and CONCURRENT_TRANSACTIONS ->
   NOT_ENOUGH_REPLICAS "Unable to verify the partition has been added to the
   transaction. Underlying error: <error>" (retriable for old clients); any other error
   as it is. Without a transaction coordinator the check fails as Kafka 4.4 does with
   none reachable: NOT_ENOUGH_REPLICAS, underlying COORDINATOR_NOT_AVAILABLE. With
   verification disabled, transactional batches are appended unchecked.
5. Internal topics (`__consumer_offsets`, `__transaction_state`, ...): INVALID_TOPIC_EXCEPTION
   (Kafka only lets its AdminClient id write there).
6. `min.insync.replicas`: Kafka 4.x compares the ISR with min(min.insync.replicas,
   replication factor) (`Partition.effectiveMinIsr`). One broker is every partition's whole
   replica set, so the ISR always suffices and NOT_ENOUGH_REPLICAS is never answered here
   (a running 4.4 accepts acks=all on a replication-factor-1 topic with
   min.insync.replicas=2).
7. The rest of the record checks (`protocol.validation`: offsets, sizes against the topic's
   `max.message.bytes`, CRC, timestamps against `message.timestamp.*`, keys on compacted
   topics), then the idempotent producer checks and the append (`PartitionLog.append`).
   A duplicate of one of the producer's last 5 batches is acknowledged with the original
   base offset and, as Kafka does, `log_append_time_ms` = that batch's stored timestamp
   (its max timestamp on a CreateTime topic, the append time on a LogAppendTime one).

Answers follow `ReplicaManager`'s `LogAppendResult`s: a failed partition has base offset -1
and log append time -1; its log start offset is the partition's for record-validation,
sequence and epoch failures, and -1 for the request-level checks, MESSAGE_TOO_LARGE and
CORRUPT_MESSAGE. `error_message` and `record_errors` are only set when records failed one
by one (INVALID_TIMESTAMP, INVALID_RECORD with record errors), plus the transaction
verification message above. A success has the base offset, the LogAppendTime stamp (-1 on
CreateTime topics) and the log start offset (v5+).

acks=0: no response; if any partition failed, the connection is closed instead so that the
producer notices (KafkaApis closes it). Every append wakes the fetches parked on it.
"""

from __future__ import annotations

import logging
import struct
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from broker.context import CloseConnection, RequestContext
from broker.handlers import handles
from broker.metadata import Topic
from protocol.errors import ErrorCode
from protocol.messages.produce_request import ProduceRequest
from protocol.messages.produce_response import (
    BatchIndexAndErrorMessage,
    PartitionProduceResponse,
    ProduceResponse,
    TopicProduceResponse,
)
from protocol.records import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC,
    TimestampType,
    read_batch_header,
    set_max_timestamp,
)
from protocol.validation import ValidatedRecords, ValidationFailure, validate_produce_records
from storage.errors import StorageError
from storage.producer_state import AppendOrigin

if TYPE_CHECKING:
    from broker.server import Broker
    from storage import LogConfig, PartitionLog

log = logging.getLogger("odradek.produce")
_unpack_length = struct.Struct(">i").unpack_from
#: The transactional flag in the low byte of a batch's attributes.
_TRANSACTIONAL_BIT = 0x10

API_KEY = 0
ZERO_UUID = uuid.UUID(int=0)
INVALID_OFFSET = -1
NO_TIMESTAMP = -1

TXN_VERIFICATION_FAILED = (
    "Unable to verify the partition has been added to the transaction. Underlying error: "
    "COORDINATOR_NOT_AVAILABLE")
NOT_ADDED_TO_TXN = "Partition was not added to the transaction"
#: The first Produce version that may answer TRANSACTION_ABORTABLE (KIP-890).
TXN_ABORTABLE_PRODUCE_VERSION = 11
#: Coordinator errors Kafka turns into NOT_ENOUGH_REPLICAS for v3-11 producers.
_RETRIABLE_VERIFICATION_ERRORS = frozenset({
    ErrorCode.NETWORK_EXCEPTION, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR,
    ErrorCode.CONCURRENT_TRANSACTIONS,
})

#: Errors Kafka answers with log start offset -1 (`ReplicaManager.appendToLocalLog`'s
#: "known exceptions", which keep `LogAppendInfo.UNKNOWN_LOG_APPEND_INFO`).
_NO_LOG_START_OFFSET = frozenset({
    ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE, ErrorCode.CORRUPT_MESSAGE,
    ErrorCode.KAFKA_STORAGE_ERROR, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.NOT_LEADER_OR_FOLLOWER,
})


@dataclass(slots=True)
class _Partition:
    """One partition of the request on its way through the checks."""

    index: int
    records: memoryview
    topic: Topic | None
    response: PartitionProduceResponse | None = None


def _failed(index: int, code: ErrorCode, log_start_offset: int = INVALID_OFFSET,
            message: str | None = None,
            record_errors: list[BatchIndexAndErrorMessage] | None = None
            ) -> PartitionProduceResponse:
    return PartitionProduceResponse(
        index=index, error_code=code, base_offset=INVALID_OFFSET,
        log_append_time_ms=NO_TIMESTAMP, log_start_offset=log_start_offset,
        record_errors=record_errors or [], error_message=message)


def _first_batch_is_transactional(records: memoryview) -> bool:
    """Kafka's `RequestUtils.hasTransactionalRecords` for one partition: whether its first
    whole batch has the transactional bit (read from the header's bytes: batchLength @8,
    magic @16, attributes @21)."""
    if len(records) < BATCH_HEADER_SIZE or records[16] != MAGIC:
        return False
    if _unpack_length(records, 8)[0] + LOG_OVERHEAD > len(records):
        return False
    return bool(records[22] & _TRANSACTIONAL_BIT)


def _is_request_check(failure: ValidationFailure, api_version: int) -> bool:
    """Whether the failure is one of `ProduceRequest.validateRecords` (KafkaApis, before
    acks are looked at) rather than of the log's own checks."""
    message = failure.message
    return message.startswith(("Produce requests with version", "Record size ",
                               "Invalid magic found in record")) or (
        api_version < 7 and message.startswith("Unknown compression type id"))


def _as_view(records: object) -> memoryview:
    if records is None:
        return memoryview(b"")
    view = memoryview(records)  # type: ignore[arg-type]
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


def _whole_request_error(request: ProduceRequest, code: ErrorCode) -> ProduceResponse:
    """`ProduceRequest.getErrorResponse`: every partition fails with `code`."""
    return ProduceResponse(responses=[
        TopicProduceResponse(
            name=td.name, topic_id=td.topic_id,
            partition_responses=[_failed(pd.index, code) for pd in td.partition_data])
        for td in request.topic_data
    ])


@handles(API_KEY, 0, 11)
async def handle_produce(ctx: RequestContext, request: ProduceRequest
                         ) -> ProduceResponse | None:
    """Append, then (when a log's `flush.messages` is reached) fsync in a worker thread
    before answering, so that the trio thread never waits on the disk."""
    response, appended = _produce(ctx, request)
    due = [plog for plog in appended if plog.flush_due()]
    if due:
        await trio.to_thread.run_sync(_flush_all, due)
    return response


def _flush_all(logs: list[PartitionLog]) -> None:
    for plog in logs:
        plog.flush()


def _produce(ctx: RequestContext, request: ProduceRequest
             ) -> tuple[ProduceResponse | None, list[PartitionLog]]:
    broker = ctx.broker
    version = ctx.api_version
    acks = request.acks
    now = broker.clock()

    views = [[_as_view(pd.records) for pd in td.partition_data] for td in request.topic_data]
    if request.transactional_id is None and any(
            _first_batch_is_transactional(v) for topic_views in views for v in topic_views):
        if acks == 0:
            raise CloseConnection("transactional records without a transactional id, acks=0")
        return _whole_request_error(request, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED), []

    verified: dict[tuple[str, int], ErrorCode] | None = None
    if request.transactional_id is not None:
        checked = _verify_transactions(broker, version, request, views)
        if isinstance(checked, ErrorCode):
            if acks == 0:
                raise CloseConnection("transactional records of several producers, acks=0")
            return _whole_request_error(request, checked), []
        verified = checked

    any_error = False
    appended: list[PartitionLog] = []
    responses: list[TopicProduceResponse] = []
    for td, topic_views in zip(request.topic_data, views, strict=True):
        topic = broker.topics.by_id(td.topic_id) if version >= 13 else broker.topics.get(td.name)
        partitions: list[PartitionProduceResponse] = []
        for pd, records in zip(td.partition_data, topic_views, strict=True):
            response, plog = _produce_partition(broker, version, acks,
                                                request.transactional_id, topic, pd.index,
                                                records, now, verified)
            if response.error_code != ErrorCode.NONE:
                any_error = True
                broker.metrics.produce_failed(topic.name if topic is not None else td.name,
                                              response.error_code)
            elif plog is not None:
                appended.append(plog)
            partitions.append(response)
        responses.append(TopicProduceResponse(name=td.name, topic_id=td.topic_id,
                                              partition_responses=partitions))

    if acks == 0:
        if any_error:
            raise CloseConnection("a partition failed in a produce request with acks=0")
        return None, appended
    return ProduceResponse(responses=responses), appended


def _produce_partition(
    broker: Broker,
    version: int,
    acks: int,
    transactional_id: str | None,
    topic: Topic | None,
    index: int,
    records: memoryview,
    now: int,
    verified: dict[tuple[str, int], ErrorCode] | None = None,
) -> tuple[PartitionProduceResponse, PartitionLog | None]:
    """The partition's answer, and its log when the records were appended."""
    if topic is None and version >= 13:
        return _failed(index, ErrorCode.UNKNOWN_TOPIC_ID), None
    if topic is None or not 0 <= index < topic.partitions:
        return _failed(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), None
    plog = broker.topics.log(topic.name, index)
    if plog is None:
        return _failed(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), None
    # The log's own config is the topic's (the registry keeps it current): parsing the
    # topic's overrides again would cost tens of microseconds per partition.
    config = plog.config
    result = _validate(records, version, config, f"{topic.name}-{index}", now)
    if isinstance(result, ValidationFailure) and _is_request_check(result, version):
        return _failed(index, result.error), None
    if acks not in (-1, 0, 1):
        return _failed(index, ErrorCode.INVALID_REQUIRED_ACKS), None
    if (isinstance(result, ValidatedRecords) and result.is_transactional
            and transactional_id is not None):
        refused = _verify_transaction(plog, index, result, version,
                                      verified, (topic.name, index))
        if refused is not None:
            return refused, None
    if topic.internal:
        return _failed(index, ErrorCode.INVALID_TOPIC_EXCEPTION), None
    if isinstance(result, ValidationFailure):
        return _validation_failed(index, result, plog), None
    response = _append(broker, topic, index, plog, config, records, result, now)
    return response, (plog if response.error_code == ErrorCode.NONE else None)


def _validate(records: memoryview, version: int, config: LogConfig, tp: str, now: int
              ) -> ValidatedRecords | ValidationFailure:
    return validate_produce_records(
        records,
        now=now,
        api_version=version,
        max_message_bytes=config.max_message_bytes,
        timestamp_type=(TimestampType.LOG_APPEND_TIME if config.log_append_time
                        else TimestampType.CREATE_TIME),
        timestamp_before_max_ms=config.message_timestamp_before_max_ms,
        timestamp_after_max_ms=config.message_timestamp_after_max_ms,
        compacted=config.compact,
        topic_partition=tp,
    )


def _verify_transactions(broker: Broker, version: int, request: ProduceRequest,
                         views: list[list[memoryview]]
                         ) -> dict[tuple[str, int], ErrorCode] | ErrorCode | None:
    """The request's transaction verification (one coordinator call per request):
    the coordinator's error for each partition it checked (absent: nothing to check or
    verified), None when nothing is to be verified (verification off) or there is no
    coordinator, or an error for the whole request (several producer ids)."""
    if not broker.config["transaction.partition.verification.enable"]:
        return {}
    producers: set[tuple[int, int]] = set()
    candidates: list[tuple[str, int]] = []
    topics = broker.topics
    for td, topic_views in zip(request.topic_data, views, strict=True):
        topic = topics.by_id(td.topic_id) if version >= 13 else topics.get(td.name)
        for pd, records in zip(td.partition_data, topic_views, strict=True):
            if not _first_batch_is_transactional(records):
                continue
            h = read_batch_header(records, 0)
            if h.producer_id < 0:
                continue
            producers.add((h.producer_id, h.producer_epoch))
            plog = topics.log(topic.name, pd.index) if topic is not None else None
            if plog is None or plog.producer_state.has_ongoing_transaction(
                    h.producer_id, h.producer_epoch):
                continue  # fails later anyway / already verified (Kafka's sentinel guard)
            candidates.append((topic.name, pd.index))  # type: ignore[union-attr]
    if len(producers) > 1:
        return ErrorCode.INVALID_PRODUCER_ID_MAPPING
    coordinator = getattr(broker, "transactions", None)
    if coordinator is None:
        return None
    if not candidates:
        return {}
    ((producer_id, epoch),) = producers
    assert request.transactional_id is not None
    errors = coordinator.verify_partitions(request.transactional_id, producer_id, epoch,
                                           candidates)
    return {tp: error for tp, error in errors.items() if error != ErrorCode.NONE}


def _verify_transaction(plog: PartitionLog, index: int, result: ValidatedRecords,
                        version: int, verified: dict[tuple[str, int], ErrorCode] | None,
                        key: tuple[str, int]) -> PartitionProduceResponse | None:
    """One partition's verification outcome (None: append)."""
    state = plog.producer_state
    entry = state.entry(result.producer_id)
    if entry is not None and result.producer_epoch < entry.producer_epoch:
        return _failed(index, ErrorCode.INVALID_PRODUCER_EPOCH, plog.log_start_offset)
    if verified is not None:
        error = verified.get(key)
        return None if error is None else _verification_failed(index, error, version)
    if state.has_ongoing_transaction(result.producer_id, result.producer_epoch):
        return None
    return _failed(index, ErrorCode.NOT_ENOUGH_REPLICAS, message=TXN_VERIFICATION_FAILED)


def _verification_failed(index: int, error: ErrorCode, version: int
                         ) -> PartitionProduceResponse:
    """A coordinator's verification error as Kafka answers it to a v3-11 producer
    (`AddPartitionsToTxnManager`, then `ReplicaManager.appendRecords`)."""
    if error == ErrorCode.PRODUCER_FENCED:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    elif (error == ErrorCode.TRANSACTION_ABORTABLE
          and version < TXN_ABORTABLE_PRODUCE_VERSION):
        error = ErrorCode.INVALID_TXN_STATE
    if error == ErrorCode.INVALID_TXN_STATE:
        return _failed(index, error, message=NOT_ADDED_TO_TXN)
    if error in _RETRIABLE_VERIFICATION_ERRORS:
        return _failed(index, ErrorCode.NOT_ENOUGH_REPLICAS, message=(
            "Unable to verify the partition has been added to the transaction. "
            f"Underlying error: {error.name}"))
    return _failed(index, error)


def _validation_failed(index: int, failure: ValidationFailure, plog: PartitionLog
                       ) -> PartitionProduceResponse:
    lso = INVALID_OFFSET if failure.error in _NO_LOG_START_OFFSET else plog.log_start_offset
    if not failure.record_errors:
        return _failed(index, failure.error, lso)
    return _failed(index, failure.error, lso, failure.message, [
        BatchIndexAndErrorMessage(batch_index=e.batch_index,
                                  batch_index_error_message=e.message)
        for e in failure.record_errors
    ])


def _append(
    broker: Broker,
    topic: Topic,
    index: int,
    plog: PartitionLog,
    config: LogConfig,
    records: memoryview,
    result: ValidatedRecords,
    now: int,
) -> PartitionProduceResponse:
    data: memoryview | bytearray = records[:result.valid_bytes]
    header = result.header
    log_append_time: int | None = None
    if config.log_append_time:
        log_append_time = now  # the segment stamps it into the batch in place
    elif header.max_timestamp != result.max_timestamp or header.timestamp_type != (
            TimestampType.CREATE_TIME):
        # Kafka's LogValidator sets the batch's maxTimestamp to the records' largest.
        data = bytearray(data)
        set_max_timestamp(data, 0, TimestampType.CREATE_TIME, result.max_timestamp)
    try:
        info = plog.append(data, log_append_time=log_append_time, validated=True,
                           origin=AppendOrigin.CLIENT)
    except StorageError as exc:
        code = ErrorCode(exc.error_code)
        if code == ErrorCode.KAFKA_STORAGE_ERROR:
            log.error("append to %s-%d failed: %s", topic.name, index, exc)
        lso = INVALID_OFFSET if code in _NO_LOG_START_OFFSET else plog.log_start_offset
        return _failed(index, code, lso)
    if not info.duplicate:
        broker.waiters.notify(topic.name, index)
        broker.metrics.produced(topic.name, result.valid_bytes, result.record_count)
    return PartitionProduceResponse(
        index=index, error_code=ErrorCode.NONE, base_offset=info.first_offset,
        log_append_time_ms=info.log_append_time, log_start_offset=info.log_start_offset)
