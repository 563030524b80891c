"""Hypothesis round trips for every generated class and version, plus known byte layouts.

Strategies come from each class's `FIELDS` metadata, never from hand-written per-message code:
fields present in the version get random values (nullability per version, full-width ints,
strings/bytes/arrays of varied length including empty, unknown tagged fields in flexible
versions); absent fields keep their defaults. Each value must survive encode -> decode
unchanged and re-encode to identical bytes.

By default one version per distinct wire layout is tested (versions sharing an encoder function
have identical layouts); the slow-marked variant covers every version with a larger budget.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import coordinator, messages
from protocol.frames import join_chunks
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.fetch_response import (
    EpochEndOffset,
    FetchableTopicResponse,
    FetchResponse,
    PartitionData,
)
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from protocol.messages.request_header import RequestHeader
from protocol.runtime import FieldSpec, FieldVersionError, Struct, in_range

INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}


def all_classes() -> list[type[Any]]:
    classes: list[type[Any]] = []
    classes += [messages.REQUESTS[k] for k in sorted(messages.REQUESTS)]
    classes += [messages.RESPONSES[k] for k in sorted(messages.RESPONSES)]
    classes += [messages.DATA_SCHEMAS[k] for k in sorted(messages.DATA_SCHEMAS)]
    classes += [coordinator.RECORDS[k] for k in sorted(coordinator.RECORDS)]
    return classes


def cases(distinct_layouts_only: bool) -> list[Any]:
    out = []
    for cls in all_classes():
        seen = set()
        for v in range(cls.MIN_VERSION, cls.MAX_VERSION + 1):
            fn = cls._ENC[v - cls.MIN_VERSION]
            if distinct_layouts_only and fn in seen:
                continue
            seen.add(fn)
            out.append(pytest.param(cls, v, id=f"{cls.__name__}-v{v}"))
    return out


def _primitive(t: str) -> st.SearchStrategy[Any]:
    if t in INT_RANGES:
        lo, hi = INT_RANGES[t]
        return st.integers(lo, hi)
    if t == "bool":
        return st.booleans()
    if t == "float64":
        return st.floats(allow_nan=False)
    if t == "string":
        return st.text(max_size=12)
    if t == "bytes":
        return st.binary(max_size=12)
    if t == "uuid":
        return st.one_of(st.just(uuid.UUID(int=0)), st.uuids())
    if t == "records":
        return st.binary(max_size=40)
    raise AssertionError(f"unknown primitive {t}")


def _is_flexible(cls: type[Any], version: int) -> bool:
    fmin = cls.FLEXIBLE_MIN_VERSION
    return fmin is not None and version >= fmin


def field_strategy(f: FieldSpec, version: int) -> st.SearchStrategy[Any]:
    if f.type == "struct":
        assert f.struct is not None
        s = struct_strategy(f.struct, version)
    elif f.type == "array":
        assert f.element is not None
        if f.element == "struct":
            assert f.struct is not None
            el = struct_strategy(f.struct, version)
        else:
            el = _primitive(f.element)
        s = st.lists(el, max_size=3)
    else:
        s = _primitive(f.type)
    if in_range(f.nullable, version):
        s = st.one_of(st.none(), s)
    return s


def _unknown_tags(cls: type[Any]) -> st.SearchStrategy[list[tuple[int, bytes]]]:
    known = {f.tag for f in cls.FIELDS if f.tag is not None}
    tags = st.integers(0, 300).filter(lambda t: t not in known)
    return st.lists(tags, max_size=2, unique=True).flatmap(
        lambda ts: st.tuples(*(st.binary(max_size=6) for _ in ts)).map(
            lambda datas: sorted(zip(sorted(ts), datas, strict=True))
        )
    )


@cache
def struct_strategy(cls: type[Any], version: int) -> st.SearchStrategy[Any]:
    """A strategy for instances of generated `cls` valid at `version`, from `cls.FIELDS`."""
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for f in cls.FIELDS:
        if in_range(f.versions, version):
            kwargs[f.name] = field_strategy(f, version)
    if _is_flexible(cls, version):
        kwargs["unknown_tagged_fields"] = _unknown_tags(cls)
    return st.builds(cls, **kwargs)


def check_roundtrip(obj: Struct, version: int) -> bytes:
    data = join_chunks(obj.encode(version))
    back = type(obj).decode(data, version)
    assert back == obj, f"{type(obj).__name__} v{version}: {back!r} != {obj!r}"
    again = join_chunks(back.encode(version))
    assert again == data
    return data


@pytest.mark.parametrize(("cls", "version"), cases(distinct_layouts_only=True))
def test_roundtrip(cls: type[Any], version: int) -> None:
    @settings(max_examples=8, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(obj=struct_strategy(cls, version))
    def run(obj: Struct) -> None:
        check_roundtrip(obj, version)

    run()


@pytest.mark.slow
@pytest.mark.parametrize(("cls", "version"), cases(distinct_layouts_only=False))
def test_roundtrip_large_budget(cls: type[Any], version: int) -> None:
    @settings(max_examples=300, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(obj=struct_strategy(cls, version))
    def run(obj: Struct) -> None:
        check_roundtrip(obj, version)

    run()


def test_every_class_has_a_default_instance_that_round_trips() -> None:
    for cls in all_classes():
        for v in range(cls.MIN_VERSION, cls.MAX_VERSION + 1):
            check_roundtrip(cls(), v)


# ------------------------------------------------------------------ known byte layouts


def test_api_versions_request_v0_layout() -> None:
    # RequestHeader v1: int16 api_key, int16 api_version, int32 correlation_id,
    # int16-length client_id; ApiVersionsRequest v0 has no body.
    hdr = RequestHeader(18, 0, 1, "abc")
    assert join_chunks(hdr.encode(1)) == bytes.fromhex("0012 0000 00000001 0003") + b"abc"
    assert join_chunks(ApiVersionsRequest().encode(0)) == b""


def test_api_versions_request_v3_layout() -> None:
    # Header v2 keeps the int16 client_id length (flexibleVersions "none"), then an empty
    # tagged-field section; the body uses compact strings (varint length + 1).
    hdr = RequestHeader(18, 3, 7, "ab")
    assert join_chunks(hdr.encode(2)) == bytes.fromhex("0012 0003 00000007 0002 6162 00")
    body = ApiVersionsRequest(client_software_name="kp", client_software_version="1.0")
    assert join_chunks(body.encode(3)) == b"\x03kp" + b"\x041.0" + b"\x00"


def test_compact_string_uses_multi_byte_varint() -> None:
    # 199 bytes -> length + 1 = 200 = 0xC8 0x01 as an unsigned varint.
    name = "x" * 199
    req = MetadataRequest(topics=[MetadataRequestTopic(name=name)])
    data = join_chunks(req.encode(9))
    # compact array of 1 element (0x02), then the topic's compact nullable name
    assert data[:3] == b"\x02\xc8\x01"
    assert data[3 : 3 + 199] == name.encode()


def test_non_flexible_metadata_request_layout() -> None:
    req = MetadataRequest(topics=[MetadataRequestTopic(name="t")], allow_auto_topic_creation=True)
    assert join_chunks(req.encode(4)) == bytes.fromhex("00000001 0001 74 01")
    # v1+: a null array means "all topics"
    assert join_chunks(MetadataRequest(topics=None).encode(1)) == bytes.fromhex("ffffffff")


def test_tagged_field_layout() -> None:
    # FetchResponse v12 partition: DivergingEpoch is tag 0, a struct of int32 + int64 plus its
    # own empty tagged section: 13 bytes. Written only when it differs from its default.
    part = PartitionData(partition_index=1, records=None,
                         diverging_epoch=EpochEndOffset(epoch=5, end_offset=42))
    resp = FetchResponse(responses=[FetchableTopicResponse(topic="t", partitions=[part])])
    data = join_chunks(resp.encode(12))
    tail = bytes.fromhex("01 00 0d 00000005 000000000000002a 00")
    # ... records null (0x00), partition tagged section, topic tags, top-level tags
    assert data.endswith(b"\x00" + tail + b"\x00" + b"\x00")
    part.diverging_epoch = EpochEndOffset()
    assert join_chunks(resp.encode(12)).endswith(b"\x00\x00\x00\x00")


def test_unknown_tagged_fields_are_preserved_in_tag_order() -> None:
    req = ApiVersionsRequest(client_software_name="a", client_software_version="b",
                             unknown_tagged_fields=[(5, b"\x01\x02"), (1, b"")])
    data = join_chunks(req.encode(3))
    assert data == b"\x02a\x02b" + bytes.fromhex("02 01 00 05 02 0102")
    back = ApiVersionsRequest.decode(data, 3)
    assert back.unknown_tagged_fields == [(1, b""), (5, b"\x01\x02")]


def test_absent_non_ignorable_field_raises() -> None:
    # MetadataRequest.AllowAutoTopicCreation exists from v4 and is not ignorable.
    with pytest.raises(FieldVersionError):
        MetadataRequest(topics=[], allow_auto_topic_creation=False).encode(3)
    # at its default it is silently dropped
    assert join_chunks(MetadataRequest(topics=[]).encode(3)) == b"\x00\x00\x00\x00"


def test_absent_ignorable_field_is_dropped() -> None:
    # FetchResponse.ThrottleTimeMs is ignorable; v4 has it, so use ErrorCode (7+, ignorable).
    resp = FetchResponse(error_code=3)
    assert FetchResponse.decode(join_chunks(resp.encode(4)), 4).error_code == 0


def test_decoded_records_are_zero_copy_slices() -> None:
    from protocol.messages.produce_request import (
        PartitionProduceData,
        ProduceRequest,
        TopicProduceData,
    )

    payload = bytes(range(256)) * 4
    req = ProduceRequest(acks=-1, timeout_ms=1, topic_data=[
        TopicProduceData(name="t", partition_data=[PartitionProduceData(0, payload)])])
    data = join_chunks(req.encode(9))
    back = ProduceRequest.decode(data, 9)
    recs = back.topic_data[0].partition_data[0].records
    assert isinstance(recs, memoryview)
    assert recs.obj is data  # a view on the input buffer, not a copy
    assert recs == payload
