"""The classic group state machine with a fake clock: transitions, timers and error codes."""

from __future__ import annotations

from typing import Any

import pytest

from broker.groups.coordinator import (
    NEW_MEMBER_JOIN_TIMEOUT_MS,
    GroupConfig,
    GroupCoordinator,
    GroupState,
    JoinResult,
    MemoryStore,
    OffsetAndMetadata,
    SyncResult,
)
from broker.groups.records import java_string_hash, partition_for
from protocol.errors import ErrorCode as E

PROTOCOLS = [("range", b"meta")]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def coord(clock: Clock) -> GroupCoordinator:
    return GroupCoordinator(GroupConfig(min_session_timeout_ms=10, initial_rebalance_delay_ms=0),
                            clock, MemoryStore())


def advance(coord: GroupCoordinator, clock: Clock, ms: int) -> None:
    clock.now += ms
    coord.tick()


def join(coord: GroupCoordinator, member_id: str = "", *, group: str = "g",
         instance: str | None = None, session: int = 1000, rebalance: int = 5000,
         protocols: list[tuple[str, bytes]] = PROTOCOLS, ptype: str = "consumer",
         known_required: bool = False, skip: bool = True) -> list[JoinResult]:
    out: list[JoinResult] = []
    coord.join_group(group_id=group, member_id=member_id, group_instance_id=instance,
                     client_id="c", client_host="/h", session_timeout_ms=session,
                     rebalance_timeout_ms=rebalance, protocol_type=ptype, protocols=protocols,
                     require_known_member_id=known_required, supports_skip_assignment=skip,
                     callback=out.append)
    return out


def sync(coord: GroupCoordinator, member_id: str, generation: int, assignments: Any = None,
         *, group: str = "g", instance: str | None = None, name: str | None = None
         ) -> list[SyncResult]:
    out: list[SyncResult] = []
    coord.sync_group(group_id=group, generation_id=generation, member_id=member_id,
                     group_instance_id=instance, protocol_type=None, protocol_name=name,
                     assignments=assignments or {}, callback=out.append)
    return out


def hb(coord: GroupCoordinator, member_id: str, generation: int, instance: str | None = None,
       group: str = "g") -> E:
    return coord.heartbeat(group_id=group, generation_id=generation, member_id=member_id,
                           group_instance_id=instance)


def stable_group(coord: GroupCoordinator, clock: Clock, n: int = 2) -> list[str]:
    """n dynamic members in a Stable group at generation 1; returns member ids."""
    pending = [join(coord) for _ in range(n)]
    advance(coord, clock, 0)
    ids = [p[0].member_id for p in pending]
    assert all(p[0].error == E.NONE and p[0].generation_id == 1 for p in pending)
    leader = pending[0][0].leader
    results = {mid: sync(coord, mid, 1, {m: m.encode() for m in ids} if mid == leader else None)
               for mid in ids}
    assert coord.groups["g"].state is GroupState.STABLE
    assert all(r[0].assignment == mid.encode() for mid, r in results.items())
    return ids


def test_java_string_hash_and_partition():
    assert java_string_hash("") == 0
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -2147483648  # Integer.MIN_VALUE
    assert partition_for("polygenelubricants", 50) == 0  # Utils.abs(MIN_VALUE) is 0
    assert java_string_hash("\U0001F600") == 0xD83D * 31 + 0xDE00  # UTF-16 surrogates


def test_join_validation_errors(coord):
    assert join(coord, group="")[0].error == E.INVALID_GROUP_ID
    assert join(coord, session=5)[0].error == E.INVALID_SESSION_TIMEOUT
    assert join(coord, session=10**9)[0].error == E.INVALID_SESSION_TIMEOUT
    assert join(coord, "who")[0].error == E.UNKNOWN_MEMBER_ID
    assert join(coord, ptype="")[0].error == E.INCONSISTENT_GROUP_PROTOCOL
    assert join(coord, protocols=[])[0].error == E.INCONSISTENT_GROUP_PROTOCOL


