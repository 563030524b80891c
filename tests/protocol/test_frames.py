"""Frame encode/decode: header versions, size prefixes, errors, records pass-through."""

from __future__ import annotations

import struct
import uuid

import pytest

from protocol.errors import ProtocolError, UnsupportedVersionError
from protocol.frames import (
    RequestFrame,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    frame_size,
    join_chunks,
    request_header_version,
    response_header_version,
)
from protocol.messages import REQUESTS, RESPONSES
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.api_versions_response import ApiVersion, ApiVersionsResponse
from protocol.messages.fetch_response import FetchableTopicResponse, FetchResponse, PartitionData
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from protocol.messages.metadata_response import MetadataResponse, MetadataResponseTopic
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)


class FileSlice:
    """A stand-in for storage's file-slice placeholder: has a length, is not bytes."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length


def _strip_size(chunks: list) -> bytes:
    data = join_chunks(chunks)
    (size,) = struct.unpack(">i", data[:4])
    assert size == len(data) - 4
    return data[4:]


def test_header_versions() -> None:
    assert request_header_version(0, 8) == 1
    assert request_header_version(0, 9) == 2
    assert request_header_version(18, 2) == 1
    assert request_header_version(18, 3) == 2
    assert request_header_version(7, 0) == 0
    assert response_header_version(0, 8) == 0
    assert response_header_version(0, 9) == 1
    assert response_header_version(18, 3) == 0  # ApiVersions responses: always v0
    assert response_header_version(18, 4) == 0
    for key, cls in REQUESTS.items():
        fmin = cls.FLEXIBLE_MIN_VERSION
        for v in range(cls.MIN_VERSION, cls.MAX_VERSION + 1):
            flexible = fmin is not None and v >= fmin
            assert request_header_version(key, v) == (2 if flexible else 1)


@pytest.mark.parametrize("version", [3, 8, 9, 12, 13])
def test_produce_request_round_trip(version: int) -> None:
    body = ProduceRequest(transactional_id="tx" if version >= 3 else None, acks=-1,
                          timeout_ms=30000, topic_data=[TopicProduceData(
                              name="topic" if version < 13 else "",
                              topic_id=uuid.uuid4() if version >= 13 else uuid.UUID(int=0),
                              partition_data=[PartitionProduceData(3, b"batch-bytes")])])
    chunks = encode_request(0, version, 42, "client-1", body)
    frame = decode_request(_strip_size(chunks))
    assert isinstance(frame, RequestFrame)
    assert (frame.api_key, frame.api_version, frame.correlation_id) == (0, version, 42)
    assert frame.client_id == "client-1"
    assert frame.header.request_api_key == 0
    assert frame.body == body
    # the header's tagged section exists only in header v2
    hdr_len = 2 + 2 + 4 + 2 + len("client-1") + (1 if version >= 9 else 0)
    assert join_chunks(chunks)[4:4 + hdr_len][-1:] == (b"\x00" if version >= 9 else b"1")


def test_null_client_id() -> None:
    chunks = encode_request(3, 12, 1, None, MetadataRequest(topics=None))
    frame = decode_request(_strip_size(chunks))
    assert frame.client_id is None
    assert frame.body.topics is None


def test_api_versions_response_uses_header_v0_even_when_flexible() -> None:
    body = ApiVersionsResponse(error_code=0, api_keys=[ApiVersion(0, 3, 13)], throttle_time_ms=0)
    data = _strip_size(encode_response(18, 3, 99, body))
    # header v0 is just the correlation id: no tagged-field byte before the body
    assert data[:4] == struct.pack(">i", 99)
    assert data[4:6] == b"\x00\x00"  # error_code
    assert decode_response(data, 18, 3) == (99, body)


def test_flexible_response_has_header_tag_section() -> None:
    body = MetadataResponse(topics=[MetadataResponseTopic(name="t")])
    data = _strip_size(encode_response(3, 12, 5, body))
    assert data[:5] == struct.pack(">i", 5) + b"\x00"
    corr, back = decode_response(data, 3, 12)
    assert corr == 5 and back == body
    data0 = _strip_size(encode_response(3, 8, 5, body))
    assert decode_response(data0, 3, 8) == (5, body)


def test_unknown_api_key_raises_with_ids() -> None:
    frame = struct.pack(">hhi", 9999, 0, 1234) + b"\x00\x00"
    with pytest.raises(UnsupportedVersionError) as ei:
        decode_request(frame)
    assert (ei.value.api_key, ei.value.api_version, ei.value.correlation_id) == (9999, 0, 1234)


def test_api_versions_too_new_raises_with_ids() -> None:
    # A future ApiVersions version with a body we cannot parse: still identified.
    frame = struct.pack(">hhi", 18, 99, 77) + b"\x00\x03abc\x00garbage"
    with pytest.raises(UnsupportedVersionError) as ei:
        decode_request(frame)
    assert (ei.value.api_key, ei.value.api_version, ei.value.correlation_id) == (18, 99, 77)
    assert isinstance(ei.value, ProtocolError)


def test_version_below_range_is_unsupported() -> None:
    frame = struct.pack(">hhi", 0, 2, 5) + b"\x00\x00"  # Produce v2 is gone in Kafka 4
    with pytest.raises(UnsupportedVersionError):
        decode_request(frame)


def test_truncated_frames_are_protocol_errors() -> None:
    body = MetadataRequest(topics=[MetadataRequestTopic(name="abc")])
    data = _strip_size(encode_request(3, 12, 1, "c", body))
    for cut in range(len(data)):
        with pytest.raises(ProtocolError):
            decode_request(data[:cut])
    # trailing bytes after a request body are ignored, as Kafka does (librdkafka sends some)
    assert decode_request(data + b"\x01\x00\x00").body == body
    # ... but not after a response body
    resp = _strip_size(encode_response(3, 12, 1, MetadataResponse()))
    with pytest.raises(ProtocolError):
        decode_response(resp + b"\x00", 3, 12)


def test_file_slice_records_pass_through() -> None:
    s1, s2 = FileSlice(1000), FileSlice(1 << 20)
    body = FetchResponse(responses=[FetchableTopicResponse(topic="t", partitions=[
        PartitionData(partition_index=0, high_watermark=10, records=s1),
        PartitionData(partition_index=1, high_watermark=10, records=s2)])])
    for version in (4, 11, 12, 16):
        if version >= 13:
            body.responses[0].topic = ""
            body.responses[0].topic_id = uuid.uuid4()
        chunks = encode_response(1, version, 8, body)
        assert chunks[1] is s1 and chunks[3] is s2  # the placeholders themselves, untouched
        assert all(type(c) is bytes for i, c in enumerate(chunks) if i not in (1, 3))
        # coalesced: bytes, slice, bytes, slice (+ trailing tagged-field bytes when flexible)
        assert len(chunks) == (5 if version >= 12 else 4)
        total = frame_size(chunks)
        (size,) = struct.unpack(">i", chunks[0][:4])
        assert size == total - 4
        # length prefixes come from len(placeholder): replace them with real bytes and decode
        real = [b"\xaa" * len(c) if isinstance(c, FileSlice) else c for c in chunks]
        corr, back = decode_response(join_chunks(real)[4:], 1, version)
        assert corr == 8
        recs = [p.records for p in back.responses[0].partitions]
        assert [r.nbytes for r in recs] == [1000, 1 << 20]


def test_memoryview_records_count_bytes_not_items() -> None:
    mv = memoryview(bytearray(64)).cast("I")  # 16 items, 64 bytes
    body = ProduceRequest(acks=1, topic_data=[TopicProduceData(
        name="t", partition_data=[PartitionProduceData(0, mv)])])
    chunks = encode_request(0, 9, 1, "c", body)
    assert frame_size(chunks) == len(join_chunks(chunks))
    frame = decode_request(join_chunks(chunks)[4:])
    assert frame.body.topic_data[0].partition_data[0].records.nbytes == 64


def test_every_api_round_trips_a_default_body() -> None:
    for key, req_cls in REQUESTS.items():
        resp_cls = RESPONSES[key]
        for v in range(req_cls.MIN_VERSION, req_cls.MAX_VERSION + 1):
            frame = decode_request(_strip_size(encode_request(key, v, v, "x", req_cls())))
            assert frame.body == req_cls()
        for v in range(resp_cls.MIN_VERSION, resp_cls.MAX_VERSION + 1):
            assert decode_response(_strip_size(encode_response(key, v, 3, resp_cls())), key, v) \
                == (3, resp_cls())


def test_short_frame_is_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode_request(b"\x00\x12\x00")


def test_api_versions_request_body_v0_is_empty() -> None:
    chunks = encode_request(18, 0, 1, "abc", ApiVersionsRequest())
    assert join_chunks(chunks) == bytes.fromhex("0000000d 0012 0000 00000001 0003") + b"abc"
