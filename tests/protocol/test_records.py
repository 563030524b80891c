"""Record batch (magic v2) tests, checked against kafka-python's independent parser/writer."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from protocol.errors import ProtocolError
from protocol.records import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    NO_SEQUENCE,
    BatchHeader,
    Compression,
    ControlType,
    Header,
    Record,
    TimestampType,
    batch_crc_ok,
    build_batch,
    build_control_batch,
    iter_batches,
    iter_records,
    parse_control_record,
    read_batch_header,
    scan_records,
    set_base_offset,
    set_log_append_time,
    set_max_timestamp,
    set_partition_leader_epoch,
    write_batch_crc,
)

CODECS = list(Compression)

# One batch written by hand, field by field, from the layout in implementation.html.
# One record: key b"k", value b"v", timestamp delta 0, offset delta 0, no headers.
_RECORD = bytes([0x00, 0x00, 0x00, 0x02]) + b"k" + bytes([0x02]) + b"v" + bytes([0x00])
_RECORD = bytes([len(_RECORD) << 1]) + _RECORD
_AFTER_CRC = (
    struct.pack(">hiqqqhii", 0x10, 0, 1_700_000_000_000, 1_700_000_000_000, 42, 7, 9, 1) + _RECORD
)


def _known_batch() -> bytes:
    from crc32c import crc32c

    crc = crc32c(_AFTER_CRC)
    length = 4 + 1 + 4 + len(_AFTER_CRC)
    return struct.pack(">qiibI", 100, length, 5, 2, crc) + _AFTER_CRC


# --------------------------------------------------------------------------- headers


def test_header_parse_of_known_bytes() -> None:
    raw = _known_batch()
    h = read_batch_header(raw)
    assert h == BatchHeader(
        base_offset=100,
        batch_length=len(raw) - 12,
        partition_leader_epoch=5,
        magic=2,
        crc=h.crc,
        attributes=0x10,
        last_offset_delta=0,
        base_timestamp=1_700_000_000_000,
        max_timestamp=1_700_000_000_000,
        producer_id=42,
        producer_epoch=7,
        base_sequence=9,
        records_count=1,
    )
    assert h.compression is Compression.NONE
    assert h.timestamp_type is TimestampType.CREATE_TIME
    assert h.is_transactional and not h.is_control and not h.has_delete_horizon
    assert h.size == len(raw)
    assert h.last_offset == 100 and h.next_offset == 101
    assert h.last_sequence == 9
    assert batch_crc_ok(raw, 0, h)
    assert list(iter_records(raw)) == [
        Record(offset=100, timestamp=1_700_000_000_000, key=b"k", value=b"v", headers=[])
    ]


def test_header_attribute_bits() -> None:
    def with_attrs(a: int) -> BatchHeader:
        return BatchHeader(0, 49, -1, 2, 0, a, 0, 0, 0, -1, -1, -1, 0)

    assert with_attrs(0x04).compression is Compression.ZSTD
    assert with_attrs(0x08).timestamp_type is TimestampType.LOG_APPEND_TIME
    assert with_attrs(0x20).is_control
    assert with_attrs(0x40).has_delete_horizon
    with pytest.raises(ProtocolError):
        _ = with_attrs(0x05).compression


def test_last_sequence_wraps_like_kafka() -> None:
    def h(base_seq: int, delta: int) -> BatchHeader:
        return BatchHeader(0, 49, -1, 2, 0, 0, delta, 0, 0, 1, 0, base_seq, delta + 1)

    assert h(2**31 - 1, 0).last_sequence == 2**31 - 1
    assert h(2**31 - 1, 1).last_sequence == 0
    assert h(2**31 - 3, 5).last_sequence == 2
    assert h(NO_SEQUENCE, 5).last_sequence == NO_SEQUENCE
    # Agrees with kafka-python's implementation of the same rule.
    raw = build_batch([(b"k", b"v")] * 6, producer_id=1, producer_epoch=0, base_sequence=2**31 - 3)
    assert read_batch_header(raw).last_sequence == DefaultRecordBatch(raw).last_sequence == 2


def test_read_batch_header_too_short() -> None:
    raw = _known_batch()
    with pytest.raises(ProtocolError):
        read_batch_header(raw[:60])
    with pytest.raises(ProtocolError):
        read_batch_header(raw, len(raw) - 60)
    assert read_batch_header(b"\x00" * 3 + raw, 3).base_offset == 100


def test_crc_detects_a_flipped_byte() -> None:
    raw = bytearray(_known_batch())
    raw[-2] ^= 1
    assert not batch_crc_ok(raw, 0, read_batch_header(raw))
    assert not batch_crc_ok(raw[:-1], 0, read_batch_header(raw))  # cut short


def test_iter_batches_stops_at_partial_trailing_batch() -> None:
    a = build_batch([(b"a", b"1")], base_offset=0)
    b = build_batch([(b"b", b"2"), (b"c", b"3")], base_offset=1, compression=Compression.GZIP)
    c = build_batch([(b"d", b"4")], base_offset=3)
    log = a + b + c
    assert [(p, h.base_offset) for p, h in iter_batches(log)] == [
        (0, 0),
        (len(a), 1),
        (len(a + b), 3),
    ]
    for cut in (1, 30, BATCH_HEADER_SIZE, len(c) - 1):
        assert [p for p, _ in iter_batches(log[: len(log) - cut])] == [0, len(a)]
    assert list(iter_batches(log, len(a))) == [
        (len(a), read_batch_header(b)),
        (len(a + b), read_batch_header(c)),
    ]
    assert list(iter_batches(b"")) == []


def test_iter_batches_works_on_memoryview_and_bytearray() -> None:
    log = build_batch([(b"a", b"1")]) + build_batch([(b"b", b"2")], base_offset=1)
    expected = list(iter_batches(log))
    assert list(iter_batches(memoryview(log))) == expected
    assert list(iter_batches(bytearray(log))) == expected


def test_iter_batches_rejects_impossible_length() -> None:
    raw = bytearray(build_batch([(b"a", b"1")]) * 2)
    struct.pack_into(">i", raw, 8, 10)
    with pytest.raises(ProtocolError):
        list(iter_batches(raw))


# --------------------------------------------------------------------------- in-place patches


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_set_base_offset_and_epoch_keep_crc_valid(codec: Compression) -> None:
    raw = bytearray(build_batch([(b"k", b"v" * 50), (None, b"w" * 50)], compression=codec))
    set_base_offset(raw, 0, 123_456_789_012)
    set_partition_leader_epoch(raw, 0, 17)
    h = read_batch_header(raw)
    assert (h.base_offset, h.partition_leader_epoch) == (123_456_789_012, 17)
    assert batch_crc_ok(raw, 0, h)
    k = DefaultRecordBatch(bytes(raw))
    assert k.validate_crc()
    assert k.base_offset == 123_456_789_012 and k.leader_epoch == 17
    assert [r.offset for r in k] == [123_456_789_012, 123_456_789_013]


def test_set_base_offset_on_memoryview_in_a_larger_buffer() -> None:
    first = build_batch([(b"a", b"1")])
    buf = bytearray(first + build_batch([(b"b", b"2")]))
    with memoryview(buf) as view:
        set_base_offset(view, len(first), 99)
    assert [h.base_offset for _, h in iter_batches(buf)] == [0, 99]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_set_log_append_time(codec: Compression) -> None:
    raw = bytearray(
        build_batch(
            [(b"k", b"v" * 50, None, 1000), (b"k2", b"x" * 50, None, 1200)], compression=codec
        )
    )
    set_log_append_time(raw, 0, 5555)
    h = read_batch_header(raw)
    assert h.timestamp_type is TimestampType.LOG_APPEND_TIME
    assert h.max_timestamp == 5555
    assert h.compression is codec
    assert batch_crc_ok(raw, 0, h)
    k = DefaultRecordBatch(bytes(raw))
    assert k.validate_crc()
    assert k.timestamp_type == 1
    assert [(r.timestamp, r.timestamp_type) for r in k] == [(5555, 1), (5555, 1)]
    assert [r.timestamp for r in iter_records(raw)] == [5555, 5555]


def test_set_max_timestamp_back_to_create_time() -> None:
    raw = bytearray(build_batch([(b"k", b"v", None, 1000)]))
    before = bytes(raw)
    set_max_timestamp(raw, 0, TimestampType.CREATE_TIME, 1000)
    assert bytes(raw) == before  # unchanged: no CRC rewrite
    set_max_timestamp(raw, 0, TimestampType.CREATE_TIME, 2000)
    h = read_batch_header(raw)
    assert h.max_timestamp == 2000 and h.timestamp_type is TimestampType.CREATE_TIME
    assert batch_crc_ok(raw, 0, h)


# --------------------------------------------------------------------------- round trips

_headers = st.lists(
    st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=8))), max_size=3
)
_record_tuples = st.lists(
    st.tuples(
        st.one_of(st.none(), st.binary(max_size=40)),
        st.one_of(st.none(), st.binary(max_size=200)),
        _headers,
        st.integers(min_value=-1, max_value=2**50),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=_record_tuples,
    codec=st.sampled_from(CODECS),
    base_offset=st.integers(min_value=0, max_value=2**62),
)
def test_build_then_iter_records_round_trip(
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]],
    codec: Compression,
    base_offset: int,
) -> None:
    raw = build_batch(records, base_offset=base_offset, compression=codec)
    h = read_batch_header(raw)
    assert batch_crc_ok(raw, 0, h)
    assert h.records_count == len(records)
    assert h.last_offset_delta == len(records) - 1
    assert h.base_timestamp == records[0][3]
    assert h.max_timestamp == max(r[3] for r in records)
    got = list(iter_records(raw))
    assert got == [
        Record(base_offset + i, ts, k, v, [Header(hk, hv) for hk, hv in hs])
        for i, (k, v, hs, ts) in enumerate(records)
    ]
    # kafka-python's own parser, with CRC validation, agrees.
    kb = DefaultRecordBatch(raw)
    assert kb.validate_crc()
    assert kb.compression_type == codec
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in kb] == [
        (base_offset + i, ts, k, v, list(hs)) for i, (k, v, hs, ts) in enumerate(records)
    ]


def test_build_batch_with_record_objects_uses_absolute_offsets_and_timestamps() -> None:
    recs = [
        Record(offset=50, timestamp=2000, key=b"a", value=b"1"),
        Record(offset=52, timestamp=1990, key=None, value=b"2", headers=[Header("h", None)]),
    ]
    raw = build_batch(recs, base_offset=50, producer_id=3, producer_epoch=4, base_sequence=10)
    h = read_batch_header(raw)
    assert (h.last_offset_delta, h.base_timestamp, h.max_timestamp) == (2, 2000, 2000)
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (3, 4, 10)
    assert list(iter_records(raw)) == recs


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_batches_from_kafka_python_builder_decode(codec: Compression) -> None:
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=codec, is_transactional=False,
        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20,
    )  # fmt: skip
    expected = []
    for i in range(30):
        key = None if i % 7 == 0 else f"key-{i}".encode()
        value = None if i % 11 == 0 else (b"value %d " % i) * 20
        headers = [("trace", b"%d" % i), ("empty", None)] if i % 3 == 0 else []
        builder.append(i, 1_700_000_000_000 + i * 3, key, value, headers)
        expected.append(
            Record(i, 1_700_000_000_000 + i * 3, key, value, [Header(k, v) for k, v in headers])
        )
    raw = bytes(builder.build())
    h = read_batch_header(raw)
    assert h.compression is codec  # compressible data: the builder kept the codec
    assert batch_crc_ok(raw, 0, h)
    assert h.records_count == 30 and h.last_offset_delta == 29
    assert list(iter_records(raw)) == expected


def test_kafka_python_idempotent_transactional_batch_fields() -> None:
    builder = DefaultRecordBatchBuilder(2, 0, True, 77, 3, 41, 1 << 20)
    builder.append(0, 10, b"k", b"v", [])
    builder.append(1, 11, b"k", b"v", [])
    h = read_batch_header(bytes(builder.build()))
    assert (h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence) == (77, 3, 41, 42)
    assert h.is_transactional


# --------------------------------------------------------------------------- control batches


@pytest.mark.parametrize("ctype", list(ControlType), ids=lambda c: c.name)
def test_control_batch_round_trip(ctype: ControlType) -> None:
    raw = build_control_batch(
        ctype,
        producer_id=1234,
        producer_epoch=5,
        coordinator_epoch=9,
        base_offset=300,
        timestamp=777,
    )
    h = read_batch_header(raw)
    assert h.is_control and h.is_transactional
    assert (h.producer_id, h.producer_epoch, h.base_offset, h.records_count) == (1234, 5, 300, 1)
    assert batch_crc_ok(raw, 0, h)
    (record,) = list(iter_records(raw))
    assert record.offset == 300 and record.timestamp == 777
    assert record.key == struct.pack(">hh", 0, int(ctype))
    assert parse_control_record(record) == (ctype, 9)
    (krec,) = list(DefaultRecordBatch(raw))
    assert DefaultRecordBatch(raw).is_control_batch
    assert (krec.version, krec.type) == (0, int(ctype))


def test_parse_control_record_rejects_non_markers() -> None:
    def rec(key: bytes | None, value: bytes | None) -> Record:
        return Record(0, 0, key, value, [])

    with pytest.raises(ProtocolError):
        parse_control_record(rec(struct.pack(">hh", 0, 2), struct.pack(">hi", 0, 1)))
    with pytest.raises(ProtocolError):
        parse_control_record(rec(b"\x00", struct.pack(">hi", 0, 1)))
    with pytest.raises(ProtocolError):
        parse_control_record(rec(struct.pack(">hh", 0, 1), b"\x00\x00"))
    with pytest.raises(ProtocolError):
        parse_control_record(rec(struct.pack(">hh", -1, 1), struct.pack(">hi", 0, 1)))


# --------------------------------------------------------------------------- malformed input


def test_count_mismatch_raises() -> None:
    raw = bytearray(build_batch([(b"a", b"1"), (b"b", b"2")]))
    struct.pack_into(">i", raw, 57, 3)
    with pytest.raises(ProtocolError):
        list(iter_records(raw))
    struct.pack_into(">i", raw, 57, 1)
    with pytest.raises(ProtocolError):
        list(iter_records(raw))
    struct.pack_into(">i", raw, 57, -1)
    with pytest.raises(ProtocolError):
        list(iter_records(raw))


def test_overlong_varint_raises() -> None:
    body = bytes([0xFF] * 6)  # a varint longer than 5 bytes
    raw = bytearray(build_batch([(b"a", b"1")]))
    raw[BATCH_HEADER_SIZE:] = body
    struct.pack_into(">i", raw, 8, len(raw) - LOG_OVERHEAD)
    with pytest.raises(ProtocolError):
        list(iter_records(raw))


def test_wrong_magic_raises() -> None:
    raw = bytearray(build_batch([(b"a", b"1")]))
    raw[16] = 1
    with pytest.raises(ProtocolError):
        list(iter_records(raw))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    codec=st.sampled_from(CODECS),
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), st.integers(0, 255)), max_size=4
    ),
    cut=st.integers(min_value=0, max_value=40),
)
def test_mutated_batches_raise_only_protocol_error(
    codec: Compression, edits: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(
        build_batch(
            [(b"key", b"value" * 10, [("h", b"v")], 5), (None, b"", [], 9), (b"k", None)],
            compression=codec,
        )
    )
    for where, byte in edits:
        # Mostly mutate the records section, where the parsing happens.
        raw[BATCH_HEADER_SIZE - 4 + where % (len(raw) - BATCH_HEADER_SIZE + 4)] = byte
    if cut:
        del raw[-cut:]
    try:
        for pos, h in iter_batches(raw):
            batch_crc_ok(raw, pos, h)
    except ProtocolError:
        pass
    # The full decoder and the validator's scanner accept and reject the same bytes.
    try:
        full: list[tuple[int, int, bool]] | None = [
            (r.offset, r.timestamp, r.key is None) for r in iter_records(raw)
        ]
    except ProtocolError:
        full = None
    try:
        h = read_batch_header(raw)
        lat = h.timestamp_type is TimestampType.LOG_APPEND_TIME
        scanned: list[tuple[int, int, bool]] | None = [
            (h.base_offset + od, h.max_timestamp if lat else h.base_timestamp + td, null)
            for od, td, null in scan_records(raw)
        ]
    except ProtocolError:
        scanned = None
    assert full == scanned


def test_scan_records_matches_iter_records() -> None:
    raw = build_batch([(b"k", b"v", [("a", b"b")], 10), (None, None, [], 15)], base_offset=4)
    assert scan_records(raw) == [(0, 0, False), (1, 5, True)]


def test_header_key_bytes_that_are_not_utf8_survive_a_round_trip() -> None:
    # Java decodes header keys leniently; we must not reject what Kafka accepts.
    raw = bytearray(build_batch([(b"k", b"v", [("ab", b"x")], 1)]))
    at = raw.index(b"ab")
    raw[at : at + 2] = b"\xff\xfe"
    write_batch_crc(raw, 0)
    (record,) = list(iter_records(raw))
    assert record.headers[0].key.encode("utf-8", "surrogateescape") == b"\xff\xfe"
    again = build_batch([record])
    assert bytes(again[BATCH_HEADER_SIZE:]) == bytes(raw[BATCH_HEADER_SIZE:])
