"""Produce-side validation of one partition's records, as Apache Kafka 4.x's broker does it.

How this works. A Produce request carries, per partition, raw `records` bytes. Kafka checks
them in three places before the append, in this order, and the first failure wins:

1. `ProduceRequest.validateRecords` (clients/.../requests/ProduceRequest.java), called by
   `KafkaApis.handleProduceRequest` for every partition. It walks batches with
   `ByteBufferLogInputStream.nextBatchSize`/`nextBatch` (clients/.../record/), so:
   - a batch length field < 14 (`LegacyRecord.RECORD_OVERHEAD_V0`) -> CORRUPT_MESSAGE
     "Record size N is less than the minimum record overhead (14)";
   - a magic byte outside 0..2 -> CORRUPT_MESSAGE "Invalid magic found in record: M";
   - no whole batch (empty, or only a partial one) -> INVALID_RECORD "Produce requests with
     version V must have at least one record batch per partition";
   - first batch magic 0 or 1 -> INVALID_RECORD "... only allowed to contain record batches
     with magic version 2" (Kafka 4.x accepts Produce v3+ only, all of which demand v2);
   - zstd with Produce version < 7 -> UNSUPPORTED_COMPRESSION_TYPE;
   - a second whole batch -> INVALID_RECORD "... only allowed to contain exactly one record
     batch per partition" (so idempotent and transactional producers, like everyone,
     send one batch per partition; there are no multi-batch sequence rules left to check).
     A partial batch after the first one is NOT an error here: step 2 trims it.
2. `UnifiedLog.analyzeAndValidateRecords` (storage/.../internals/log/UnifiedLog.java), origin
   CLIENT: baseOffset != 0 -> INVALID_RECORD; batch size > max.message.bytes ->
   MESSAGE_TOO_LARGE; batch shorter than 61 bytes or CRC mismatch -> CORRUPT_MESSAGE
   "Record is corrupt (stored crc = C) in topic partition TP."; codec id 5-7 ->
   `IllegalArgumentException` "Unknown compression type id: N", which the broker answers
   with UNKNOWN_SERVER_ERROR. Trailing bytes after the batch are trimmed
   (`trimInvalidBytes`): `ValidatedRecords.valid_bytes` says how many bytes to append.
3. `LogValidator` (storage/.../internals/log/LogValidator.java), `validateBatch` then each
   record (`validateRecord`, `validateKey`, `validateTimestamp`, `processRecordErrors`):
   - per batch: lastOffsetDelta < 0 ("Batch has an invalid offset range"), recordsCount <= 0
     ("Invalid reported count for record batch"), lastOffsetDelta + 1 != recordsCount
     ("Inconsistent batch offset range"), control batch ("Clients are not allowed to write
     control records"), producer id >= 0 with base sequence < 0 ("Invalid sequence number")
     -> INVALID_RECORD;
   - structure of the records (varints, lengths, count vs bytes, via `iter_records`) ->
     INVALID_RECORD; a stream that does not decompress -> UNKNOWN_SERVER_ERROR (Kafka wraps
     the codec's IOException in a plain KafkaException "Failed to decompress record stream");
   - per record, collected as `RecordError(batch_index, message)` for ProduceResponse's
     RecordErrors: compacted topic and null key -> INVALID_RECORD "Compacted topic cannot
     accept message without key in topic partition TP"; else, CreateTime topic and a record
     timestamp != -1 outside [now - before.max.ms, now + after.max.ms] -> INVALID_TIMESTAMP;
     else a batch claiming LogAppendTime -> INVALID_TIMESTAMP "... Producer should not set
     timestamp type to LogAppendTime.". If any record failed, the partition fails with
     INVALID_TIMESTAMP "One or more records have been rejected due to invalid timestamp" if
     any error was a timestamp one, else INVALID_RECORD "One or more records have been
     rejected due to N record errors in total, and only showing the first three errors at
     most: [...]", carrying all record errors.

Odradek rules beyond Kafka (each one documented where Kafka differs):

- Inner offset deltas must be 0, 1, 2, ... (INVALID_RECORD record error "Record offset delta
  D is not consecutive, expected I"). Kafka does not reject these: for a compressed batch
  it rebuilds and recompresses it (`inPlaceAssignment = false`), for an uncompressed one it
  stores the deltas as sent. Pass `allow_nonconsecutive_offsets=True` for Kafka's leniency;
  `ValidatedRecords.offsets_consecutive` then tells the broker to rebuild.
- A transactional batch without a producer id, and a producer id with a negative epoch, are
  INVALID_RECORD. Kafka accepts both when it appends in place and fails them with an
  `IllegalArgumentException` (UNKNOWN_SERVER_ERROR) from `MemoryRecordsBuilder` when it
  rebuilds; neither is a batch any real producer writes.
- `max_decompressed_bytes` bounds decompression (INVALID_RECORD beyond it). Kafka has no
  such bound.

Checked per batch (header only, O(1)): everything in steps 1 and 2, `validateBatch`, the
producer-state rules. Checked per record (needs every record decoded, compressed batches
decompressed first, as Kafka does): record structure, key presence on compacted topics,
timestamp bounds and the max timestamp, offset deltas. The common case costs no Python work
per record: a compressed batch is decompressed into a reusable per-thread buffer
(`compression.decompress_view`: no allocation, no copy of the batch) and the C scanner
(`fastscan.scan_summary`) walks the records once, returning their timestamp bounds and
whether offsets are consecutive and keys present; only when it declines or something is
rejected does the per-record Python path run, to find Kafka's exact errors. The batch is
never recompressed: it is appended as it came (as Kafka appends a v2 batch in place when
the topic's `compression.type` is `producer` or the batch's own codec).

Stateful producer checks (epoch fencing, sequence gaps and duplicates, transaction state:
`ProducerAppendInfo`) are the broker's, fed by the producer fields of `ValidatedRecords`.
No clock is read here: `now` is injected.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import fastscan
from protocol.compression import DecompressionError, DecompressionLimitError, decompress_view
from protocol.errors import ErrorCode, ProtocolError
from protocol.records import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC,
    NO_PRODUCER_ID,
    NO_TIMESTAMP,
    BatchHeader,
    Compression,
    TimestampType,
    batch_crc_ok,
    iter_records,
    read_batch_header,
    scan_records,
    set_base_offset,
    set_max_timestamp,
    set_partition_leader_epoch,
)

__all__ = [
    "LATEST_PRODUCE_VERSION",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "LONG_MAX",
    "RecordError",
    "ValidationFailure",
    "ValidatedRecords",
    "validate_produce_records",
    "stamp_validated_batch",
]

LATEST_PRODUCE_VERSION = 13
DEFAULT_MAX_MESSAGE_BYTES = 1048588  # Kafka's max.message.bytes default
LONG_MAX = 2**63 - 1
_RECORD_OVERHEAD_V0 = 14  # LegacyRecord.RECORD_OVERHEAD_V0: ByteBufferLogInputStream's floor
_HEADER_SIZE_UP_TO_MAGIC = 17


@dataclass(frozen=True, slots=True)
class RecordError:
    """One entry of ProduceResponse's RecordErrors."""

    batch_index: int
    message: str | None

    def __str__(self) -> str:  # Java's ProduceResponse.RecordError.toString
        msg = "null" if self.message is None else f"'{self.message}'"
        return f"RecordError(batchIndex={self.batch_index}, message={msg})"


