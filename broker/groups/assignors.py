"""Server-side partition assignors of the KIP-848 consumer group protocol: `uniform`, `range`.

An assignor maps the group's members (their resolved subscriptions, as topic ids) and the
subscribed topics' partition counts to a target assignment: member id -> topic id ->
partitions. It is a pure function; the group coordinator (`broker.groups.consumer`) calls it
whenever the group epoch moves past the target assignment epoch.

- `uniform` (Kafka's default, `UniformAssignor`): spreads every subscribed partition so that
  member partition counts differ by at most one when all members share one subscription,
  and stays sticky: a member keeps what it had in the previous target assignment up to its
  quota. With different subscriptions the partitions of each topic (topics with the fewest
  subscribers first) are counted out to the least loaded subscribers, and previous owners
  keep their partitions within those counts.
- `range` (Kafka's `RangeAssignor`): per topic, the subscribers sorted by member id get
  contiguous ranges, the first `partitions % members` one partition more.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Assignment = dict[uuid.UUID, set[int]]


@dataclass(slots=True)
class MemberSpec:
    subscribed: frozenset[uuid.UUID]
    instance_id: str | None = None
    rack_id: str | None = None


AssignorFn = Callable[[Mapping[str, MemberSpec], Mapping[uuid.UUID, int],
                       Mapping[str, Assignment]], dict[str, Assignment]]


def _empty(members: Mapping[str, MemberSpec]) -> dict[str, Assignment]:
    return {m: {} for m in members}


def _add(result: dict[str, Assignment], member: str, topic: uuid.UUID, partition: int) -> None:
    result[member].setdefault(topic, set()).add(partition)


def range_assign(members: Mapping[str, MemberSpec], topics: Mapping[uuid.UUID, int],
                 current: Mapping[str, Assignment]) -> dict[str, Assignment]:
    result = _empty(members)
    for topic, count in sorted(topics.items(), key=lambda item: str(item[0])):
        subscribers = sorted(m for m, spec in members.items() if topic in spec.subscribed)
        if not subscribers:
            continue
        base, extra = divmod(count, len(subscribers))
        start = 0
        for i, member in enumerate(subscribers):
            size = base + (1 if i < extra else 0)
            for partition in range(start, start + size):
                _add(result, member, topic, partition)
            start += size
    return result


def uniform_assign(members: Mapping[str, MemberSpec], topics: Mapping[uuid.UUID, int],
                   current: Mapping[str, Assignment]) -> dict[str, Assignment]:
    result = _empty(members)
    if not members:
        return result
    subscriptions = {spec.subscribed for spec in members.values()}
    if len(subscriptions) == 1:
        _uniform_homogeneous(members, topics, current, result)
    else:
        _uniform_heterogeneous(members, topics, current, result)
    return result


def _previous_owners(members: Mapping[str, MemberSpec], topics: Mapping[uuid.UUID, int],
                     current: Mapping[str, Assignment]) -> dict[tuple[uuid.UUID, int], str]:
    owners: dict[tuple[uuid.UUID, int], str] = {}
    for member, assignment in current.items():
        spec = members.get(member)
        if spec is None:
            continue
        for topic, partitions in assignment.items():
            if topic not in spec.subscribed or topic not in topics:
                continue
            for partition in partitions:
                if partition < topics[topic]:
                    owners.setdefault((topic, partition), member)
    return owners


def _uniform_homogeneous(members: Mapping[str, MemberSpec], topics: Mapping[uuid.UUID, int],
                         current: Mapping[str, Assignment],
                         result: dict[str, Assignment]) -> None:
    subscribed = next(iter(members.values())).subscribed
    partitions = [(t, p) for t in sorted(subscribed, key=str) if t in topics
                  for p in range(topics[t])]
    if not partitions:
        return
    base, extra = divmod(len(partitions), len(members))
    counts = dict.fromkeys(members, 0)
    owners = _previous_owners(members, topics, current)
    kept: dict[str, list[tuple[uuid.UUID, int]]] = {m: [] for m in members}
    for tp in partitions:
        owner = owners.get(tp)
        if owner is not None:
            kept[owner].append(tp)
    unassigned: list[tuple[uuid.UUID, int]] = []
    # Members with more than `base` previous partitions may keep one extra while extras last.
    for member in sorted(members, key=lambda m: (-len(kept[m]), m)):
        quota = base
        if extra and len(kept[member]) > base:
            quota += 1
            extra -= 1
        for tp in kept[member][:quota]:
            _add(result, member, *tp)
        counts[member] = min(quota, len(kept[member]))
        unassigned.extend(kept[member][quota:])
    unassigned.extend(tp for tp in partitions if tp not in owners)
    unassigned.sort(key=lambda tp: (str(tp[0]), tp[1]))
    for tp in unassigned:
        # Fill members below `base` first, then hand out the remaining extras.
        member = min(members, key=lambda m: (counts[m], m))
        _add(result, member, *tp)
        counts[member] += 1


def _uniform_heterogeneous(members: Mapping[str, MemberSpec], topics: Mapping[uuid.UUID, int],
                           current: Mapping[str, Assignment],
                           result: dict[str, Assignment]) -> None:
    """First decide how many partitions of each topic every member gets (topic by topic,
    fewest subscribers first, each partition to the least loaded subscriber), then hand out
    the actual partitions, previous owners keeping theirs within those counts."""
    owners = _previous_owners(members, topics, current)
    counts = dict.fromkeys(members, 0)
    subscribers = {t: sorted(m for m, s in members.items() if t in s.subscribed) for t in topics}
    for topic in sorted(topics, key=lambda t: (len(subscribers[t]), str(t))):
        if not subscribers[topic]:
            continue
        share = dict.fromkeys(subscribers[topic], 0)
        for _ in range(topics[topic]):
            member = min(subscribers[topic], key=lambda m: (counts[m], m))
            share[member] += 1
            counts[member] += 1
        free = []
        for partition in range(topics[topic]):
            owner = owners.get((topic, partition))
            if owner is not None and share.get(owner, 0) > 0:
                _add(result, owner, topic, partition)
                share[owner] -= 1
            else:
                free.append(partition)
        for partition in free:
            member = next(m for m in subscribers[topic] if share[m] > 0)
            _add(result, member, topic, partition)
            share[member] -= 1


ASSIGNORS: dict[str, AssignorFn] = {"uniform": uniform_assign, "range": range_assign}