def test_first_member_waits_for_initial_delay_then_leads(clock):
    coord = GroupCoordinator(GroupConfig(min_session_timeout_ms=10,
                                         initial_rebalance_delay_ms=300), clock)
    a = join(coord, rebalance=1000)
    assert a == [] and coord.groups["g"].state is GroupState.PREPARING_REBALANCE
    advance(coord, clock, 200)
    b = join(coord, rebalance=1000)  # a new member extends the delay
    advance(coord, clock, 100)
    assert a == [] and b == []
    advance(coord, clock, 299)
    assert a == []
    advance(coord, clock, 1)
    assert a[0].error == b[0].error == E.NONE
    assert a[0].leader == a[0].member_id and len(a[0].members) == 2 and b[0].members == []
    assert coord.groups["g"].state is GroupState.COMPLETING_REBALANCE
    assert coord.next_deadline() is not None


def test_initial_delay_is_bounded_by_the_rebalance_timeout(clock):
    coord = GroupCoordinator(GroupConfig(min_session_timeout_ms=10,
                                         initial_rebalance_delay_ms=300), clock)
    results = [join(coord, rebalance=500)]
    for _ in range(5):  # members keep arriving every 250 ms
        advance(coord, clock, 250)
        if results[0]:
            break
        results.append(join(coord, rebalance=500))
    assert results[0] and results[0][0].error == E.NONE
    assert clock.now - 1_000_000 <= 800


def test_member_id_required_round_trip_and_pending_expiry(coord, clock):
    first = join(coord, known_required=True)
    assert first[0].error == E.MEMBER_ID_REQUIRED and first[0].member_id.startswith("c-")
    member_id = first[0].member_id
    again = join(coord, member_id, known_required=True)
    advance(coord, clock, 0)
    assert again[0].error == E.NONE and again[0].member_id == member_id
    # A pending member that never comes back expires after its session timeout.
    other = join(coord, known_required=True, session=100)
    assert other[0].error == E.MEMBER_ID_REQUIRED
    assert other[0].member_id in coord.groups["g"].pending_members
    advance(coord, clock, 100)
    assert other[0].member_id not in coord.groups["g"].pending_members


def test_sync_heartbeat_and_their_errors(coord, clock):
    a, b = stable_group(coord, clock)
    assert hb(coord, a, 1) == E.NONE
    assert hb(coord, a, 2) == E.ILLEGAL_GENERATION
    assert hb(coord, "nobody", 1) == E.UNKNOWN_MEMBER_ID
    assert hb(coord, a, 1, group="other") == E.UNKNOWN_MEMBER_ID
    assert hb(coord, a, 1, group="") == E.INVALID_GROUP_ID
    assert sync(coord, a, 2)[0].error == E.ILLEGAL_GENERATION
    assert sync(coord, "nobody", 1)[0].error == E.UNKNOWN_MEMBER_ID
    assert sync(coord, a, 1, group="other")[0].error == E.UNKNOWN_MEMBER_ID
    assert sync(coord, a, 1, name="roundrobin")[0].error == E.INCONSISTENT_GROUP_PROTOCOL
    assert sync(coord, b, 1)[0].assignment == b.encode()  # Stable: the stored assignment
    # A follower rejoining unchanged in Stable gets the current generation back.
    again = join(coord, b)
    assert again[0].error == E.NONE and again[0].generation_id == 1 and again[0].members == []


def test_leader_rejoin_rebalances_and_others_see_rebalance_in_progress(coord, clock):
    a, b = stable_group(coord, clock)
    leader = coord.groups["g"].leader_id
    follower = b if leader == a else a
    rejoin = join(coord, leader)
    assert coord.groups["g"].state is GroupState.PREPARING_REBALANCE
    assert rejoin == []
    assert hb(coord, follower, 1) == E.REBALANCE_IN_PROGRESS
    assert sync(coord, follower, 1)[0].error == E.REBALANCE_IN_PROGRESS
    rejoin2 = join(coord, follower)
    assert rejoin[0].generation_id == rejoin2[0].generation_id == 2


def test_session_expiry_rebalances_and_removes_the_member(coord, clock):
    a, b = stable_group(coord, clock)
    for _ in range(5):
        advance(coord, clock, 600)
        assert hb(coord, a, 1) in (E.NONE, E.REBALANCE_IN_PROGRESS)
    group = coord.groups["g"]
    assert b not in group.members
    assert group.state is GroupState.PREPARING_REBALANCE
    res = join(coord, a)
    assert res[0].error == E.NONE and res[0].generation_id == 2 and res[0].leader == a