@dataclass(frozen=True, slots=True)
class ValidationFailure:
    """The partition's records are rejected with `error` (and `message`, Kafka's text)."""

    error: ErrorCode
    message: str
    record_errors: tuple[RecordError, ...] = ()

    ok = False


@dataclass(frozen=True, slots=True)
class ValidatedRecords:
    """The records passed; what the broker needs to append them and check idempotence.

    The one batch is `records[0:valid_bytes]`; bytes after it are a partial trailing batch
    that Kafka drops silently. `max_timestamp` and `timestamp_type` are what the batch
    header must carry once appended (`now` for LogAppendTime topics): see
    `stamp_validated_batch`.
    """

    header: BatchHeader
    valid_bytes: int
    trailing_bytes: int
    batch_count: int  # shallow count; always 1 for Produce v3+
    record_count: int
    compression: Compression
    producer_id: int
    producer_epoch: int
    base_sequence: int
    last_sequence: int
    is_transactional: bool
    last_offset_delta: int
    max_timestamp: int
    timestamp_type: TimestampType
    offsets_consecutive: bool

    ok = True

    @property
    def is_compressed(self) -> bool:
        return self.compression != Compression.NONE

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id > NO_PRODUCER_ID


ValidationResult = ValidatedRecords | ValidationFailure


