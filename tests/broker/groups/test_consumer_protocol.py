"""The KIP-848 consumer group state machine with a fake clock (no broker, no sockets)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from broker.groups import records
from broker.groups.assignors import MemberSpec, range_assign, uniform_assign
from broker.groups.consumer import (
    ConsumerGroupConfig,
    ConsumerGroupCoordinator,
    HeartbeatResult,
    MemberState,
)
from broker.groups.coordinator import GroupConfig, GroupCoordinator, JoinResult
from protocol.errors import ErrorCode as E

T1 = uuid.UUID(int=1)
T2 = uuid.UUID(int=2)


class Catalog:
    def __init__(self, **topics: int) -> None:
        self.topics = {name: (uuid.UUID(int=i + 1), n)
                       for i, (name, n) in enumerate(topics.items())}

    def topic(self, name: str) -> tuple[uuid.UUID, int] | None:
        return self.topics.get(name)

    def names(self) -> list[str]:
        return list(self.topics)

    def name_of(self, topic_id: uuid.UUID) -> str | None:
        return next((n for n, (t, _) in self.topics.items() if t == topic_id), None)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(t1=6, t2=2)


@pytest.fixture
def cgc(clock: Clock, catalog: Catalog) -> ConsumerGroupCoordinator:
    return ConsumerGroupCoordinator(ConsumerGroupConfig(), clock, catalog)


def join(cgc: ConsumerGroupCoordinator, member: str, topics: list[str] | None = None,
         group: str = "g", **kw: Any) -> HeartbeatResult:
    kw.setdefault("rebalance_timeout_ms", 30000)
    return cgc.heartbeat(group_id=group, member_id=member, member_epoch=0,
                         subscribed_topic_names=["t1"] if topics is None else topics,
                         owned=[], api_version=1, **kw)


def hb(cgc: ConsumerGroupCoordinator, member: str, epoch: int,
       owned: dict[uuid.UUID, set[int]] | None = None, group: str = "g",
       **kw: Any) -> HeartbeatResult:
    return cgc.heartbeat(group_id=group, member_id=member, member_epoch=epoch,
                         owned=None if owned is None else [(t, sorted(p))
                                                          for t, p in owned.items()],
                         api_version=1, **kw)


def parts(result: HeartbeatResult, topic: uuid.UUID = T1) -> set[int]:
    assert result.assignment is not None
    return result.assignment.get(topic, set())


def settle(cgc: ConsumerGroupCoordinator, members: dict[str, dict[uuid.UUID, set[int]]],
           epochs: dict[str, int], rounds: int = 6) -> None:
    """Heartbeat every member with what it owns until nothing changes."""
    for _ in range(rounds):
        for member in members:
            r = hb(cgc, member, epochs[member], members[member])
            assert r.error is E.NONE, (member, r)
            epochs[member] = r.member_epoch
            if r.assignment is not None:
                members[member] = {t: set(p) for t, p in r.assignment.items()}


def covered_once(members: dict[str, dict[uuid.UUID, set[int]]], topic: uuid.UUID,
                 n: int) -> bool:
    seen = sorted(p for a in members.values() for p in a.get(topic, set()))
    return seen == list(range(n))


# -- joining and reconciliation -----------------------------------------------------------


def test_first_member_gets_every_partition(cgc):
    r = join(cgc, "m1")
    assert r.error is E.NONE and r.member_id == "m1"
    assert r.member_epoch == 1 and r.heartbeat_interval_ms == 5000
    assert parts(r) == set(range(6))
    group = cgc.groups["g"]
    assert group.state == "Stable" and group.assignor == "uniform"
    # A plain heartbeat with the same epoch and owned partitions: no assignment resent.
    r = hb(cgc, "m1", 1, {T1: set(range(6))})
    assert r.error is E.NONE and r.member_epoch == 1 and r.assignment is None


def test_v0_generates_a_member_id(cgc):
    r = cgc.heartbeat(group_id="g", member_id="", member_epoch=0, rebalance_timeout_ms=1000,
                      subscribed_topic_names=["t1"], owned=[], api_version=0)
    assert r.error is E.NONE and len(r.member_id or "") == 22


def test_revocation_comes_before_assignment(cgc):
    join(cgc, "m1")
    r2 = join(cgc, "m2")
    # m2 moves to the new epoch but its partitions are still owned by m1: held back.
    assert r2.member_epoch == 2 and parts(r2) == set()
    assert cgc.groups["g"].members["m2"].state is MemberState.UNRELEASED_PARTITIONS
    assert cgc.groups["g"].state == "Reconciling"
    # m1 is asked to revoke three partitions, keeping its epoch.
    r1 = hb(cgc, "m1", 1, {T1: set(range(6))})
    kept = parts(r1)
    assert r1.member_epoch == 1 and len(kept) == 3
    assert cgc.groups["g"].members["m1"].state is MemberState.UNREVOKED_PARTITIONS
    # Still owning them: nothing moves, m2 still waits.
    r1 = hb(cgc, "m1", 1, {T1: set(range(6))})
    assert r1.member_epoch == 1 and r1.assignment in (None, {T1: kept})
    assert hb(cgc, "m2", 2, {}).assignment in (None, {})
    # m1 acknowledges the revocation: it reaches epoch 2; m2 then gets the released ones.
    r1 = hb(cgc, "m1", 1, {T1: kept})
    assert r1.member_epoch == 2
    r2 = hb(cgc, "m2", 2, {})
    assert parts(r2) == set(range(6)) - kept
    assert cgc.groups["g"].state == "Stable"


def test_null_owned_partitions_mean_still_owned(cgc):
    join(cgc, "m1")
    join(cgc, "m2")
    r1 = hb(cgc, "m1", 1, {T1: set(range(6))})
    # A heartbeat without the owned list cannot acknowledge a revocation.
    r = hb(cgc, "m1", 1, None)
    assert r.member_epoch == 1 and r.assignment is None
    assert hb(cgc, "m1", 1, {T1: parts(r1)}).member_epoch == 2


def test_three_members_cover_six_partitions_exactly_once_through_churn(cgc, clock):
    owned: dict[str, dict[uuid.UUID, set[int]]] = {}
    epochs: dict[str, int] = {}
    for m in ("a", "b", "c"):
        r = join(cgc, m)
        owned[m] = r.assignment or {}
        epochs[m] = r.member_epoch
    settle(cgc, owned, epochs)
    assert covered_once(owned, T1, 6) and [len(a[T1]) for a in owned.values()] == [2, 2, 2]
    # a leaves.
    assert hb(cgc, "a", -1).member_epoch == -1
    del owned["a"], epochs["a"]
    settle(cgc, owned, epochs)
    assert covered_once(owned, T1, 6) and [len(a[T1]) for a in owned.values()] == [3, 3]
    # b stops heartbeating: its session expires.
    clock.now += 44_000
    settle(cgc, {"c": owned["c"]}, epochs, rounds=1)
    clock.now += 2_000
    cgc.tick()
    assert "b" not in cgc.groups["g"].members
    del owned["b"], epochs["b"]
    settle(cgc, owned, epochs)
    assert owned["c"] == {T1: set(range(6))}
    # d joins.
    r = join(cgc, "d")
    owned["d"], epochs["d"] = r.assignment or {}, r.member_epoch
    settle(cgc, owned, epochs)
    assert covered_once(owned, T1, 6) and [len(a[T1]) for a in owned.values()] == [3, 3]
    assert cgc.groups["g"].state == "Stable"


def test_previous_epoch_is_accepted_with_a_subset_of_the_assignment(cgc):
    join(cgc, "m1")
    join(cgc, "m2")
    kept = parts(hb(cgc, "m1", 1, {T1: set(range(6))}))
    assert hb(cgc, "m1", 1, {T1: kept}).member_epoch == 2
    # The answer bumping m1 to 2 was lost: epoch 1 with a subset is fine.
    r = hb(cgc, "m1", 1, {T1: kept})
    assert r.error is E.NONE and r.member_epoch == 2
    # Owning more than the assignment at the previous epoch: fenced.
    r = hb(cgc, "m1", 1, {T1: set(range(6))})
    assert r.error is E.FENCED_MEMBER_EPOCH
    assert "smaller member epoch (1)" in (r.message or "")
    r = hb(cgc, "m1", 5, {T1: kept})
    assert r.error is E.FENCED_MEMBER_EPOCH and "greater member epoch (5)" in (r.message or "")


def test_rejoin_with_epoch_zero_keeps_the_member(cgc):
    first = join(cgc, "m1")
    again = join(cgc, "m1")
    assert again.error is E.NONE and again.member_epoch == first.member_epoch
    assert parts(again) == set(range(6))


def test_member_that_does_not_revoke_in_time_is_fenced(cgc, clock):
    join(cgc, "m1", rebalance_timeout_ms=10_000)
    join(cgc, "m2")
    hb(cgc, "m1", 1, {T1: set(range(6))})  # asked to revoke
    clock.now += 9_000
    hb(cgc, "m2", 2, {})
    cgc.tick()
    assert "m1" in cgc.groups["g"].members
    clock.now += 1_001
    cgc.tick()
    assert "m1" not in cgc.groups["g"].members
    assert parts(hb(cgc, "m2", 2, {})) == set(range(6))
    assert hb(cgc, "m1", 1, {}).error is E.UNKNOWN_MEMBER_ID


def test_leaving_frees_partitions_and_unknown_members_are_refused(cgc):
    join(cgc, "m1")
    join(cgc, "m2")
    r = hb(cgc, "m1", -1)
    assert (r.error, r.member_id, r.member_epoch, r.heartbeat_interval_ms) == \
        (E.NONE, "m1", -1, 0)
    assert parts(hb(cgc, "m2", 2, {})) == set(range(6))
    r = hb(cgc, "m1", -1)
    assert r.error is E.UNKNOWN_MEMBER_ID
    assert r.message == "Member m1 is not a member of group g."
    assert cgc.groups["g"].group_epoch == 3


def test_unknown_group(cgc):
    r = hb(cgc, "m", 3, {})
    assert (r.error, r.message) == (E.GROUP_ID_NOT_FOUND, "Consumer group g not found.")
    r = hb(cgc, "m", -1)
    assert (r.error, r.message) == (E.GROUP_ID_NOT_FOUND, "Group g not found.")


# -- subscriptions and metadata --------------------------------------------------------------


def test_subscription_change_and_new_partitions_bump_the_group_epoch(cgc, catalog):
    r = join(cgc, "m1")
    assert r.member_epoch == 1
    r = hb(cgc, "m1", 1, {T1: set(range(6))}, subscribed_topic_names=["t1", "t2"])
    assert r.member_epoch == 2 and r.assignment == {T1: set(range(6)), T2: {0, 1}}
    catalog.topics["t2"] = (T2, 4)
    r = hb(cgc, "m1", 2, r.assignment)
    assert r.member_epoch == 3 and r.assignment == {T1: set(range(6)), T2: {0, 1, 2, 3}}


def test_regex_subscription(cgc, catalog):
    r = cgc.heartbeat(group_id="g", member_id="m1", member_epoch=0, rebalance_timeout_ms=1000,
                      subscribed_topic_regex="t.*", owned=[], api_version=1)
    assert r.assignment == {T1: set(range(6)), T2: {0, 1}}
    catalog.topics["t3"] = (uuid.UUID(int=3), 1)
    catalog.topics["other"] = (uuid.UUID(int=4), 1)
    r = hb(cgc, "m1", 1, r.assignment)
    assert r.assignment == {T1: set(range(6)), T2: {0, 1}, uuid.UUID(int=3): {0}}
    group = cgc.groups["g"]
    assert group.members["m1"].subscribed_topic_regex == "t.*"


def test_server_assignor_choice(cgc):
    join(cgc, "m1", server_assignor="range")
    join(cgc, "m2", server_assignor="range")
    assert cgc.groups["g"].assignor == "range"
    assert cgc.groups["g"].target == {"m1": {T1: {0, 1, 2}}, "m2": {T1: {3, 4, 5}}}


# -- static membership -----------------------------------------------------------------------


def test_static_member_leaves_and_comes_back_with_its_assignment(cgc, clock):
    r = join(cgc, "s1", instance_id="i1")
    join(cgc, "m2")
    owned = {T1: set(range(6))}
    kept = parts(hb(cgc, "s1", 1, owned, instance_id="i1"))
    hb(cgc, "s1", 1, {T1: kept}, instance_id="i1")
    epoch_before = cgc.groups["g"].group_epoch
    r = hb(cgc, "s1", -2, instance_id="i1")
    assert (r.error, r.member_epoch, r.heartbeat_interval_ms) == (E.NONE, -2, 0)
    assert cgc.groups["g"].group_epoch == epoch_before  # no rebalance
    # While it is away, its instance id is taken; a new member id gets it all back.
    r = join(cgc, "s1-new", instance_id="i1")
    assert r.error is E.NONE and r.member_id == "s1-new"
    assert parts(r) == kept and r.member_epoch == 2
    assert "s1" not in cgc.groups["g"].members
    assert cgc.groups["g"].group_epoch == epoch_before


def test_static_membership_errors(cgc):
    join(cgc, "s1", instance_id="i1")
    r = join(cgc, "s2", instance_id="i1")
    assert r.error is E.UNRELEASED_INSTANCE_ID
    assert r.message == ("Static member s2 with instance id i1 cannot join the group because "
                         "the instance id is owned by s1 member.")
    r = hb(cgc, "s2", 1, {}, instance_id="i1")
    assert (r.error, r.message) == (E.FENCED_INSTANCE_ID,
                                    "Static member s2 with instance id i1 was fenced by member s1.")
    r = hb(cgc, "s2", 1, {}, instance_id="i9")
    assert (r.error, r.message) == (E.UNKNOWN_MEMBER_ID, "Instance id i9 is unknown.")


def test_static_member_away_too_long_is_removed(cgc, clock):
    join(cgc, "s1", instance_id="i1")
    hb(cgc, "s1", -2, instance_id="i1")
    clock.now += 45_000
    cgc.tick()
    assert cgc.groups["g"].members == {}
    assert cgc.groups["g"].state == "Empty"


# -- limits and validation -------------------------------------------------------------------


def test_group_max_size(clock, catalog):
    cgc = ConsumerGroupCoordinator(ConsumerGroupConfig(max_size=1), clock, catalog)
    join(cgc, "m1")
    r = join(cgc, "m2")
    assert r.error is E.GROUP_MAX_SIZE_REACHED
    assert r.message == "The consumer group has reached its maximum capacity of 1 members."


@pytest.mark.parametrize(("kwargs", "code", "message"), [
    ({"group_id": ""}, E.INVALID_REQUEST, "GroupId can't be empty."),
    ({"member_id": ""}, E.INVALID_REQUEST, "MemberId can't be empty."),
    ({"rebalance_timeout_ms": -1}, E.INVALID_REQUEST,
     "RebalanceTimeoutMs must be provided in first request."),
    ({"owned": None}, E.INVALID_REQUEST, "TopicPartitions must be empty when (re-)joining."),
    ({"owned": [(T1, [0])]}, E.INVALID_REQUEST,
     "TopicPartitions must be empty when (re-)joining."),
    ({"subscribed_topic_names": None}, E.INVALID_REQUEST,
     "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining."),
    ({"member_epoch": -3}, E.INVALID_REQUEST, "MemberEpoch is invalid."),
    ({"member_epoch": -2}, E.INVALID_REQUEST, "InstanceId can't be null."),
    ({"rack_id": ""}, E.INVALID_REQUEST, "RackId can't be empty."),
    ({"instance_id": ""}, E.INVALID_REQUEST, "InstanceId can't be empty."),
    ({"server_assignor": "foo"}, E.UNSUPPORTED_ASSIGNOR,
     "ServerAssignor foo is not supported. Supported assignors: uniform, range."),
    ({"subscribed_topic_regex": "("}, E.INVALID_REGULAR_EXPRESSION, None),
])
def test_invalid_requests(cgc, kwargs, code, message):
    request = {"group_id": "g", "member_id": "m", "member_epoch": 0,
               "rebalance_timeout_ms": 1000, "subscribed_topic_names": ["t1"], "owned": [],
               "api_version": 1}
    request.update(kwargs)
    r = cgc.heartbeat(**request)
    assert r.error is code
    if message is not None:
        assert r.message == message
    assert "g" not in cgc.groups or not cgc.groups["g"].members


# -- assignors -------------------------------------------------------------------------------


def test_uniform_is_balanced_and_sticky():
    specs = {m: MemberSpec(frozenset({T1, T2})) for m in ("a", "b", "c")}
    first = uniform_assign(specs, {T1: 7, T2: 3}, {})
    counts = sorted(sum(len(p) for p in a.values()) for a in first.values())
    assert counts == [3, 3, 4]
    flat = sorted((t, p) for a in first.values() for t, ps in a.items() for p in ps)
    assert flat == sorted([(T1, p) for p in range(7)] + [(T2, p) for p in range(3)])
    # A fourth member takes partitions only from the others' surplus.
    specs["d"] = MemberSpec(frozenset({T1, T2}))
    second = uniform_assign(specs, {T1: 7, T2: 3}, first)
    for m in ("a", "b", "c"):
        kept = {(t, p) for t, ps in second[m].items() for p in ps}
        had = {(t, p) for t, ps in first[m].items() for p in ps}
        assert kept <= had
    assert sorted(sum(len(p) for p in a.values()) for a in second.values()) == [2, 2, 3, 3]


def test_uniform_with_different_subscriptions():
    specs = {"a": MemberSpec(frozenset({T1})), "b": MemberSpec(frozenset({T1, T2}))}
    result = uniform_assign(specs, {T1: 4, T2: 4}, {})
    # The topic with fewer subscribers first; then each partition to the least loaded.
    assert result == {"a": {T1: {0, 1, 2, 3}}, "b": {T2: {0, 1, 2, 3}}}
    # Stickiness on ties: b keeps T1-0 it had before.
    result = uniform_assign(specs, {T1: 4, T2: 2}, {"b": {T1: {0}}})
    assert 0 in result["b"].get(T1, set())
    assert sorted(len(ps) for a in result.values() for ps in a.values()) == [1, 2, 3]


def test_range_assigns_contiguous_ranges_per_topic():
    specs = {"b": MemberSpec(frozenset({T1, T2})), "a": MemberSpec(frozenset({T1}))}
    result = range_assign(specs, {T1: 5, T2: 2}, {})
    assert result == {"a": {T1: {0, 1, 2}}, "b": {T1: {3, 4}, T2: {0, 1}}}


# -- offsets, classic groups, persistence -----------------------------------------------------


@pytest.fixture
def classic(clock, catalog) -> GroupCoordinator:
    coordinator = GroupCoordinator(GroupConfig(initial_rebalance_delay_ms=0), clock)
    coordinator.consumer = ConsumerGroupCoordinator(ConsumerGroupConfig(), clock, catalog,
                                                    classic=coordinator)
    return coordinator


def test_offset_commit_validation(classic):
    from broker.groups.coordinator import OffsetAndMetadata

    cgc = classic.consumer
    join(cgc, "m1")
    offsets = {("t1", 0): OffsetAndMetadata(5)}

    def commit(member: str, epoch: int, version: int = 9) -> E:
        return classic.commit_offsets(group_id="g", generation_id=epoch, member_id=member,
                                      group_instance_id=None, api_version=version,
                                      offsets=offsets)[("t1", 0)]

    assert commit("m1", 1) is E.NONE
    assert commit("m1", 0) is E.STALE_MEMBER_EPOCH
    assert commit("zz", 1) is E.UNKNOWN_MEMBER_ID
    assert commit("m1", 1, version=8) is E.UNSUPPORTED_VERSION
    assert commit("", -1) is E.UNKNOWN_MEMBER_ID  # admin commit while members are active
    assert classic.fetch_offsets("g", [("t1", 0)])[("t1", 0)].offset == 5
    assert cgc.validate_fetch("g", "m1", 1) is E.NONE
    assert cgc.validate_fetch("g", "m1", 0) is E.STALE_MEMBER_EPOCH
    assert cgc.validate_fetch("g", "zz", 1) is E.UNKNOWN_MEMBER_ID
    assert cgc.validate_fetch("g", None, -1) is E.NONE
    hb(cgc, "m1", -1)
    assert commit("", -1) is E.NONE
    # Listing: the group is a consumer group, not a classic one.
    assert classic.list_groups() == []
    assert cgc.list_groups() == [("g", "consumer", "Empty", "consumer")]
    assert cgc.list_groups(types=["classic"]) == []
    assert cgc.list_groups(states=["stable"]) == []
    assert classic.describe_group("g") is None
    assert classic.delete_groups(["g"]) == {"g": E.NONE}
    assert "g" not in cgc.groups and "g" not in classic.groups


def test_classic_and_consumer_groups_do_not_mix(classic):
    results: list[JoinResult] = []
    classic.join_group(group_id="c", member_id="", group_instance_id=None, client_id="x",
                       client_host="/h", session_timeout_ms=10000, rebalance_timeout_ms=10000,
                       protocol_type="consumer", protocols=[("range", b"")],
                       require_known_member_id=False, supports_skip_assignment=False,
                       callback=results.append)
    classic.tick(classic.clock() + 1)
    assert results[-1].error is E.NONE
    r = join(classic.consumer, "m1", group="c")
    assert (r.error, r.message) == (E.GROUP_ID_NOT_FOUND, "Group c is not a consumer group.")
    join(classic.consumer, "m1", group="k")
    classic.join_group(group_id="k", member_id="", group_instance_id=None, client_id="x",
                       client_host="/h", session_timeout_ms=10000, rebalance_timeout_ms=10000,
                       protocol_type="consumer", protocols=[("range", b"")],
                       require_known_member_id=False, supports_skip_assignment=False,
                       callback=results.append)
    assert results[-1].error is E.INCONSISTENT_GROUP_PROTOCOL
    assert classic.delete_groups(["k"]) == {"k": E.NON_EMPTY_GROUP}


def test_empty_classic_group_becomes_a_consumer_group_and_keeps_its_offsets(classic):
    from broker.groups.coordinator import OffsetAndMetadata

    classic.commit_offsets(group_id="g", generation_id=-1, member_id="", group_instance_id=None,
                           api_version=9, offsets={("t1", 1): OffsetAndMetadata(7)})
    r = join(classic.consumer, "m1")
    assert r.error is E.NONE
    assert classic.fetch_offsets("g", [("t1", 1)])[("t1", 1)].offset == 7


def test_records_round_trip(cgc, clock, catalog):
    join(cgc, "s1", instance_id="i1", rack_id="r1")
    join(cgc, "m2", topics=["t1", "t2"])
    hb(cgc, "s1", 1, {T1: set(range(6))}, instance_id="i1")  # s1 revoking
    group = cgc.groups["g"]
    written = records.consumer_group_records(group)
    found = {}
    for key, value in written.items():
        kind, version = records.decode_key(key)
        assert kind == "consumer"
        gid, mid, decoded = records.decode_consumer_record(version, key, value)
        assert gid == "g"
        found[(version, mid)] = (key, decoded)
    assert sorted({v for v, _ in found}) == [3, 5, 6, 7, 8]
    fresh = ConsumerGroupCoordinator(ConsumerGroupConfig(), clock, catalog)
    loaded = fresh.load_group("g", found)
    assert records.consumer_group_records(loaded) == written
    assert loaded.state == group.state
    s1 = loaded.members["s1"]
    assert (s1.instance_id, s1.rack_id, s1.state) == \
        ("i1", "r1", MemberState.UNREVOKED_PARTITIONS)
    assert loaded.owners == group.owners
    # The restored members carry on with their epochs.
    r = hb(fresh, "m2", group.members["m2"].member_epoch, {}, )
    assert r.error is E.NONE
    r = hb(fresh, "s1", 1, {T1: group.members["s1"].assigned[T1]}, instance_id="i1")
    assert r.error is E.NONE and r.member_epoch == loaded.target_epoch
