"""Produce-side validator: one test per Kafka rule, asserting the exact error code."""

from __future__ import annotations

import struct

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder

from protocol.compression import compress
from protocol.errors import ErrorCode
from protocol.records import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    Compression,
    ControlType,
    Record,
    TimestampType,
    batch_crc_ok,
    build_batch,
    build_control_batch,
    iter_records,
    read_batch_header,
    write_batch_crc,
)
from protocol.validation import (
    RecordError,
    ValidatedRecords,
    ValidationFailure,
    stamp_validated_batch,
    validate_produce_records,
)

NOW = 1_700_000_000_000
TP = "orders-3"


def ok_batch(**kw: object) -> bytes:
    records = kw.pop("records", [(b"k1", b"v" * 40, None, NOW - 5), (b"k2", b"w" * 40, None, NOW)])
    return build_batch(records, **kw)  # type: ignore[arg-type]


def patched(raw: bytes, offset: int, fmt: str, value: int, *, fix_crc: bool = True) -> bytes:
    buf = bytearray(raw)
    struct.pack_into(fmt, buf, offset, value)
    if fix_crc:
        write_batch_crc(buf, 0)
    return bytes(buf)


def validate(
    raw: bytes | bytearray | memoryview, **kw: object
) -> ValidatedRecords | ValidationFailure:
    kw.setdefault("now", NOW)
    kw.setdefault("topic_partition", TP)
    return validate_produce_records(raw, **kw)  # type: ignore[arg-type]


def fails(raw: bytes | bytearray | memoryview, code: ErrorCode, **kw: object) -> ValidationFailure:
    result = validate(raw, **kw)
    assert isinstance(result, ValidationFailure), result
    assert result.error == code, result
    assert not result.ok
    return result


# --------------------------------------------------------------------------- success


@pytest.mark.parametrize("codec", list(Compression), ids=lambda c: c.name)
def test_valid_batch_passes_in_every_codec(codec: Compression) -> None:
    raw = ok_batch(compression=codec, producer_id=9, producer_epoch=2, base_sequence=40)
    result = validate(raw)
    assert isinstance(result, ValidatedRecords), result
    assert result.ok
    assert result.compression is codec
    assert result.is_compressed == (codec != Compression.NONE)
    assert (result.batch_count, result.record_count, result.last_offset_delta) == (1, 2, 1)
    assert (result.producer_id, result.producer_epoch) == (9, 2)
    assert (result.base_sequence, result.last_sequence) == (40, 41)
    assert result.has_producer_id and not result.is_transactional
    assert result.max_timestamp == NOW
    assert result.timestamp_type is TimestampType.CREATE_TIME
    assert result.valid_bytes == len(raw) and result.trailing_bytes == 0
    assert result.offsets_consecutive


@pytest.mark.parametrize("codec", list(Compression), ids=lambda c: c.name)
def test_batch_from_a_real_client_writer_passes(codec: Compression) -> None:
    builder = DefaultRecordBatchBuilder(2, codec, True, 5000, 1, 0, 1 << 20)
    for i in range(20):
        builder.append(i, NOW + i, b"key", b"value " * 30, [("h", b"1")])
    raw = bytes(builder.build())
    result = validate(raw)
    assert isinstance(result, ValidatedRecords), result
    assert result.is_transactional and result.record_count == 20
    assert result.max_timestamp == NOW + 19


def test_memoryview_and_bytearray_input() -> None:
    raw = ok_batch()
    assert isinstance(validate(memoryview(raw)), ValidatedRecords)
    assert isinstance(validate(bytearray(raw)), ValidatedRecords)


def test_log_append_time_topic_reports_now_and_stamp_applies_it() -> None:
    raw = bytearray(ok_batch(compression=Compression.LZ4))
    result = validate(raw, timestamp_type=TimestampType.LOG_APPEND_TIME)
    assert isinstance(result, ValidatedRecords), result
    assert result.max_timestamp == NOW and result.timestamp_type is TimestampType.LOG_APPEND_TIME
    stamp_validated_batch(raw, result, base_offset=1000, partition_leader_epoch=4)
    h = read_batch_header(raw)
    assert (h.base_offset, h.partition_leader_epoch) == (1000, 4)
    assert h.timestamp_type is TimestampType.LOG_APPEND_TIME and h.max_timestamp == NOW
    assert batch_crc_ok(raw, 0, h)
    assert [r.offset for r in iter_records(raw)] == [1000, 1001]


def test_stamp_fixes_a_wrong_max_timestamp_like_kafka() -> None:
    raw = bytearray(ok_batch(max_timestamp=NOW - 100))  # header lies; records say NOW
    result = validate(raw)
    assert isinstance(result, ValidatedRecords) and result.max_timestamp == NOW
    stamp_validated_batch(raw, result, base_offset=0, partition_leader_epoch=0)
    h = read_batch_header(raw)
    assert h.max_timestamp == NOW and batch_crc_ok(raw, 0, h)