def _batch_size_at(records: memoryview, pos: int) -> int | None:
    """Kafka's `ByteBufferLogInputStream.nextBatchSize`+`nextBatch`: size of a whole batch at
    `pos`, None if there is none (partial), `ProtocolError`-free failures as ValueError."""
    remaining = len(records) - pos
    if remaining < LOG_OVERHEAD:
        return None
    length = int.from_bytes(records[pos + 8 : pos + 12], "big", signed=True)
    if length < _RECORD_OVERHEAD_V0:
        raise _Corrupt(
            f"Record size {length} is less than the minimum record overhead ({_RECORD_OVERHEAD_V0})"
        )
    if remaining < _HEADER_SIZE_UP_TO_MAGIC:
        return None
    magic = int.from_bytes(records[pos + 16 : pos + 17], "big", signed=True)
    if magic < 0 or magic > MAGIC:
        raise _Corrupt(f"Invalid magic found in record: {magic}")
    size = length + LOG_OVERHEAD
    if remaining < size:
        return None
    return size


class _Corrupt(Exception):
    pass


def _in_tp(topic_partition: str) -> str:
    return f" in topic partition {topic_partition}" if topic_partition else ""


def validate_produce_records(
    records: bytes | bytearray | memoryview,
    *,
    now: int,
    api_version: int = LATEST_PRODUCE_VERSION,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    timestamp_before_max_ms: int = LONG_MAX,
    timestamp_after_max_ms: int = LONG_MAX,
    compacted: bool = False,
    topic_partition: str = "",
    allow_nonconsecutive_offsets: bool = False,
    max_decompressed_bytes: int | None = None,
) -> ValidationResult:
    """Validate one partition's `records` from a Produce request (see the module docstring).

    `now` is the broker clock in ms; the other keyword arguments are the topic's
    `max.message.bytes`, `message.timestamp.type`, `message.timestamp.before.max.ms`,
    `message.timestamp.after.max.ms` and `cleanup.policy` contains compact;
    `topic_partition` ("topic-0") only goes into messages. Never raises for bad bytes.
    """
    view = memoryview(records)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    tp = topic_partition
    version = api_version

    # 1. ProduceRequest.validateRecords
    try:
        size = _batch_size_at(view, 0)
        if size is None:
            return ValidationFailure(
                ErrorCode.INVALID_RECORD,
                f"Produce requests with version {version} must have at least one record batch "
                "per partition",
            )
        magic = view[16]
        if magic != MAGIC:
            return ValidationFailure(
                ErrorCode.INVALID_RECORD,
                f"Produce requests with version {version} are only allowed to contain record "
                "batches with magic version 2",
            )
        codec = (int.from_bytes(view[21:23], "big") & 0x07) if size >= 23 else 0
        if version < 7 and codec > 4:
            return ValidationFailure(
                ErrorCode.UNKNOWN_SERVER_ERROR, f"Unknown compression type id: {codec}"
            )
        if version < 7 and codec == Compression.ZSTD:
            return ValidationFailure(
                ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
                f"Produce requests with version {version} are not allowed to use ZStandard "
                "compression",
            )
        if _batch_size_at(view, size) is not None:
            return ValidationFailure(
                ErrorCode.INVALID_RECORD,
                f"Produce requests with version {version} are only allowed to contain exactly "
                "one record batch per partition",
            )
    except _Corrupt as e:
        return ValidationFailure(ErrorCode.CORRUPT_MESSAGE, str(e))

    # 2. UnifiedLog.analyzeAndValidateRecords
    base_offset = int.from_bytes(view[0:8], "big", signed=True)
    if base_offset != 0:
        return ValidationFailure(
            ErrorCode.INVALID_RECORD,
            f"The baseOffset of the record batch in the append to {tp} should be 0, "
            f"but it is {base_offset}",
        )
    if size > max_message_bytes:
        return ValidationFailure(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"The record batch size in the append to {tp} is {size} bytes which exceeds the "
            f"maximum configured value of {max_message_bytes}).",
        )
    crc = int.from_bytes(view[17:21], "big")
    if size < BATCH_HEADER_SIZE:
        return ValidationFailure(
            ErrorCode.CORRUPT_MESSAGE, f"Record is corrupt (stored crc = {crc}){_in_tp(tp)}."
        )
    header = read_batch_header(view, 0)
    if not batch_crc_ok(view, 0, header):
        return ValidationFailure(
            ErrorCode.CORRUPT_MESSAGE, f"Record is corrupt (stored crc = {crc}){_in_tp(tp)}."
        )
    if codec > 4:
        return ValidationFailure(
            ErrorCode.UNKNOWN_SERVER_ERROR, f"Unknown compression type id: {codec}"
        )

    # 3. LogValidator.validateBatch (origin CLIENT)
    last_delta = header.last_offset_delta
    count = header.records_count
    if last_delta + 1 <= 0:
        return ValidationFailure(
            ErrorCode.INVALID_RECORD,
            f"Batch has an invalid offset range: [0, {last_delta}]{_in_tp(tp)}",
        )
    if count <= 0:
        return ValidationFailure(
            ErrorCode.INVALID_RECORD,
            f"Invalid reported count for record batch: {count}{_in_tp(tp)}",
        )
    if last_delta + 1 != count:
        return ValidationFailure(
            ErrorCode.INVALID_RECORD,
            f"Inconsistent batch offset range [0, {last_delta}] and count of records "
            f"{count}{_in_tp(tp)}",
        )
    if header.is_control:
        return ValidationFailure(
            ErrorCode.INVALID_RECORD,
            f"Clients are not allowed to write control records{_in_tp(tp)}",
        )
    if header.has_producer_id and header.base_sequence < 0:
        return ValidationFailure(
            ErrorCode.INVALID_RECORD,
            f"Invalid sequence number {header.base_sequence} in record batch with producerId "
            f"{header.producer_id}{_in_tp(tp)}",
        )
    # Odradek: MemoryRecordsBuilder's producer-state rules, enforced up front.
    if header.is_transactional and not header.has_producer_id:
        return ValidationFailure(
            ErrorCode.INVALID_RECORD,
            "Cannot write transactional messages without a valid producer ID",
        )
    if header.has_producer_id and header.producer_epoch < 0:
        return ValidationFailure(ErrorCode.INVALID_RECORD, "Invalid negative producer epoch")

    # 3. LogValidator per record. The C summary settles the common case (every record
    # well formed and acceptable) without Python work per record; anything else takes the
    # per-record path below, which finds the exact errors.
    create_time = timestamp_type == TimestampType.CREATE_TIME
    batch_lat = header.timestamp_type == TimestampType.LOG_APPEND_TIME
    if fastscan.AVAILABLE and not batch_lat:
        data: memoryview
        try:
            if header.compression == Compression.NONE:
                # Uncompressed: scan the request's bytes in place (records_section copies).
                data = view[BATCH_HEADER_SIZE:size]
            else:
                # Decompressed into the thread's reusable buffer, scanned at once, dropped.
                data = decompress_view(header.compression, view[BATCH_HEADER_SIZE:size],
                                       max_decompressed_bytes)
        except DecompressionLimitError as e:
            return ValidationFailure(ErrorCode.INVALID_RECORD, str(e))
        except DecompressionError as e:
            return ValidationFailure(ErrorCode.UNKNOWN_SERVER_ERROR, str(e))
        except ProtocolError as e:
            return ValidationFailure(ErrorCode.INVALID_RECORD, str(e))
        summary = fastscan.scan_summary(data, count, header.base_timestamp)
        del data
        if summary is not None:
            min_ts, c_max_ts, consecutive, any_null_key = summary
            timestamps_ok = not create_time or (
                (min_ts == LONG_MAX or now - min_ts <= timestamp_before_max_ms)
                and (c_max_ts == NO_TIMESTAMP or c_max_ts - now <= timestamp_after_max_ms))
            if ((consecutive or allow_nonconsecutive_offsets)
                    and not (compacted and any_null_key) and timestamps_ok):
                return _accepted(header, size, len(view), count, last_delta,
                                 max(c_max_ts, NO_TIMESTAMP) if create_time else now,
                                 timestamp_type, consecutive)
    try:
        scanned = scan_records(view, 0, header, max_size=max_decompressed_bytes)
    except DecompressionLimitError as e:
        return ValidationFailure(ErrorCode.INVALID_RECORD, str(e))
    except DecompressionError as e:
        return ValidationFailure(ErrorCode.UNKNOWN_SERVER_ERROR, str(e))
    except ProtocolError as e:
        return ValidationFailure(ErrorCode.INVALID_RECORD, str(e))

    errors: list[RecordError] = []
    any_timestamp_error = False
    max_ts = NO_TIMESTAMP
    consecutive = True
    base_ts = header.base_timestamp
    lat_ts = header.max_timestamp
    low = now - timestamp_before_max_ms
    high = now + timestamp_after_max_ms
    index = 0
    for offset_delta, ts_delta, key_is_null in scanned:
        # Kafka's DefaultRecord.timestamp(): the batch maxTimestamp in a LogAppendTime batch.
        ts = lat_ts if batch_lat else base_ts + ts_delta
        if offset_delta != index:
            consecutive = False
        if ts > max_ts:
            max_ts = ts
        if key_is_null and compacted:
            errors.append(
                RecordError(index, f"Compacted topic cannot accept message without key{_in_tp(tp)}")
            )
        elif create_time and ts != NO_TIMESTAMP:
            # Kafka compares differences: now - ts > before or ts - now > after.
            if now - ts > timestamp_before_max_ms or ts - now > timestamp_after_max_ms:
                any_timestamp_error = True
                errors.append(
                    RecordError(
                        index,
                        f"Timestamp {ts} of message with offset {offset_delta} is out of "
                        f"range. The timestamp should be within [{low}, {high}]",
                    )
                )
        elif batch_lat:
            any_timestamp_error = True
            errors.append(
                RecordError(
                    index,
                    f"Invalid timestamp type in message {_record_str(view, index)}. Producer "
                    "should not set timestamp type to LogAppendTime.",
                )
            )
        if offset_delta != index and not allow_nonconsecutive_offsets:
            errors.append(
                RecordError(
                    index,
                    f"Record offset delta {offset_delta} is not consecutive, expected {index}",
                )
            )
        index += 1

    if errors:
        if any_timestamp_error:
            return ValidationFailure(
                ErrorCode.INVALID_TIMESTAMP,
                "One or more records have been rejected due to invalid timestamp",
                tuple(errors),
            )
        shown = ", ".join(str(e) for e in errors[:3])
        return ValidationFailure(
            ErrorCode.INVALID_RECORD,
            f"One or more records have been rejected due to {len(errors)} record errors in "
            f"total, and only showing the first three errors at most: [{shown}]",
            tuple(errors),
        )

    return _accepted(header, size, len(view), count, last_delta,
                     max_ts if create_time else now, timestamp_type, consecutive)


