"""Consumer group administration: list, describe, committed offsets, offset resets.

Each group request goes to the group's coordinator (FindCoordinator). A group is described
the way Kafka's admin client does it: ConsumerGroupDescribe first when the broker serves it
(KIP-848 groups), then DescribeGroups for a classic group (the first answers
GROUP_ID_NOT_FOUND "... is not a consumer group"). Member assignments of classic groups
are decoded from the consumer protocol (`ConsumerProtocolAssignment`, any version by its
version-0 prefix, as Kafka reads newer versions).

Offset resets follow `kafka-consumer-groups --reset-offsets` (ConsumerGroupCommand and
GroupOffsetsResetter in Kafka 4.4):

- only a group whose state is Empty or Dead (or that does not exist) is reset; any other
  state is the error "Assignments can only be reset if the group '<g>' is inactive, but
  the current state is <State>.";
- the scope is `--all-topics` (every partition with a committed offset) or `--topic t`
  / `--topic t:0,2` (every partition of t / the listed ones); partitions that do not exist
  fail with UNKNOWN_TOPIC_OR_PARTITION 'The partitions "t-9" do not exist';
- `to_offset`, `shift_by` (from the committed offset; "Cannot shift offset for partition
  <tp> since there is no current committed offset" without one) and the file plan are
  clamped into [log start, log end], with a warning naming both values;
- `to_datetime`/`by_duration` take the first offset whose timestamp is at or after the
  time, falling back to the log end offset for a partition without one;
- nothing is written unless `execute` (dry run is the default); then one OffsetCommit
  with generation -1 and no member id, as `alterConsumerGroupOffsets` sends.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from broker.admin.client import AdminClient
from broker.admin.errors import AdminError, KafkaError, check
from broker.admin.topics import EARLIEST, LATEST, list_offsets
from protocol.errors import ProtocolError
from protocol.messages.consumer_group_describe_request import ConsumerGroupDescribeRequest
from protocol.messages.consumer_protocol_assignment import ConsumerProtocolAssignment
from protocol.messages.describe_groups_request import DescribeGroupsRequest
from protocol.messages.list_groups_request import ListGroupsRequest
from protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from protocol.messages.offset_fetch_request import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
)

__all__ = [
    "GroupDescription",
    "MemberInfo",
    "ResetSpec",
    "commit_offsets",
    "committed_offsets",
    "describe_group",
    "list_groups",
    "parse_datetime",
    "plan_reset",
]

log = logging.getLogger("odradek.cli")

OFFSET_COMMIT = 8
OFFSET_FETCH = 9
DESCRIBE_GROUPS = 15
LIST_GROUPS = 16
CONSUMER_GROUP_DESCRIBE = 69
GROUP_ID_NOT_FOUND = 69
INACTIVE_STATES = ("Empty", "Dead")

TopicPartition = tuple[str, int]
T = TypeVar("T")


@dataclass
class MemberInfo:
    member_id: str
    client_id: str
    host: str
    instance_id: str | None
    assignment: list[TopicPartition]


@dataclass
class GroupDescription:
    group_id: str
    state: str
    group_type: str  # "classic" or "consumer"
    protocol_type: str = ""
    assignor: str = ""
    members: list[MemberInfo] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return self.state != "Dead"


@dataclass
class ListedGroup:
    group_id: str
    state: str
    group_type: str
    protocol_type: str


def list_groups(client: AdminClient) -> list[ListedGroup]:
    """Every group of every broker (ListGroups to each), sorted by id."""
    client.metadata([])
    found: dict[str, ListedGroup] = {}
    nodes: list[int | None] = list(sorted(client.nodes)) or [None]
    for node_id in nodes:
        response = client.send(LIST_GROUPS, ListGroupsRequest(), node=node_id)
        check(response.error_code, context="ListGroups")
        for g in response.groups:
            found[g.group_id] = ListedGroup(g.group_id, g.group_state or "",
                                            g.group_type or "", g.protocol_type)
    return [found[k] for k in sorted(found)]


def _assignment(data: bytes) -> list[TopicPartition]:
    """The partitions of a classic consumer member's assignment ([] if not one)."""
    if len(data) < 2:
        return []
    version = min(int.from_bytes(data[:2], "big", signed=True),
                  ConsumerProtocolAssignment.MAX_VERSION)
    if version < 0:
        return []
    try:
        decoded, _ = ConsumerProtocolAssignment._decode(memoryview(data), 2, version)
    except ProtocolError:
        return []
    return sorted((tp.topic, p) for tp in decoded.assigned_partitions for p in tp.partitions)