def test_members_that_do_not_rejoin_in_time_are_removed(coord, clock):
    a, b = stable_group(coord, clock)
    res = join(coord, a, rebalance=2000)  # b never rejoins, but keeps heartbeating
    for _ in range(4):
        advance(coord, clock, 500)
        hb(coord, b, 1)
    advance(coord, clock, 1000)
    assert res[0].error == E.NONE and [m[0] for m in res[0].members] == [a]
    assert list(coord.groups["g"].members) == [a]


def test_members_that_do_not_sync_are_removed(coord, clock):
    a, b = stable_group(coord, clock)
    join(coord, a)
    second = join(coord, b)
    assert second[0].generation_id == 2
    leader = second[0].leader
    other = b if leader == a else a
    sync(coord, leader, 2, {a: b"x", b: b"y"})
    for _ in range(11):  # the follower heartbeats but never syncs: out at rebalance timeout
        advance(coord, clock, 500)
        hb(coord, leader, coord.groups["g"].generation_id)
    assert other not in coord.groups["g"].members


def test_leave_group(coord, clock):
    a, b = stable_group(coord, clock)
    top, errors = coord.leave_group("g", [(a, None), ("ghost", None)])
    assert top == E.NONE and errors == [E.NONE, E.UNKNOWN_MEMBER_ID]
    assert coord.groups["g"].state is GroupState.PREPARING_REBALANCE
    assert coord.leave_group("nope", [("x", None)]) == (E.NONE, [E.UNKNOWN_MEMBER_ID])
    assert coord.leave_group("", [("x", None)])[0] == E.INVALID_GROUP_ID
    res = join(coord, b)
    assert res[0].generation_id == 2
    coord.leave_group("g", [(b, None)])
    advance(coord, clock, 0)
    group = coord.groups["g"]
    assert group.state is GroupState.EMPTY and group.generation_id == 3


def test_static_member_restart_keeps_assignment_without_rebalance(coord, clock):
    a = join(coord, instance="i1", session=1000)
    b = join(coord, instance="i2", session=1000)
    advance(coord, clock, 0)
    ids = {"i1": a[0].member_id, "i2": b[0].member_id}
    leader = a[0].leader
    for mid in ids.values():
        sync(coord, mid, 1, {ids["i1"]: b"A", ids["i2"]: b"B"} if mid == leader else None,
             instance="i1" if mid == ids["i1"] else "i2")
    # i2 restarts with an unknown member id: same generation, its assignment back.
    rejoin = join(coord, instance="i2")
    assert rejoin[0].error == E.NONE and rejoin[0].generation_id == 1
    assert rejoin[0].member_id != ids["i2"] and rejoin[0].leader == leader
    assert coord.groups["g"].state is GroupState.STABLE
    assert sync(coord, rejoin[0].member_id, 1, instance="i2")[0].assignment == b"B"
    # The old instance is fenced.
    assert hb(coord, ids["i2"], 1, instance="i2") == E.FENCED_INSTANCE_ID
    assert hb(coord, rejoin[0].member_id, 1, instance="i9") == E.UNKNOWN_MEMBER_ID
    assert join(coord, ids["i2"], instance="i2")[0].error == E.FENCED_INSTANCE_ID
    # The leader restarting: v9 skips the assignment, older versions get the old leader id.
    lead = join(coord, instance="i1", skip=True)
    assert lead[0].skip_assignment and lead[0].leader == lead[0].member_id
    assert len(lead[0].members) == 2
    lead_old = join(coord, instance="i1", skip=False)
    assert not lead_old[0].skip_assignment and lead_old[0].leader == lead[0].member_id
    assert coord.groups["g"].generation_id == 1
    # Changed metadata for the selected protocol does rebalance.
    join(coord, instance="i2", protocols=[("range", b"new")])
    assert coord.groups["g"].state is GroupState.PREPARING_REBALANCE


