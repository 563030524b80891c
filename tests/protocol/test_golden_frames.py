"""Golden frames: requests from real clients and Apache Kafka's responses, byte for byte.

``tests/golden/frames/<client>/`` holds request/response pairs recorded between a client
(kafka-python, confluent-kafka/librdkafka, aiokafka, kcat) and Apache Kafka by
``tests/golden/capture.py``. Every request must decode, show the fields the scenario sent, and
re-encode to the same bytes; every response must decode with its request's version and
re-encode to the same bytes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

frames = pytest.importorskip("protocol.frames")

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "frames"
CLIENTS = sorted(p.name for p in GOLDEN.iterdir() if (p / "index.json").exists())
ENTRIES = [
    (client, entry)
    for client in CLIENTS
    for entry in json.loads((GOLDEN / client / "index.json").read_text())
]

# librdkafka >= 2.x (confluent-kafka 2.16 here) writes the null topic array of an "all topics"
# Metadata request at flexible versions (v9+) as a 1-byte varint followed by the 3 leftover bytes
# of an int32 placeholder (confluentinc/librdkafka#5049): body 00|000000|01 00 00 instead of
# 00|01 00 00. Apache Kafka does not check for bytes after a request body: it reads topics=null,
# allowAutoTopicCreation=false, includeTopicAuthorizedOperations=false, no tagged fields, ignores
# the last 3 bytes, and answers (checked against Kafka 4.4.0).
LIBRDKAFKA_METADATA_BODY = bytes.fromhex("00000000010000")


def _is_librdkafka_null_topics_quirk(client: str, entry: dict[str, Any]) -> bool:
    if client not in ("confluent-kafka", "kcat") or entry["api_key"] != 3:
        return False
    if entry["api_version"] < 9:
        return False
    return _read(client, entry["request"]).endswith(LIBRDKAFKA_METADATA_BODY)


def _read(client: str, name: str) -> bytes:
    return (GOLDEN / client / name).read_bytes()


def _id(client: str, entry: dict[str, Any]) -> str:
    return f"{client}/{entry['request'][: -len('.req')]}"


CASES = [pytest.param(c, e, id=_id(c, e)) for c, e in ENTRIES]
QUIRKS = [pytest.param(c, e, id=_id(c, e)) for c, e in ENTRIES
          if _is_librdkafka_null_topics_quirk(c, e)]

# What each client puts in ApiVersions v3+ (KIP-511).
SOFTWARE_NAMES = {
    "kafka-python": "kafka-python",
    "confluent-kafka": "confluent-kafka-python",
    "kcat": "librdkafka",
}

PRODUCE, FETCH, LIST_OFFSETS, METADATA, OFFSET_COMMIT, OFFSET_FETCH = 0, 1, 2, 3, 8, 9
FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 10, 11, 12, 13, 14
DESCRIBE_GROUPS, API_VERSIONS, CREATE_TOPICS, DELETE_TOPICS, INIT_PRODUCER_ID = 15, 18, 19, 20, 22
DESCRIBE_CONFIGS = 32
GROUP_APIS = {OFFSET_COMMIT, OFFSET_FETCH, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP}


def _join(chunks: list[Any]) -> bytes:
    return bytes(frames.join_chunks(chunks))


def _strip_size(framed: bytes) -> bytes:
    (size,) = struct.unpack_from(">i", framed)
    assert size == len(framed) - 4, "size prefix does not match the frame"
    return framed[4:]


def _header_version(body: Any, api_key: int, api_version: int) -> int:
    """Request header version: 2 for flexible API versions, 1 otherwise (0 only for
    ControlledShutdown v0, which no client here sends)."""
    flexible_from = getattr(type(body), "FLEXIBLE_MIN_VERSION", None)
    return 2 if flexible_from is not None and api_version >= flexible_from else 1


def _field(obj: Any, *names: str) -> Any:
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    raise AssertionError(f"{type(obj).__name__} has none of {names}")


def test_at_least_three_clients() -> None:
    assert len(CLIENTS) >= 3, CLIENTS
    assert len(CASES) >= 100


@pytest.mark.parametrize(("client", "entry"), CASES)
def test_request_decodes_and_reencodes(client: str, entry: dict[str, Any]) -> None:
    raw = _read(client, entry["request"])
    req = frames.decode_request(raw)
    if _is_librdkafka_null_topics_quirk(client, entry):
        # librdkafka pads this request with 3 bytes that Kafka ignores, and so do we: the
        # re-encoded frame is the captured one without them.
        raw = raw[:-3]
    assert (req.api_key, req.api_version, req.correlation_id) == (
        entry["api_key"], entry["api_version"], entry["correlation_id"]
    )
    assert req.client_id  # every client here names itself
    _check_request(client, req)

    # The body alone re-encodes to the tail of the frame.
    body = _join(req.body.encode(req.api_version))
    assert raw[len(raw) - len(body):] == body, "request body differs"

    # The whole frame: through encode_request, or, when the captured header carries tagged
    # fields encode_request cannot take, through the decoded header object.
    framed = _join(frames.encode_request(
        req.api_key, req.api_version, req.correlation_id, req.client_id, req.body
    ))
    again = _strip_size(framed)
    if again != raw and getattr(req.header, "unknown_tagged_fields", None):
        version = _header_version(req.body, req.api_key, req.api_version)
        again = _join(req.header.encode(version)) + body
    assert again == raw


@pytest.mark.parametrize(("client", "entry"), CASES)
def test_response_decodes_and_reencodes(client: str, entry: dict[str, Any]) -> None:
    raw = _read(client, entry["response"])
    api_key, api_version = entry["api_key"], entry["api_version"]
    correlation_id, body = frames.decode_response(raw, api_key, api_version)
    assert correlation_id == entry["correlation_id"]
    _check_response(client, api_key, api_version, body)

    framed = _join(frames.encode_response(api_key, api_version, correlation_id, body))
    assert _strip_size(framed) == raw


def test_librdkafka_quirk_is_captured() -> None:
    assert QUIRKS, "expected confluent-kafka's list_topics() Metadata v13 among the frames"


@pytest.mark.parametrize(("client", "entry"), QUIRKS)
def test_librdkafka_metadata_quirk(client: str, entry: dict[str, Any]) -> None:
    """Decoded as Kafka decodes it: the 3 bytes after the body are ignored, not an error."""
    raw = _read(client, entry["request"])
    req = frames.decode_request(raw)
    assert req.api_key == 3 and req.api_version == entry["api_version"]
    assert req.body.topics is None
    assert req.body.allow_auto_topic_creation is False
    framed = _join(frames.encode_request(
        req.api_key, req.api_version, req.correlation_id, req.client_id, req.body
    ))
    assert _strip_size(framed) == raw[:-3]


# ------------------------------------------------------------------------------ field checks


def _check_request(client: str, req: Any) -> None:
    key, version, body = req.api_key, req.api_version, req.body
    if key == API_VERSIONS and version >= 3:
        assert body.client_software_name == SOFTWARE_NAMES[client]
        assert body.client_software_version
    elif key == PRODUCE:
        assert body.acks in (-1, 1)
        assert body.timeout_ms > 0
        assert _field(body, "transactional_id") is None
        for topic in _field(body, "topic_data", "topics"):
            assert topic.name.startswith("golden-")
            for part in _field(topic, "partition_data", "partitions"):
                assert part.index == 0
                records = part.records
                assert records is not None and len(records) >= 61
                assert bytes(records)[16] == 2  # magic of the first batch
    elif key == CREATE_TOPICS:
        names = [t.name for t in body.topics]
        assert names and all(n.startswith("golden-") for n in names)
        assert all(t.num_partitions == 1 for t in body.topics)
    elif key == DELETE_TOPICS:
        names = (
            [t.name for t in body.topics] if version >= 6 else list(body.topic_names)
        )
        assert names == ["golden-group"]
    elif key in GROUP_APIS:
        if key == OFFSET_FETCH and version >= 8:
            group_ids = [g.group_id for g in body.groups]
        else:
            group_ids = [body.group_id]
        assert group_ids and all(g.startswith("golden-") for g in group_ids)
    elif key == FIND_COORDINATOR:
        keys = list(body.coordinator_keys) if version >= 4 else [body.key]
        assert keys and all(k.startswith("golden-") for k in keys)
    elif key == INIT_PRODUCER_ID:
        assert body.transactional_id is None
    elif key == DESCRIBE_CONFIGS:
        assert {r.resource_type for r in body.resources} <= {2, 4}  # TOPIC, BROKER
    elif key == METADATA and body.topics:
        assert all(t.name is None or t.name.startswith("golden-") for t in body.topics)
    elif key == FETCH:
        assert body.max_wait_ms >= 0
        assert all(t for t in body.topics)


def _check_response(client: str, key: int, version: int, body: Any) -> None:
    if key == API_VERSIONS:
        assert body.error_code == 0
        keys = {k.api_key for k in body.api_keys}
        assert {PRODUCE, FETCH, METADATA, API_VERSIONS} <= keys
    elif key == PRODUCE:
        for topic in body.responses:
            for part in _field(topic, "partition_responses", "partitions"):
                assert part.error_code == 0
                assert part.base_offset >= 0
    elif key == METADATA:
        assert [b.node_id for b in body.brokers] == [1]
    elif key == INIT_PRODUCER_ID:
        # The first try may find the coordinator still loading (error 14), as librdkafka did.
        assert body.error_code in (0, 14)
        if body.error_code == 0:
            assert body.producer_id >= 0
    elif key == CREATE_TOPICS:
        assert all(t.error_code == 0 for t in body.topics)
    elif key == DELETE_TOPICS:
        assert all(t.error_code == 0 for t in body.responses)