def describe_group(client: AdminClient, group_id: str) -> GroupDescription:
    """The group's state and members; state "Dead" when it does not exist."""
    return _retrying(client, lambda: _describe_group(client, group_id))


def _describe_group(client: AdminClient, group_id: str) -> GroupDescription:
    coordinator = client.coordinator(group_id)
    if CONSUMER_GROUP_DESCRIBE in coordinator.versions:
        response = coordinator.request(
            CONSUMER_GROUP_DESCRIBE, ConsumerGroupDescribeRequest(group_ids=[group_id]))
        group = response.groups[0]
        if group.error_code == 0:
            return GroupDescription(
                group_id, group.group_state, "consumer", "consumer", group.assignor_name,
                [MemberInfo(m.member_id, m.client_id, m.client_host, m.instance_id,
                            sorted((t.topic_name, p) for t in m.assignment.topic_partitions
                                   for p in t.partitions))
                 for m in group.members])
        if group.error_code != GROUP_ID_NOT_FOUND:
            check(group.error_code, group.error_message, f"group {group_id}")
    response = coordinator.request(DESCRIBE_GROUPS, DescribeGroupsRequest(groups=[group_id]))
    described = response.groups[0]
    if described.error_code == GROUP_ID_NOT_FOUND:
        return GroupDescription(group_id, "Dead", "classic")
    check(described.error_code, described.error_message, f"group {group_id}")
    consumer = described.protocol_type == "consumer"
    return GroupDescription(
        group_id, described.group_state, "classic", described.protocol_type,
        described.protocol_data,
        [MemberInfo(m.member_id, m.client_id, m.client_host, m.group_instance_id,
                    _assignment(m.member_assignment) if consumer else [])
         for m in described.members])


#: COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR: a coordinator
#: that is still loading the group's `__consumer_offsets` partition, or moved.
_RETRIABLE = (14, 15, 16)


def _retrying(client: AdminClient, call: Callable[[], T]) -> T:
    """`call()`, again after 100 ms while it fails with a retriable coordinator error,
    until the request timeout (as Kafka's admin client retries them)."""
    deadline = time.monotonic() + client.timeout_s
    while True:
        try:
            return call()
        except KafkaError as exc:
            if exc.code not in _RETRIABLE or time.monotonic() >= deadline:
                raise
        time.sleep(0.1)


def committed_offsets(client: AdminClient, group_id: str) -> dict[TopicPartition, int]:
    """Every committed offset of the group (OffsetFetch for all topics)."""
    return _retrying(client, lambda: _committed_offsets(client, group_id))


def _committed_offsets(client: AdminClient, group_id: str) -> dict[TopicPartition, int]:
    def build(version: int) -> OffsetFetchRequest:
        if version >= 8:
            return OffsetFetchRequest(groups=[OffsetFetchRequestGroup(
                group_id=group_id, topics=None)])
        return OffsetFetchRequest(group_id=group_id, topics=None)

    response = client.send_to_group(group_id, OFFSET_FETCH, build, lo=2, hi=9)
    out: dict[TopicPartition, int] = {}
    if response.groups:
        group = response.groups[0]
        check(group.error_code, context=f"group {group_id}")
        rows = [(t.name, p) for t in group.topics for p in t.partitions]
    else:
        check(response.error_code, context=f"group {group_id}")
        rows = [(t.name, p) for t in response.topics for p in t.partitions]
    for topic, p in rows:
        check(p.error_code, context=f"{topic}-{p.partition_index}")
        if p.committed_offset >= 0:
            out[(topic, p.partition_index)] = p.committed_offset
    return dict(sorted(out.items()))


def commit_offsets(client: AdminClient, group_id: str, offsets: dict[TopicPartition, int]
                   ) -> None:
    """Commit `offsets` outside any generation (generation -1, no member), as an admin
    client does; the broker accepts that only while the group has no members."""
    _retrying(client, lambda: _commit_offsets(client, group_id, offsets))