def test_trailing_partial_batch_is_trimmed_not_rejected() -> None:
    # ProduceRequest.validateRecords sees one whole batch; UnifiedLog.trimInvalidBytes drops
    # the rest.
    raw = ok_batch()
    extra = ok_batch()[:30]
    result = validate(raw + extra)
    assert isinstance(result, ValidatedRecords), result
    assert result.valid_bytes == len(raw) and result.trailing_bytes == 30


# --------------------------------------------------------------------------- framing (step 1)


@pytest.mark.parametrize("size", [0, 5, 11, 12, 16, 60])
def test_no_whole_batch_is_invalid_record(size: int) -> None:
    raw = ok_batch()[:size]
    r = fails(raw, ErrorCode.INVALID_RECORD)
    assert "must have at least one record batch per partition" in r.message


def test_length_field_below_minimum_overhead_is_corrupt() -> None:
    raw = patched(ok_batch(), 8, ">i", 13, fix_crc=False)
    r = fails(raw, ErrorCode.CORRUPT_MESSAGE)
    assert r.message == "Record size 13 is less than the minimum record overhead (14)"


def test_length_mismatch_longer_than_data_is_no_batch() -> None:
    raw = patched(ok_batch(), 8, ">i", 10_000, fix_crc=False)
    fails(raw, ErrorCode.INVALID_RECORD)


def test_length_shorter_than_v2_header_is_corrupt() -> None:
    # 14 <= length < 49: framed as a batch, but smaller than a v2 header -> isValid false.
    raw = ok_batch()
    short = raw[:8] + struct.pack(">i", 30) + raw[12 : 12 + 30]
    fails(short, ErrorCode.CORRUPT_MESSAGE)


@pytest.mark.parametrize("magic", [3, 100, -1])
def test_invalid_magic_is_corrupt(magic: int) -> None:
    raw = patched(ok_batch(), 16, ">b", magic)
    r = fails(raw, ErrorCode.CORRUPT_MESSAGE)
    assert r.message == f"Invalid magic found in record: {magic}"


@pytest.mark.parametrize("magic", [0, 1])
def test_old_magic_is_invalid_record(magic: int) -> None:
    raw = patched(ok_batch(), 16, ">b", magic)
    r = fails(raw, ErrorCode.INVALID_RECORD, api_version=9)
    assert r.message == (
        "Produce requests with version 9 are only allowed to contain record batches with "
        "magic version 2"
    )


def test_two_batches_are_invalid_record() -> None:
    for extra in (
        ok_batch(),
        ok_batch(producer_id=1, producer_epoch=0, base_sequence=2),
        ok_batch(compression=Compression.GZIP),
    ):
        r = fails(ok_batch() + extra, ErrorCode.INVALID_RECORD)
        assert "exactly one record batch per partition" in r.message


def test_idempotent_producer_two_batches_invalid_record() -> None:
    first = ok_batch(producer_id=1, producer_epoch=0, base_sequence=0)
    second = ok_batch(producer_id=1, producer_epoch=0, base_sequence=2, base_offset=2)
    fails(first + second, ErrorCode.INVALID_RECORD)


def test_corrupt_second_batch_header_is_corrupt() -> None:
    tail = patched(ok_batch(), 16, ">b", 9, fix_crc=False)
    fails(ok_batch() + tail, ErrorCode.CORRUPT_MESSAGE)


def test_zstd_before_produce_v7_is_unsupported_compression() -> None:
    raw = ok_batch(compression=Compression.ZSTD)
    r = fails(raw, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, api_version=6)
    assert "not allowed to use ZStandard compression" in r.message
    assert isinstance(validate(raw, api_version=7), ValidatedRecords)


@pytest.mark.parametrize("codec_id", [5, 6, 7])
def test_unknown_codec_id_is_unknown_server_error(codec_id: int) -> None:
    raw = patched(ok_batch(), 21, ">h", codec_id)
    r = fails(raw, ErrorCode.UNKNOWN_SERVER_ERROR)
    assert r.message == f"Unknown compression type id: {codec_id}"


# --------------------------------------------------------------------------- UnifiedLog (step 2)


def test_nonzero_base_offset_is_invalid_record() -> None:
    raw = ok_batch(base_offset=5)
    r = fails(raw, ErrorCode.INVALID_RECORD)
    assert (
        r.message
        == f"The baseOffset of the record batch in the append to {TP} should be 0, but it is 5"
    )