def _accepted(header: BatchHeader, size: int, total: int, count: int, last_delta: int,
              max_ts: int, timestamp_type: int, consecutive: bool) -> ValidatedRecords:
    return ValidatedRecords(
        header=header,
        valid_bytes=size,
        trailing_bytes=total - size,
        batch_count=1,
        record_count=count,
        compression=header.compression,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        last_sequence=header.last_sequence,
        is_transactional=header.is_transactional,
        last_offset_delta=last_delta,
        max_timestamp=max_ts,
        timestamp_type=TimestampType(timestamp_type),
        offsets_consecutive=consecutive,
    )


def _record_str(view: memoryview, index: int) -> str:
    """Java's `DefaultRecord.toString` of record `index` (only on the error path)."""
    for i, record in enumerate(iter_records(view)):
        if i == index:
            k = "null" if record.key is None else f"{len(record.key)} bytes"
            v = "null" if record.value is None else f"{len(record.value)} bytes"
            return (
                f"DefaultRecord(offset={record.offset}, timestamp={record.timestamp}, "
                f"key={k}, value={v})"
            )
    return f"record {index}"


def stamp_validated_batch(
    buf: bytearray | memoryview,
    result: ValidatedRecords,
    *,
    base_offset: int,
    partition_leader_epoch: int,
    pos: int = 0,
) -> None:
    """Do in place what Kafka's in-place `LogValidator` path does to the accepted batch.

    Sets baseOffset and partitionLeaderEpoch, and the timestamp type and maxTimestamp
    (rewriting the CRC only if they change). `buf` must be writable and hold the batch at
    `pos`; offsets must be consecutive (else the broker rebuilds the batch instead).
    """
    set_base_offset(buf, pos, base_offset)
    set_partition_leader_epoch(buf, pos, partition_leader_epoch)
    set_max_timestamp(buf, pos, result.timestamp_type, result.max_timestamp)