def _commit_offsets(client: AdminClient, group_id: str, offsets: dict[TopicPartition, int]
                    ) -> None:
    by_topic: dict[str, list[OffsetCommitRequestPartition]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        by_topic.setdefault(topic, []).append(OffsetCommitRequestPartition(
            partition_index=partition, committed_offset=offset, committed_metadata=""))
    request = OffsetCommitRequest(
        group_id=group_id, generation_id_or_member_epoch=-1, member_id="",
        topics=[OffsetCommitRequestTopic(name=t, partitions=ps) for t, ps in by_topic.items()])
    response = client.send_to_group(group_id, OFFSET_COMMIT, request, lo=2, hi=9)
    for t in response.topics:
        for p in t.partitions:
            check(p.error_code, context=f"group {group_id} {t.name}-{p.partition_index}")


# -- offset resets ---------------------------------------------------------------------------


@dataclass
class ResetSpec:
    """One reset scenario (exactly one of these is set) and its scope."""

    to_earliest: bool = False
    to_latest: bool = False
    to_current: bool = False
    to_offset: int | None = None
    shift_by: int | None = None
    to_datetime: str | None = None
    by_duration: str | None = None
    from_file: dict[TopicPartition, int] | None = None
    all_topics: bool = False
    topics: list[str] = field(default_factory=list)

    def scenarios(self) -> int:
        return sum([self.to_earliest, self.to_latest, self.to_current,
                    self.to_offset is not None, self.shift_by is not None,
                    self.to_datetime is not None, self.by_duration is not None,
                    self.from_file is not None])


def parse_datetime(text: str) -> int:
    """Kafka's `Utils.getDateTime`: ``YYYY-MM-DDTHH:mm:SS[.sss][zone]`` -> epoch ms; a
    time without a zone is UTC (Kafka appends ``Z``)."""
    if "T" not in text:
        raise AdminError(f"Error parsing timestamp '{text}'. It does not contain a 'T' "
                         "according to ISO8601 format")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AdminError(f"Error parsing timestamp '{text}': expected "
                         "yyyy-MM-ddTHH:mm:SS.sss with an optional zone") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def parse_duration(text: str) -> timedelta:
    """An ISO-8601 duration as Java's `Duration.parse` reads it: ``PnDTnHnMn.nS``."""
    match = re.fullmatch(r"([-+]?)P(?:([-+]?\d+)D)?(?:T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?"
                         r"(?:([-+]?\d+(?:\.\d+)?)S)?)?", text.upper())
    if not match or text.upper() in ("P", "PT") or text.upper().endswith("T"):
        raise AdminError(f"Text cannot be parsed to a Duration: {text}")
    sign, days, hours, minutes, seconds = match.groups()
    delta = timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
                      seconds=float(seconds or 0))
    return -delta if sign == "-" else delta


def _parse_topic_arg(arg: str) -> tuple[str, list[int] | None]:
    if ":" not in arg:
        return arg, None
    parts = arg.split(":")
    if len(parts) != 2:
        raise AdminError(f"Invalid topic arg '{arg}', expected topic name and partitions")
    topic, partitions = parts
    out = []
    for p in partitions.split(","):
        try:
            out.append(int(p))
        except ValueError:
            raise AdminError(f"Invalid partition '{p}' specified in topic arg '{arg}''"
                             ) from None
    return topic, out


def _partitions_to_reset(client: AdminClient, spec: ResetSpec,
                         committed: dict[TopicPartition, int]) -> list[TopicPartition]:
    if spec.all_topics:
        return sorted(committed)
    if spec.topics:
        out: list[TopicPartition] = []
        for arg in spec.topics:
            topic, partitions = _parse_topic_arg(arg)
            if partitions is None:
                partitions = sorted(client.partition_leaders(topic))
            out += [(topic, p) for p in partitions]
        return out
    if spec.from_file is not None:
        return sorted(spec.from_file)
    raise AdminError("One of the reset scopes should be defined: --all-topics, --topic.")