def test_batch_larger_than_max_message_bytes() -> None:
    raw = ok_batch()
    r = fails(raw, ErrorCode.MESSAGE_TOO_LARGE, max_message_bytes=len(raw) - 1)
    assert (
        f"is {len(raw)} bytes which exceeds the maximum configured value of {len(raw) - 1}"
        in r.message
    )
    assert isinstance(validate(raw, max_message_bytes=len(raw)), ValidatedRecords)


def test_crc_mismatch_is_corrupt_message() -> None:
    raw = bytearray(ok_batch())
    raw[-3] ^= 0x55
    crc = read_batch_header(raw).crc
    r = fails(raw, ErrorCode.CORRUPT_MESSAGE)
    assert r.message == f"Record is corrupt (stored crc = {crc}) in topic partition {TP}."


def test_partition_leader_epoch_is_not_covered_by_crc() -> None:
    raw = patched(ok_batch(), 12, ">i", 77, fix_crc=False)
    assert isinstance(validate(raw), ValidatedRecords)


# --------------------------------------------------------------------------- LogValidator (step 3)


def test_negative_last_offset_delta_is_invalid_record() -> None:
    raw = patched(ok_batch(), 23, ">i", -1)
    r = fails(raw, ErrorCode.INVALID_RECORD)
    assert r.message.startswith("Batch has an invalid offset range: [0, -1]")


def test_zero_record_count_is_invalid_record() -> None:
    raw = patched(ok_batch(records=[(b"k", b"v", None, NOW)]), 57, ">i", 0)
    r = fails(raw, ErrorCode.INVALID_RECORD)
    assert r.message.startswith("Invalid reported count for record batch: 0")


def test_count_vs_last_offset_delta_is_invalid_record() -> None:
    raw = patched(ok_batch(), 23, ">i", 5)
    r = fails(raw, ErrorCode.INVALID_RECORD)
    assert (
        r.message
        == f"Inconsistent batch offset range [0, 5] and count of records 2 in topic partition {TP}"
    )


def test_declared_count_larger_than_records_is_invalid_record() -> None:
    raw = patched(patched(ok_batch(), 57, ">i", 3), 23, ">i", 2)
    fails(raw, ErrorCode.INVALID_RECORD)


@pytest.mark.parametrize("codec", list(Compression), ids=lambda c: c.name)
def test_malformed_record_structure_is_invalid_record(codec: Compression) -> None:
    body = b"\x0a\x00\xff\xff\xff\xff\xff\xff"  # a record whose varint never ends
    raw = bytearray(ok_batch(records=[(b"k", b"v", None, NOW)]))
    del raw[BATCH_HEADER_SIZE:]
    raw += compress(codec, body)
    struct.pack_into(">i", raw, 8, len(raw) - LOG_OVERHEAD)
    write_batch_crc(raw, 0)
    fails(raw, ErrorCode.INVALID_RECORD)


def test_undecompressable_payload_is_unknown_server_error() -> None:
    raw = bytearray(ok_batch(records=[(b"k", b"v", None, NOW)], compression=Compression.GZIP))
    raw[BATCH_HEADER_SIZE:] = b"\x1f\x8b" + b"\x00" * 20
    struct.pack_into(">i", raw, 8, len(raw) - LOG_OVERHEAD)
    write_batch_crc(raw, 0)
    r = fails(raw, ErrorCode.UNKNOWN_SERVER_ERROR)
    assert r.message.startswith("Failed to decompress record stream")


def test_decompression_bomb_bound() -> None:
    raw = ok_batch(records=[(b"k", b"\x00" * 500_000, None, NOW)], compression=Compression.ZSTD)
    fails(raw, ErrorCode.INVALID_RECORD, max_decompressed_bytes=10_000)
    assert isinstance(validate(raw, max_decompressed_bytes=600_000), ValidatedRecords)


def test_control_batch_from_client_is_invalid_record() -> None:
    raw = build_control_batch(
        ControlType.COMMIT, producer_id=5, producer_epoch=0, coordinator_epoch=1, timestamp=NOW
    )
    r = fails(raw, ErrorCode.INVALID_RECORD)
    assert r.message == f"Clients are not allowed to write control records in topic partition {TP}"


def test_producer_id_without_sequence_is_invalid_record() -> None:
    raw = ok_batch(producer_id=77, producer_epoch=0, base_sequence=-1)
    r = fails(raw, ErrorCode.INVALID_RECORD)
    assert (
        r.message
        == f"Invalid sequence number -1 in record batch with producerId 77 in topic partition {TP}"
    )


def test_transactional_without_producer_id_is_invalid_record() -> None:
    raw = ok_batch(is_transactional=True)
    r = fails(raw, ErrorCode.INVALID_RECORD)
    assert r.message == "Cannot write transactional messages without a valid producer ID"


def test_producer_id_with_negative_epoch_is_invalid_record() -> None:
    raw = ok_batch(producer_id=77, producer_epoch=-1, base_sequence=0)
    fails(raw, ErrorCode.INVALID_RECORD)


