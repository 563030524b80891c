"""Fetch v4-18 and incremental fetch sessions, over a real socket with exact versions.

The expected answers were taken from Apache Kafka 4.4 with the same requests (see the
module docstrings of `broker.handlers.fetch` and `broker.fetch_sessions`); real clients are
in tests/clients/test_consume_clients.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio

from broker.fetch_sessions import EVICTION_MS, FetchSessionCache, FetchTarget, next_epoch
from protocol.errors import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.fetch_request import (
    FetchPartition,
    FetchRequest,
    FetchTopic,
    ForgottenTopic,
    ReplicaState,
)
from protocol.records import build_batch, iter_batches
from tests.wire import WireClient

FETCH = 1
ZERO = uuid.UUID(int=0)


def make_topic(running: Any, name: str, partitions: int = 1) -> uuid.UUID:
    return running.broker.topics.create(name, partitions).topic_id


def append(running: Any, topic: str, partition: int, count: int, value: bytes = b"v") -> None:
    log = running.broker.topics.log(topic, partition)
    log.append(build_batch([(b"k", value) for _ in range(count)]))
    running.broker.waiters.notify(topic, partition)


def request(version: int, topic: str, topic_id: uuid.UUID, partitions: list[FetchPartition],
            **kw: Any) -> FetchRequest:
    kw.setdefault("max_wait_ms", 0)
    if version >= 13:
        topics = [FetchTopic(topic_id=topic_id, partitions=partitions)]
    else:
        topics = [FetchTopic(topic=topic, partitions=partitions)]
    return FetchRequest(topics=topics, **kw)


def part(partition: int = 0, offset: int = 0, max_bytes: int = 1 << 20, **kw: Any
         ) -> FetchPartition:
    return FetchPartition(partition=partition, fetch_offset=offset,
                          partition_max_bytes=max_bytes, **kw)


def base_offsets(records: Any) -> list[int]:
    return [h.base_offset for _, h in iter_batches(bytes(records))]


def flat(response: Any) -> list[tuple[str, uuid.UUID, Any]]:
    return [(t.topic, t.topic_id, p) for t in response.responses for p in t.partitions]


# ------------------------------------------------------------------------------- versions


@pytest.mark.parametrize("version", range(4, 19))
async def test_every_version_returns_the_log_bytes(broker, wire, version) -> None:
    topic_id = make_topic(broker, "t", 2)
    append(broker, "t", 0, 3)
    append(broker, "t", 0, 2)
    log_bytes = broker.broker.topics.log("t", 0).read_bytes(0, 1 << 20)

    response = await wire.request(FETCH, version, request(
        version, "t", topic_id, [part(0), part(1)], session_epoch=-1))

    [(name, tid, p0), (_, _, p1)] = flat(response)
    assert len(response.responses) == 1
    if version >= 13:
        assert (name, tid) == ("", topic_id)
    else:
        assert (name, tid) == ("t", ZERO)
    assert p0.error_code == ErrorCode.NONE
    assert bytes(p0.records) == log_bytes
    assert base_offsets(p0.records) == [0, 3]
    assert (p0.high_watermark, p0.last_stable_offset) == (5, 5)
    assert p0.aborted_transactions is None
    assert p0.preferred_read_replica == -1
    if version >= 5:
        assert p0.log_start_offset == 0
    # An empty partition answers with empty (not null) records.
    assert p1.records is not None and len(p1.records) == 0
    assert (p1.error_code, p1.high_watermark) == (0, 0)
    if version >= 7:
        assert (response.error_code, response.session_id) == (0, 0)


@pytest.mark.parametrize("version", [4, 11, 18])
async def test_read_committed_has_empty_aborted_transactions(broker, wire, version) -> None:
    topic_id = make_topic(broker, "t")
    append(broker, "t", 0, 2)
    response = await wire.request(FETCH, version, request(
        version, "t", topic_id, [part(0)], isolation_level=1))
    [(_, _, p)] = flat(response)
    assert p.aborted_transactions == []
    assert p.last_stable_offset == 2


async def test_reads_start_at_the_batch_holding_the_offset(broker, wire) -> None:
    make_topic(broker, "t")
    append(broker, "t", 0, 5)
    append(broker, "t", 0, 3)
    response = await wire.request(FETCH, 12, request(12, "t", ZERO, [part(0, offset=6)]))
    [(_, _, p)] = flat(response)
    assert base_offsets(p.records) == [5]
    at_end = await wire.request(FETCH, 12, request(12, "t", ZERO, [part(0, offset=8)]))
    [(_, _, p)] = flat(at_end)
    assert (p.error_code, len(p.records), p.high_watermark) == (0, 0, 8)


# --------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("offset", [-1, 4, 100])
async def test_offset_out_of_range(broker, wire, offset) -> None:
    make_topic(broker, "t")
    append(broker, "t", 0, 3)
    response = await wire.request(FETCH, 12, request(12, "t", ZERO, [part(0, offset=offset)]))
    [(_, _, p)] = flat(response)
    assert p.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert (p.high_watermark, p.last_stable_offset, p.log_start_offset) == (-1, -1, -1)
    assert p.aborted_transactions is None
    assert len(p.records) == 0


async def test_offset_below_the_log_start_is_out_of_range(broker, wire) -> None:
    make_topic(broker, "t")
    append(broker, "t", 0, 3)
    append(broker, "t", 0, 3)
    broker.broker.topics.log("t", 0).delete_records(3)
    below = await wire.request(FETCH, 12, request(12, "t", ZERO, [part(0, offset=2)]))
    assert flat(below)[0][2].error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    at = await wire.request(FETCH, 12, request(12, "t", ZERO, [part(0, offset=3)]))
    [(_, _, p)] = flat(at)
    assert (p.error_code, p.log_start_offset, base_offsets(p.records)) == (0, 3, [3])


async def test_unknown_topics_and_partitions_come_last(broker, wire) -> None:
    make_topic(broker, "t", 2)
    append(broker, "t", 1, 1)
    body = FetchRequest(topics=[
        FetchTopic(topic="t", partitions=[part(5), part(0), part(1)]),
        FetchTopic(topic="missing", partitions=[part(0)]),
    ])
    response = await wire.request(FETCH, 12, body)
    got = [(name, p.partition_index, p.error_code) for name, _, p in flat(response)]
    assert got == [("t", 0, 0), ("t", 1, 0), ("t", 5, 3), ("missing", 0, 3)]
    unknown = flat(response)[2][2]
    assert unknown.aborted_transactions == []
    assert (unknown.high_watermark, unknown.log_start_offset) == (-1, -1)


@pytest.mark.parametrize("version", [13, 18])
async def test_unknown_topic_id(broker, wire, version) -> None:
    make_topic(broker, "t")
    stranger = uuid.uuid4()
    response = await wire.request(FETCH, version, request(version, "", stranger, [part(0)]))
    [(name, tid, p)] = flat(response)
    assert (name, tid, p.error_code) == ("", stranger, ErrorCode.UNKNOWN_TOPIC_ID)


async def test_a_recreated_topic_has_a_new_id(broker, wire) -> None:
    old = make_topic(broker, "t")
    broker.broker.topics.delete("t")
    new = make_topic(broker, "t")
    response = await wire.request(FETCH, 16, FetchRequest(topics=[
        FetchTopic(topic_id=old, partitions=[part(0)]),
        FetchTopic(topic_id=new, partitions=[part(0)])]))
    assert [(t, p.error_code) for _, t, p in flat(response)] == [
        (new, 0), (old, ErrorCode.UNKNOWN_TOPIC_ID)]


@pytest.mark.parametrize(("epoch", "error"), [
    (1, ErrorCode.UNKNOWN_LEADER_EPOCH), (0, ErrorCode.NONE), (-5, ErrorCode.NONE)])
async def test_current_leader_epoch(broker, wire, epoch, error) -> None:
    make_topic(broker, "t")
    append(broker, "t", 0, 1)
    for version in (9, 12):
        response = await wire.request(FETCH, version, request(
            version, "t", ZERO, [part(0, current_leader_epoch=epoch)]))
        assert flat(response)[0][2].error_code == error


async def test_replica_fetches_are_refused(broker, wire) -> None:
    topic_id = make_topic(broker, "t")
    old = await wire.request(FETCH, 12, request(12, "t", topic_id, [part(0)], replica_id=1))
    [(_, _, p)] = flat(old)
    assert p.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert p.current_leader.leader_id == -1
    new = await wire.request(FETCH, 17, request(
        17, "t", topic_id, [part(0)], replica_state=ReplicaState(replica_id=1, replica_epoch=0)))
    [(_, _, p)] = flat(new)
    assert p.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    node_id = broker.broker.node_id
    assert (p.current_leader.leader_id, p.current_leader.leader_epoch) == (node_id, 0)
    debug = await wire.request(FETCH, 12, request(12, "t", topic_id, [part(0)], replica_id=-2))
    assert flat(debug)[0][2].error_code == ErrorCode.NONE


async def test_last_fetched_epoch(broker, wire) -> None:
    make_topic(broker, "t")
    append(broker, "t", 0, 4)
    unknown = await wire.request(FETCH, 12, request(
        12, "t", ZERO, [part(0, offset=2, last_fetched_epoch=3)]))
    assert flat(unknown)[0][2].error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    ours = await wire.request(FETCH, 12, request(
        12, "t", ZERO, [part(0, offset=2, last_fetched_epoch=0)]))
    assert base_offsets(flat(ours)[0][2].records) == [0]
    diverging = await wire.request(FETCH, 12, request(
        12, "t", ZERO, [part(0, offset=9, last_fetched_epoch=0)], max_wait_ms=60_000,
        min_bytes=1))
    [(_, _, p)] = flat(diverging)
    assert p.error_code == ErrorCode.NONE
    assert (p.diverging_epoch.epoch, p.diverging_epoch.end_offset) == (0, 4)
    assert (p.high_watermark, len(p.records)) == (4, 0)


# ---------------------------------------------------------------------------------- limits


async def test_first_batch_is_whole_even_past_the_limits(broker, wire) -> None:
    make_topic(broker, "t", 3)
    append(broker, "t", 1, 3, b"x" * 100)
    append(broker, "t", 1, 3, b"y" * 100)
    append(broker, "t", 2, 3, b"z" * 100)
    batch = len(broker.broker.topics.log("t", 1).read_bytes(0, 1))
    for body in (
        request(12, "t", ZERO, [part(0), part(1), part(2)], max_bytes=10),
        request(12, "t", ZERO, [part(0), part(1, max_bytes=0), part(2)], max_bytes=10),
    ):
        response = await wire.request(FETCH, 12, body)
        sizes = [len(p.records) for _, _, p in flat(response)]
        # The empty partition 0 does not use up the "first batch" allowance.
        assert sizes == [0, batch, 0]


async def test_request_max_bytes_is_shared_in_order(broker, wire) -> None:
    make_topic(broker, "t", 2)
    for partition in (0, 1):
        append(broker, "t", partition, 3, b"x" * 100)
        append(broker, "t", partition, 3, b"x" * 100)
    batch = len(broker.broker.topics.log("t", 0).read_bytes(0, 1))
    response = await wire.request(FETCH, 12, request(
        12, "t", ZERO, [part(0), part(1)], max_bytes=batch + batch // 2))
    assert [len(p.records) for _, _, p in flat(response)] == [batch, 0]
    per_partition = await wire.request(FETCH, 12, request(
        12, "t", ZERO, [part(0, max_bytes=batch), part(1, max_bytes=2 * batch)]))
    assert [len(p.records) for _, _, p in flat(per_partition)] == [batch, 2 * batch]


@pytest.mark.parametrize(("max_bytes", "partition_max_bytes"), [(100, -5), (-5, 100)])
async def test_negative_limits_are_unknown_server_errors(broker, wire, max_bytes,
                                                         partition_max_bytes) -> None:
    make_topic(broker, "t")
    append(broker, "t", 0, 1)
    response = await wire.request(FETCH, 12, request(
        12, "t", ZERO, [part(0, max_bytes=partition_max_bytes)], max_bytes=max_bytes))
    [(_, _, p)] = flat(response)
    assert (p.error_code, p.high_watermark) == (ErrorCode.UNKNOWN_SERVER_ERROR, -1)


@pytest.fixture
def broker_config(tmp_path, request) -> dict[str, Any]:
    config = {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(tmp_path / "data")}
    config.update(getattr(request, "param", {}))
    return config


@pytest.mark.parametrize("broker_config", [{"fetch.max.bytes": "1024"}], indirect=True)
async def test_fetch_max_bytes_caps_the_request(broker, wire) -> None:
    make_topic(broker, "t")
    append(broker, "t", 0, 1, b"x" * 600)
    append(broker, "t", 0, 1, b"x" * 600)
    response = await wire.request(FETCH, 12, request(12, "t", ZERO, [part(0)]))
    assert base_offsets(flat(response)[0][2].records) == [0]


# ------------------------------------------------------------------------------- long poll


async def fetch_in_background(nursery: trio.Nursery, running: Any, body: FetchRequest,
                              version: int = 12) -> trio.MemoryReceiveChannel[Any]:
    send, receive = trio.open_memory_channel[Any](1)
    client = await WireClient.connect(running.host, running.port)

    async def run() -> None:
        try:
            await send.send(await client.request(FETCH, version, body))
        finally:
            await client.aclose()

    nursery.start_soon(run)
    return receive


async def wait_until_parked(running: Any) -> None:
    while running.broker.waiters.parked == 0:
        await trio.sleep(0.001)


async def test_long_poll_wakes_on_append(broker, nursery) -> None:
    make_topic(broker, "t", 2)
    body = request(12, "t", ZERO, [part(0), part(1)], max_wait_ms=60_000, min_bytes=1)
    responses = await fetch_in_background(nursery, broker, body)
    await wait_until_parked(broker)
    # Another connection is served while the fetch waits.
    other = await WireClient.connect(broker.host, broker.port)
    try:
        assert (await other.request(18, 3, ApiVersionsRequest("t", "1"))).error_code == 0
    finally:
        await other.aclose()
    append(broker, "t", 1, 2)
    with trio.fail_after(30):  # far below max_wait_ms
        response = await responses.receive()
    by_partition = {p.partition_index: p for _, _, p in flat(response)}
    assert base_offsets(by_partition[1].records) == [0]
    assert by_partition[1].high_watermark == 2
    assert len(by_partition[0].records) == 0


async def test_long_poll_waits_for_min_bytes(broker, nursery) -> None:
    make_topic(broker, "t")
    append(broker, "t", 0, 1)
    first = len(broker.broker.topics.log("t", 0).read_bytes(0, 1 << 20))
    body = request(12, "t", ZERO, [part(0)], max_wait_ms=60_000, min_bytes=first + 1)
    responses = await fetch_in_background(nursery, broker, body)
    await wait_until_parked(broker)
    append(broker, "t", 0, 1)
    with trio.fail_after(30):
        response = await responses.receive()
    assert base_offsets(flat(response)[0][2].records) == [0, 1]


async def test_long_poll_times_out_empty(broker, wire) -> None:
    make_topic(broker, "t")
    started = trio.current_time()
    response = await wire.request(FETCH, 12, request(
        12, "t", ZERO, [part(0)], max_wait_ms=50, min_bytes=1))
    assert trio.current_time() - started >= 0.05
    assert len(flat(response)[0][2].records) == 0
    assert broker.broker.waiters.parked == 0


async def test_errors_and_data_answer_at_once(broker, wire) -> None:
    make_topic(broker, "t")
    append(broker, "t", 0, 1)
    for body in (
        request(12, "t", ZERO, [part(0, offset=0)], max_wait_ms=600_000, min_bytes=1),
        request(12, "t", ZERO, [part(0, offset=7)], max_wait_ms=600_000, min_bytes=1),
        FetchRequest(topics=[], max_wait_ms=600_000, min_bytes=1),
    ):
        with trio.fail_after(30):
            await wire.request(FETCH, 12, body)


async def test_long_poll_ends_when_a_partition_starts_failing(broker, nursery) -> None:
    make_topic(broker, "t")
    body = request(12, "t", ZERO, [part(0)], max_wait_ms=600_000, min_bytes=1)
    responses = await fetch_in_background(nursery, broker, body)
    await wait_until_parked(broker)
    broker.broker.topics.delete("t")
    broker.broker.waiters.notify("t", 0)
    with trio.fail_after(30):
        response = await responses.receive()
    assert flat(response)[0][2].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


# -------------------------------------------------------------------------------- sessions


async def test_session_lifecycle(broker, wire) -> None:
    make_topic(broker, "t", 2)
    append(broker, "t", 0, 3)
    full = await wire.request(FETCH, 12, request(
        12, "t", ZERO, [part(0), part(1)], session_id=0, session_epoch=0))
    session = full.session_id
    assert session > 0 and full.error_code == 0
    assert [p.partition_index for _, _, p in flat(full)] == [0, 1]

    # Nothing changed for partition 1; partition 0 still has records at offset 0.
    incremental = await wire.request(FETCH, 12, FetchRequest(
        session_id=session, session_epoch=1, topics=[]))
    assert incremental.session_id == session
    assert [p.partition_index for _, _, p in flat(incremental)] == [0]

    moved = await wire.request(FETCH, 12, FetchRequest(session_id=session, session_epoch=2, topics=[
        FetchTopic(topic="t", partitions=[part(0, offset=3)])]))
    assert flat(moved) == []

    append(broker, "t", 1, 1)
    changed = await wire.request(FETCH, 12, FetchRequest(
        session_id=session, session_epoch=3, topics=[]))
    [(_, _, p)] = flat(changed)
    assert (p.partition_index, p.high_watermark, base_offsets(p.records)) == (1, 1, [0])

    stale = await wire.request(FETCH, 12, FetchRequest(
        session_id=session, session_epoch=3, topics=[]))
    assert (stale.error_code, stale.session_id, stale.responses) == (
        ErrorCode.INVALID_FETCH_SESSION_EPOCH, 0, [])
    wrong_kind = await wire.request(FETCH, 13, FetchRequest(
        session_id=session, session_epoch=4, topics=[]))
    assert wrong_kind.error_code == ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR

    # Errors are always sent; the failed requests above did not move the epoch.
    added = await wire.request(FETCH, 12, FetchRequest(session_id=session, session_epoch=4, topics=[
        FetchTopic(topic="t", partitions=[part(1, offset=1)]),
        FetchTopic(topic="missing", partitions=[part(0)])]))
    assert [(n, p.error_code) for n, _, p in flat(added)] == [("missing", 3)]
    again = await wire.request(FETCH, 12, FetchRequest(
        session_id=session, session_epoch=5, topics=[]))
    assert [(n, p.error_code) for n, _, p in flat(again)] == [("missing", 3)]

    forgot = await wire.request(FETCH, 12, FetchRequest(
        session_id=session, session_epoch=6, topics=[], forgotten_topics_data=[
            ForgottenTopic(topic="t", partitions=[0, 1]),
            ForgottenTopic(topic="missing", partitions=[0])]))
    assert (forgot.error_code, forgot.session_id, forgot.responses) == (0, 0, [])
    gone = await wire.request(FETCH, 12, FetchRequest(
        session_id=session, session_epoch=7, topics=[]))
    assert gone.error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND


async def test_topic_id_sessions_and_closing(broker, wire) -> None:
    topic_id = make_topic(broker, "t")
    append(broker, "t", 0, 1)
    full = await wire.request(FETCH, 17, request(
        17, "", topic_id, [part(0)], session_id=0, session_epoch=0))
    session = full.session_id
    assert session > 0
    name_based = await wire.request(FETCH, 12, FetchRequest(
        session_id=session, session_epoch=1, topics=[]))
    assert name_based.error_code == ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR
    stranger = uuid.uuid4()
    mixed = await wire.request(FETCH, 17, FetchRequest(session_id=session, session_epoch=1, topics=[
        FetchTopic(topic_id=stranger, partitions=[part(0)])]))
    assert [(t, p.error_code) for _, t, p in flat(mixed)] == [
        (topic_id, 0), (stranger, ErrorCode.UNKNOWN_TOPIC_ID)]
    closed = await wire.request(FETCH, 17, request(
        17, "", topic_id, [part(0)], session_id=session, session_epoch=-1))
    assert (closed.error_code, closed.session_id) == (0, 0)
    assert len(flat(closed)) == 1
    after = await wire.request(FETCH, 17, FetchRequest(
        session_id=session, session_epoch=2, topics=[]))
    assert after.error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND


async def test_full_fetch_replaces_the_named_session(broker, wire) -> None:
    make_topic(broker, "t")
    first = await wire.request(FETCH, 7, request(7, "t", ZERO, [part(0)], session_epoch=0))
    second = await wire.request(FETCH, 7, request(
        7, "t", ZERO, [part(0)], session_id=first.session_id, session_epoch=0))
    assert second.session_id not in (0, first.session_id)
    old = await wire.request(FETCH, 7, FetchRequest(
        session_id=first.session_id, session_epoch=1))
    assert old.error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    # Kafka creates a session even for a full fetch without partitions.
    empty = await wire.request(FETCH, 7, FetchRequest(session_epoch=0))
    assert empty.session_id > 0


async def test_partitions_with_records_rotate_to_the_end(broker, wire) -> None:
    make_topic(broker, "t", 2)
    append(broker, "t", 0, 1)
    append(broker, "t", 1, 1)
    batch = len(broker.broker.topics.log("t", 0).read_bytes(0, 1))
    full = await wire.request(FETCH, 12, request(
        12, "t", ZERO, [part(0), part(1)], session_epoch=0, max_bytes=1))
    assert [len(p.records) for _, _, p in flat(full)] == [batch, 0]
    sizes = []
    for epoch in (1, 2, 3):
        nxt = await wire.request(FETCH, 12, FetchRequest(
            session_id=full.session_id, session_epoch=epoch, max_bytes=1))
        sizes.append([(p.partition_index, len(p.records)) for _, _, p in flat(nxt)])
    # A partition that returned records goes to the back of the session's order, so the
    # other one gets the one-batch allowance next time; unchanged partitions are left out.
    assert sizes == [[(0, batch)], [(1, batch)], [(0, batch)]]


async def test_a_partition_without_records_is_sent_when_its_offsets_change(broker, wire
                                                                            ) -> None:
    """Incremental answers leave out partitions with nothing new, but a partition with no
    records to return is still sent when its high watermark or log start offset is not
    what the fetcher was last told (Kafka's CachedPartition.maybeUpdateResponseData)."""
    make_topic(broker, "t", 2)
    full = await wire.request(FETCH, 12, request(
        12, "t", ZERO, [part(0), part(1)], session_epoch=0))
    session = full.session_id
    append(broker, "t", 0, 3)
    append(broker, "t", 1, 3)
    # The fetcher skips to the end of partition 0: nothing to read, but a new high watermark.
    skipped = await wire.request(FETCH, 12, FetchRequest(session_id=session, session_epoch=1,
                                                         topics=[FetchTopic(topic="t", partitions=[
                                                             part(0, offset=3)])]))
    assert [(p.partition_index, p.high_watermark, base_offsets(p.records))
            for _, _, p in flat(skipped)] == [(0, 3, []), (1, 3, [0])]
    moved = await wire.request(FETCH, 12, FetchRequest(session_id=session, session_epoch=2,
                                                       topics=[FetchTopic(topic="t", partitions=[
                                                           part(1, offset=3)])]))
    assert flat(moved) == []
    broker.broker.topics.log("t", 0).delete_records(2)
    start = await wire.request(FETCH, 12, FetchRequest(session_id=session, session_epoch=3))
    assert [(p.partition_index, p.log_start_offset, len(p.records))
            for _, _, p in flat(start)] == [(0, 2, 0)]
    quiet = await wire.request(FETCH, 12, FetchRequest(session_id=session, session_epoch=4))
    assert flat(quiet) == []


async def test_a_session_follows_its_topic_through_deletion_and_recreation(broker, wire
                                                                          ) -> None:
    """A session keeps each partition's log between requests: once the topic is deleted
    its partition fails, and once re-created the session reads the new log."""
    make_topic(broker, "t")
    append(broker, "t", 0, 2)
    full = await wire.request(FETCH, 12, request(
        12, "t", ZERO, [part(0, offset=2)], session_epoch=0))
    session = full.session_id
    quiet = await wire.request(FETCH, 12, FetchRequest(session_id=session, session_epoch=1))
    assert flat(quiet) == []
    broker.broker.topics.delete("t")
    gone = await wire.request(FETCH, 12, FetchRequest(session_id=session, session_epoch=2))
    assert [(n, p.error_code) for n, _, p in flat(gone)] == [
        ("t", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]
    make_topic(broker, "t")
    append(broker, "t", 0, 1)
    back = await wire.request(FETCH, 12, FetchRequest(session_id=session, session_epoch=3, topics=[
        FetchTopic(topic="t", partitions=[part(0, offset=0)])]))
    [(_, _, p)] = flat(back)
    assert (p.error_code, p.high_watermark, base_offsets(p.records)) == (0, 1, [0])


@pytest.mark.parametrize("broker_config", [
    {"max.incremental.fetch.session.cache.slots": "0"}], indirect=True)
async def test_no_sessions_without_cache_slots(broker, wire) -> None:
    make_topic(broker, "t")
    response = await wire.request(FETCH, 12, request(12, "t", ZERO, [part(0)], session_epoch=0))
    assert (response.error_code, response.session_id) == (0, 0)


# ------------------------------------------------------------------------ the session cache


def target(partition: int) -> FetchTarget:
    return FetchTarget("t", ZERO, partition, 0, -1, 100, -1, -1)


def targets(n: int) -> dict[Any, FetchTarget]:
    return {t.key: t for t in (target(i) for i in range(n))}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def test_next_epoch_wraps() -> None:
    assert [next_epoch(e) for e in (0, 1, 2**31 - 1, -1, -7)] == [1, 2, 1, -1, -1]


def test_cache_shards_and_ids() -> None:
    clock = Clock()
    cache = FetchSessionCache(16, clock)  # 2 sessions in each of 8 shards
    ids = [cache.maybe_create_session(False, targets(1), False) for _ in range(16)]
    assert 0 not in ids and len(set(ids)) == 16
    for n, session_id in enumerate(ids):
        assert cache.shard_of(session_id) is cache.shards[n % 8]
    # Every shard is full of young sessions: a newcomer is refused...
    cache._next_shard = 0
    assert cache.maybe_create_session(False, targets(5), False) == 0
    # ...unless one has been unused for more than two minutes: the stalest goes.
    clock.now += EVICTION_MS + 1
    cache.shards[0].touch(cache.shards[0].sessions[ids[8]], clock.now)
    cache._next_shard = 0
    assert cache.maybe_create_session(False, targets(1), False) != 0
    assert ids[0] not in cache.shards[0].sessions
    assert ids[8] in cache.shards[0].sessions


def test_eviction_prefers_privileged_and_larger_sessions() -> None:
    clock = Clock()
    cache = FetchSessionCache(8, clock)  # one session per shard
    shard = cache.shards[0]
    small = cache.maybe_create_session(False, targets(2), False)
    cache._next_shard = 0
    # Young sessions cannot be evicted by an unprivileged newcomer...
    assert cache.maybe_create_session(False, targets(10), False) == 0
    # ...but a follower's (privileged) session evicts a consumer's at any age.
    cache._next_shard = 0
    follower = cache.maybe_create_session(True, targets(1), False)
    assert follower != 0 and small not in shard.sessions
    # Once a session is older than the eviction time (as of its last use), a larger
    # newcomer may evict it, a smaller one may not.
    clock.now += EVICTION_MS + 1
    shard.touch(shard.sessions[follower], clock.now)
    cache._next_shard = 0
    assert cache.maybe_create_session(False, targets(10), False) == 0  # privileged wins
    cache._next_shard = 0
    assert cache.maybe_create_session(True, targets(0), False) == 0  # smaller
    cache._next_shard = 0
    assert cache.maybe_create_session(True, targets(5), False) != 0
    assert follower not in shard.sessions