def test_static_member_not_rejoining_is_kept_through_the_rebalance(coord, clock):
    a = join(coord, instance="i1", rebalance=1000)
    b = join(coord, instance="i2", rebalance=1000)
    advance(coord, clock, 0)
    ids = [a[0].member_id, b[0].member_id]
    for mid, inst in zip(ids, ["i1", "i2"], strict=True):
        sync(coord, mid, 1, {ids[0]: b"A", ids[1]: b"B"} if mid == a[0].leader else None,
             instance=inst)
    res = join(coord, ids[0], instance="i1", rebalance=1000, protocols=[("range", b"new")])
    advance(coord, clock, 500)
    assert hb(coord, ids[1], 1, instance="i2") == E.REBALANCE_IN_PROGRESS
    advance(coord, clock, 500)  # the rebalance timeout: the join completes without i2
    assert hb(coord, ids[1], 1, instance="i2") == E.ILLEGAL_GENERATION
    assert res[0].error == E.NONE and res[0].generation_id == 2
    assert set(coord.groups["g"].members) == set(ids)


def test_group_max_size(clock):
    coord = GroupCoordinator(GroupConfig(min_session_timeout_ms=10, initial_rebalance_delay_ms=0,
                                         max_size=1), clock)
    join(coord)
    advance(coord, clock, 0)
    assert join(coord)[0].error == E.GROUP_MAX_SIZE_REACHED


def test_protocol_selection_and_inconsistent_protocols(coord, clock):
    a = join(coord, protocols=[("roundrobin", b""), ("range", b"")])
    b = join(coord, protocols=[("range", b""), ("roundrobin", b"")])
    c = join(coord, protocols=[("range", b"")])
    advance(coord, clock, 0)
    assert a[0].protocol_name == "range" == b[0].protocol_name == c[0].protocol_name
    assert join(coord, protocols=[("sticky", b"")])[0].error == E.INCONSISTENT_GROUP_PROTOCOL
    assert join(coord, ptype="connect")[0].error == E.INCONSISTENT_GROUP_PROTOCOL