def test_sequence_near_wrap_is_accepted_and_wraps() -> None:
    raw = ok_batch(producer_id=7, producer_epoch=0, base_sequence=2**31 - 1)
    result = validate(raw)
    assert isinstance(result, ValidatedRecords)
    assert (result.base_sequence, result.last_sequence) == (2**31 - 1, 0)


@pytest.mark.parametrize("codec", [Compression.NONE, Compression.SNAPPY], ids=lambda c: c.name)
def test_timestamp_too_old_is_invalid_timestamp(codec: Compression) -> None:
    raw = ok_batch(
        compression=codec,
        records=[(b"a", b"1", None, NOW), (b"b", b"2", None, NOW - 3_600_001)],
    )
    r = fails(raw, ErrorCode.INVALID_TIMESTAMP, timestamp_before_max_ms=3_600_000)
    assert r.message == "One or more records have been rejected due to invalid timestamp"
    assert r.record_errors == (
        RecordError(
            1,
            f"Timestamp {NOW - 3_600_001} of message with offset 1 is out of range. The "
            f"timestamp should be within [{NOW - 3_600_000}, {NOW + 2**63 - 1}]",
        ),
    )


def test_timestamp_too_new_is_invalid_timestamp() -> None:
    raw = ok_batch(records=[(b"a", b"1", None, NOW + 1001)])
    r = fails(raw, ErrorCode.INVALID_TIMESTAMP, timestamp_after_max_ms=1000)
    assert [e.batch_index for e in r.record_errors] == [0]
    assert isinstance(validate(raw, timestamp_after_max_ms=1001), ValidatedRecords)


def test_timestamp_bounds_ignored_for_log_append_time_topics_and_missing_timestamps() -> None:
    old = ok_batch(records=[(b"a", b"1", None, 5)])
    assert isinstance(
        validate(old, timestamp_type=TimestampType.LOG_APPEND_TIME, timestamp_before_max_ms=1),
        ValidatedRecords,
    )
    missing = ok_batch(records=[(b"a", b"1", None, -1)])
    assert isinstance(validate(missing, timestamp_before_max_ms=1), ValidatedRecords)


def test_producer_setting_log_append_time_is_invalid_timestamp() -> None:
    raw = ok_batch(timestamp_type=TimestampType.LOG_APPEND_TIME)
    r = fails(raw, ErrorCode.INVALID_TIMESTAMP, timestamp_type=TimestampType.LOG_APPEND_TIME)
    assert len(r.record_errors) == 2
    assert "Producer should not set timestamp type to LogAppendTime." in r.record_errors[0].message


@pytest.mark.parametrize("codec", list(Compression), ids=lambda c: c.name)
def test_compacted_topic_requires_keys(codec: Compression) -> None:
    raw = ok_batch(
        compression=codec,
        records=[(b"a", b"1", None, NOW), (None, b"2", None, NOW), (None, None, None, NOW)],
    )
    r = fails(raw, ErrorCode.INVALID_RECORD, compacted=True)
    msg = f"Compacted topic cannot accept message without key in topic partition {TP}"
    assert r.record_errors == (RecordError(1, msg), RecordError(2, msg))
    assert r.message == (
        "One or more records have been rejected due to 2 record errors in total, and only "
        f"showing the first three errors at most: [RecordError(batchIndex=1, message='{msg}'), "
        f"RecordError(batchIndex=2, message='{msg}')]"
    )
    assert isinstance(validate(raw, compacted=False), ValidatedRecords)
    assert isinstance(validate(ok_batch(compression=codec), compacted=True), ValidatedRecords)


def test_timestamp_error_wins_over_key_error() -> None:
    raw = ok_batch(records=[(None, b"1", None, NOW), (b"k", b"2", None, 1)])
    r = fails(raw, ErrorCode.INVALID_TIMESTAMP, compacted=True, timestamp_before_max_ms=1000)
    assert [e.batch_index for e in r.record_errors] == [0, 1]


@pytest.mark.parametrize("codec", [Compression.NONE, Compression.GZIP], ids=lambda c: c.name)
def test_nonconsecutive_inner_offsets_are_invalid_record(codec: Compression) -> None:
    recs = [Record(0, NOW, b"a", b"1"), Record(2, NOW, b"b", b"2")]
    raw = build_batch(recs, compression=codec, last_offset_delta=1)
    r = fails(raw, ErrorCode.INVALID_RECORD)
    assert [e.batch_index for e in r.record_errors] == [1]
    # Kafka's leniency on request: accepted, flagged for a rebuild.
    lenient = validate(raw, allow_nonconsecutive_offsets=True)
    assert isinstance(lenient, ValidatedRecords) and not lenient.offsets_consecutive