def _leaders(client: AdminClient, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Leaders of `partitions`; `KafkaError` naming those that do not exist."""
    leaders: dict[TopicPartition, int] = {}
    missing = []
    for topic in sorted({t for t, _ in partitions}):
        response = client.metadata([topic])
        known = {p.partition_index: p.leader_id for t in response.topics
                 if t.name == topic and t.error_code == 0 for p in t.partitions}
        for t, p in partitions:
            if t != topic:
                continue
            if p in known:
                leaders[(t, p)] = known[p]
            else:
                missing.append(f"{t}-{p}")
    if missing:
        raise KafkaError(3, f'The partitions "{",".join(missing)}" do not exist')
    no_leader = [f"{t}-{p}" for (t, p), leader in leaders.items() if leader < 0]
    if no_leader:
        raise KafkaError(5, f'The partitions "{",".join(no_leader)}" have no leader')
    return leaders


def _clamp(client: AdminClient, leaders: dict[TopicPartition, int],
           requested: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Kafka's `checkOffsetsRange`: offsets past the log end become the log end, offsets
    before the log start become the log start, each with a warning."""
    wanted = {tp: leaders[tp] for tp in requested}
    starts = list_offsets(client, wanted, EARLIEST)
    ends = list_offsets(client, wanted, LATEST)
    out = {}
    for (topic, partition), offset in requested.items():
        end, start = ends[(topic, partition)], starts[(topic, partition)]
        if offset > end:
            log.warning("New offset (%d) is higher than latest offset for topic partition "
                        "%s-%d. Value will be set to %d", offset, topic, partition, end)
            offset = end
        elif offset < start:
            log.warning("New offset (%d) is lower than earliest offset for topic partition "
                        "%s-%d. Value will be set to %d", offset, topic, partition, start)
            offset = start
        out[(topic, partition)] = offset
    return out


def plan_reset(client: AdminClient, group_id: str, spec: ResetSpec,
               warn: list[str] | None = None, now_ms: int | None = None
               ) -> dict[TopicPartition, int]:
    """The new offset of each partition to reset, computed as Kafka's tool does (see the
    module docstring). `warn` collects the "Warn: Partition ... is empty" notes."""
    if spec.scenarios() != 1:
        raise AdminError("Option '--reset-offsets' requires exactly one of the scenarios: "
                         "--to-datetime, --by-duration, --to-earliest, --to-latest, "
                         "--shift-by, --from-file, --to-current, --to-offset")
    committed = committed_offsets(client, group_id)
    partitions = _partitions_to_reset(client, spec, committed)
    leaders = _leaders(client, partitions)
    if spec.to_offset is not None:
        return _clamp(client, leaders, dict.fromkeys(partitions, spec.to_offset))
    if spec.to_earliest:
        return list_offsets(client, leaders, EARLIEST)
    if spec.to_latest:
        return list_offsets(client, leaders, LATEST)
    if spec.shift_by is not None:
        requested = {}
        for topic, partition in partitions:
            current = committed.get((topic, partition))
            if current is None:
                raise AdminError(f"Cannot shift offset for partition {topic}-{partition} "
                                 "since there is no current committed offset")
            requested[(topic, partition)] = current + spec.shift_by
        return _clamp(client, leaders, requested)
    if spec.to_datetime is not None or spec.by_duration is not None:
        if spec.to_datetime is not None:
            timestamp = parse_datetime(spec.to_datetime)
        else:
            now = now_ms if now_ms is not None else int(time.time() * 1000)
            timestamp = now - int(parse_duration(spec.by_duration or "").total_seconds() * 1000)
        found = list_offsets(client, leaders, timestamp)
        missing = {tp: leaders[tp] for tp, offset in found.items() if offset < 0}
        for topic, partition in sorted(missing):
            if warn is not None:
                warn.append(f"Warn: Partition {partition} from topic {topic} is empty. "
                            "Falling back to latest known offset.")
        found.update(list_offsets(client, missing, LATEST) if missing else {})
        return found
    if spec.from_file is not None:
        return _clamp(client, leaders, {tp: spec.from_file[tp] for tp in partitions})
    # to_current: the committed offset, or the log end for partitions without one.
    out = {tp: committed[tp] for tp in partitions if tp in committed}
    rest = {tp: leaders[tp] for tp in partitions if tp not in committed}
    out.update(list_offsets(client, rest, LATEST) if rest else {})
    return out


def reset_offsets(client: AdminClient, group_id: str, spec: ResetSpec, *, execute: bool,
                  warn: list[str] | None = None) -> dict[TopicPartition, int]:
    """Plan (and with `execute`, commit) a reset of an inactive group."""
    group = describe_group(client, group_id)
    if group.state not in INACTIVE_STATES:
        raise AdminError(f"Assignments can only be reset if the group '{group_id}' is "
                         f"inactive, but the current state is {group.state}.")
    plan = dict(sorted(plan_reset(client, group_id, spec, warn).items()))
    if execute and plan:
        commit_offsets(client, group_id, plan)
    return plan