def test_new_member_join_timeout(coord, clock):
    a, b = stable_group(coord, clock)
    join(coord, a, rebalance=10 * NEW_MEMBER_JOIN_TIMEOUT_MS)
    parked = join(coord)  # a new member parks; it cannot heartbeat
    for _ in range(6):
        advance(coord, clock, NEW_MEMBER_JOIN_TIMEOUT_MS // 5)
        hb(coord, b, 1)
    assert parked and parked[0].error in (E.UNKNOWN_MEMBER_ID, E.NONE)


def test_offset_commit_rules(coord, clock):
    om = {("t", 0): OffsetAndMetadata(5)}

    def commit(group: str = "g", generation: int = -1, member: str = "", version: int = 8,
               offsets: Any = om) -> dict:
        return coord.commit_offsets(group_id=group, generation_id=generation, member_id=member,
                                    group_instance_id=None, api_version=version,
                                    offsets=offsets)

    assert commit("simple") == {("t", 0): E.NONE}
    assert commit("nope", 3, "m", 8) == {("t", 0): E.ILLEGAL_GENERATION}
    assert commit("nope", 3, "m", 9) == {("t", 0): E.GROUP_ID_NOT_FOUND}
    assert commit("simple", -1, "m") == {("t", 0): E.NONE}  # empty group: accepted
    big = {("t", 0): OffsetAndMetadata(1, metadata="x" * 5000), ("t", 1): OffsetAndMetadata(2)}
    assert commit("simple", offsets=big) == {("t", 0): E.OFFSET_METADATA_TOO_LARGE,
                                             ("t", 1): E.NONE}
    a, b = stable_group(coord, clock)
    assert commit("g", 1, a) == {("t", 0): E.NONE}
    assert commit("g", 2, a) == {("t", 0): E.ILLEGAL_GENERATION}
    assert commit("g", 1, "ghost") == {("t", 0): E.UNKNOWN_MEMBER_ID}
    assert commit("g", -1, "") == {("t", 0): E.UNKNOWN_MEMBER_ID}
    join(coord, a)
    assert commit("g", 1, b) == {("t", 0): E.NONE}  # PreparingRebalance still commits
    join(coord, b)
    assert commit("g", 2, a) == {("t", 0): E.REBALANCE_IN_PROGRESS}
    fetched = coord.fetch_offsets("g", [("t", 0), ("t", 9)])
    assert fetched[("t", 0)].offset == 5 and fetched[("t", 9)] is None
    assert coord.fetch_offsets("unknown", None) == {}


def test_commit_store_failure_is_reported(coord):
    coord.store.fail = E.COORDINATOR_NOT_AVAILABLE  # type: ignore[attr-defined]
    result = coord.commit_offsets(group_id="s", generation_id=-1, member_id="",
                                  group_instance_id=None, api_version=8,
                                  offsets={("t", 0): OffsetAndMetadata(1)})
    assert result == {("t", 0): E.COORDINATOR_NOT_AVAILABLE}
    assert coord.fetch_offsets("s", [("t", 0)]) == {("t", 0): None}


def test_delete_groups_and_offsets(coord, clock):
    coord.commit_offsets(group_id="s", generation_id=-1, member_id="", group_instance_id=None,
                         api_version=8, offsets={("t", 0): OffsetAndMetadata(1),
                                                 ("u", 0): OffsetAndMetadata(2)})
    assert coord.delete_offsets("s", [("t", 0), ("x", 0)]) == (
        E.NONE, {("t", 0): E.NONE, ("x", 0): E.NONE})
    assert coord.fetch_offsets("s", None).keys() == {("u", 0)}
    assert coord.delete_offsets("nope", [("t", 0)])[0] == E.GROUP_ID_NOT_FOUND
    metadata = b"\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x01t" + b"\x00\x00\x00\x00"
    join(coord, protocols=[("range", metadata)])
    advance(coord, clock, 0)
    assert coord.delete_offsets("g", [("t", 0), ("u", 0)]) == (
        E.NONE, {("t", 0): E.GROUP_SUBSCRIBED_TO_TOPIC, ("u", 0): E.NONE})
    join(coord, group="connect", ptype="connect")
    advance(coord, clock, 0)
    assert coord.delete_offsets("connect", [("t", 0)])[0] == E.NON_EMPTY_GROUP
    assert coord.delete_groups(["s", "g", "missing"]) == {
        "s": E.NONE, "g": E.NON_EMPTY_GROUP, "missing": E.GROUP_ID_NOT_FOUND}
    assert "s" not in coord.groups


def test_list_and_describe(coord, clock):
    stable_group(coord, clock)
    coord.commit_offsets(group_id="s", generation_id=-1, member_id="", group_instance_id=None,
                         api_version=8, offsets={("t", 0): OffsetAndMetadata(1)})
    assert sorted(coord.list_groups()) == [("g", "consumer", "Stable"), ("s", "", "Empty")]
    assert coord.list_groups(["stable"]) == [("g", "consumer", "Stable")]
    assert coord.list_groups(types=["CONSUMER"]) == []
    assert len(coord.list_groups(types=["Classic"])) == 2
    summary = coord.describe_group("g")
    assert summary is not None and summary.protocol_data == "range"
    assert all(m.metadata == b"meta" and m.assignment for m in summary.members)
    assert coord.describe_group("missing") is None


def test_offset_expiry(clock):
    coord = GroupCoordinator(GroupConfig(min_session_timeout_ms=10, initial_rebalance_delay_ms=0,
                                         offsets_retention_ms=1000,
                                         offsets_retention_check_interval_ms=100), clock)
    coord.commit_offsets(group_id="s", generation_id=-1, member_id="", group_instance_id=None,
                         api_version=8,
                         offsets={("t", 0): OffsetAndMetadata(1, commit_timestamp=clock.now)})
    coord.commit_offsets(group_id="r", generation_id=-1, member_id="", group_instance_id=None,
                         api_version=2, offsets={("t", 0): OffsetAndMetadata(
                             1, commit_timestamp=clock.now, expire_timestamp=clock.now + 5000)})
    advance(coord, clock, 900)
    assert "s" in coord.groups
    advance(coord, clock, 200)
    assert "s" not in coord.groups  # offsets expired, then the empty group went
    assert "r" in coord.groups  # an explicit expire timestamp wins over the retention
    advance(coord, clock, 4000)
    assert "r" not in coord.groups
