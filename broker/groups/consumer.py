"""The KIP-848 consumer group protocol: a synchronous state machine with an injected clock.

How this works
--------------
A consumer group has a *group epoch*, bumped whenever what the assignment depends on changes
(a member joins, leaves or is fenced; a subscription, regex or server assignor changes; a
subscribed topic appears, disappears or gains partitions). When the group epoch is ahead of
the *target assignment epoch*, the next heartbeat recomputes the target assignment with the
group's server assignor (`broker.groups.assignors`) and the target epoch catches up.

Each member then reconciles towards its target, one heartbeat at a time (Kafka's
`CurrentAssignmentBuilder`):

- partitions it has but should not are first *revoked*: the member stays at its epoch in
  state UNREVOKED_PARTITIONS until a heartbeat's owned partitions no longer include them
  (or its rebalance timeout fences it); new partitions are not handed out meanwhile;
- partitions it should get but another member still holds (assigned or pending revocation)
  are held back: the member moves to the target epoch in UNRELEASED_PARTITIONS and receives
  them once released;
- otherwise it is STABLE at the target epoch.

A heartbeat with a smaller epoch is accepted only if it is the previous epoch and the owned
partitions are a subset of the assignment (the answer bumping it was lost); anything else is
FENCED_MEMBER_EPOCH. Members heartbeat every `heartbeat_interval_ms` and are removed after
`session_timeout_ms` without one. Epoch -1 leaves; epoch -2 is a static member leaving
temporarily: it keeps its assignment for the session timeout, and a new member with the
same instance id takes its place (and its assignment and epoch) when it rejoins with
epoch 0.

Group states (`ConsumerGroupDescribe`, `ListGroups`): Empty (no member), Assigning (group
epoch ahead of the target), Reconciling (a member not yet stable at the target epoch),
Stable. A group id belongs either to a classic group or to a consumer group: an empty
classic group is replaced by a consumer group on the first consumer heartbeat (its
committed offsets stay), a non-empty one refuses consumer heartbeats with
GROUP_ID_NOT_FOUND ("Group X is not a consumer group."). Kafka can also convert a classic
group whose members all use the consumer embedded protocol online (KIP-848 migration); we
do not.

Subscriptions by regex (`SubscribedTopicRegex`, ConsumerGroupHeartbeat v1) use Python's `re`
with `fullmatch`, which agrees with Kafka's RE2/J for the common patterns (no lookaround or
backreferences in RE2/J; Python accepts more). Internal topics are never matched.

Timers are deadlines in a heap, as in `broker.groups.coordinator`: session expiry and the
rebalance timeout of a member asked to revoke partitions. `tick(now)` fires what is due.

Committed offsets of a consumer group live in the classic coordinator's `Group` record for
the same id (its `consumer` attribute points here), so OffsetCommit/OffsetFetch/OffsetDelete
and the offsets' persistence are shared; commits from a consumer-protocol member validate
the member id and member epoch (STALE_MEMBER_EPOCH) instead of the generation.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from broker.groups.assignors import ASSIGNORS, Assignment, MemberSpec
from broker.groups.timers import TimerHeap
from protocol.errors import ErrorCode

log = logging.getLogger("odradek.groups")

LEAVE_EPOCH = -1
STATIC_LEAVE_EPOCH = -2
#: ConsumerGroupHeartbeat from v1 on carries a member id the client generated.
CLIENT_MEMBER_ID_VERSION = 1


class MemberState(Enum):
    STABLE = "stable"
    UNREVOKED_PARTITIONS = "unrevoked_partitions"
    UNRELEASED_PARTITIONS = "unreleased_partitions"


class ConsumerGroupError(Exception):
    """A heartbeat refused with a Kafka error code and message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class ConsumerGroupConfig:
    session_timeout_ms: int = 45000
    heartbeat_interval_ms: int = 5000
    max_size: int = 2**31 - 1
    assignors: tuple[str, ...] = ("uniform", "range")

    @classmethod
    def from_broker(cls, config: Any) -> ConsumerGroupConfig:
        def get(name: str, default: Any) -> Any:
            try:
                return config[name]
            except KeyError:
                return default

        assignors = get("group.consumer.assignors", "uniform,range")
        if isinstance(assignors, str):
            assignors = [a.strip() for a in assignors.split(",") if a.strip()]
        names = tuple(_assignor_name(a) for a in assignors) or ("uniform", "range")
        return cls(
            session_timeout_ms=int(get("group.consumer.session.timeout.ms", 45000)),
            heartbeat_interval_ms=int(get("group.consumer.heartbeat.interval.ms", 5000)),
            max_size=int(get("group.consumer.max.size", 2**31 - 1)),
            assignors=tuple(n for n in names if n in ASSIGNORS) or ("uniform", "range"),
        )


def _assignor_name(text: str) -> str:
    """Kafka accepts assignor class names too: map its two built-ins to their names."""
    if text.endswith("UniformAssignor"):
        return "uniform"
    if text.endswith("RangeAssignor"):
        return "range"
    return text


class TopicCatalog(Protocol):
    """What the state machine needs to know of the cluster's topics."""

    def topic(self, name: str) -> tuple[uuid.UUID, int] | None:
        """(topic id, partition count) of a topic, None if it does not exist."""
        ...

    def names(self) -> Iterable[str]:
        """Every topic name, internal ones included (regex subscriptions: Kafka matches a
        regex against every topic in the metadata image)."""
        ...

    def name_of(self, topic_id: uuid.UUID) -> str | None: ...


def new_member_id() -> str:
    """Kafka's `Uuid.randomUuid().toString()`: 22 characters of URL-safe base64."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _copy(assignment: Mapping[uuid.UUID, set[int]]) -> Assignment:
    return {t: set(ps) for t, ps in assignment.items() if ps}


def _flatten(assignment: Mapping[uuid.UUID, Iterable[int]]) -> set[tuple[uuid.UUID, int]]:
    return {(t, p) for t, ps in assignment.items() for p in ps}


@dataclass(slots=True, eq=False)
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    rebalance_timeout_ms: int = 300000
    subscribed_topic_names: list[str] = field(default_factory=list)
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = -1
    state: MemberState = MemberState.STABLE
    assigned: Assignment = field(default_factory=dict)
    pending_revocation: Assignment = field(default_factory=dict)
    #: Bumped when a timer is (re)armed; a timer firing with an older token is stale.
    session_token: int = 0
    rebalance_token: int = 0


class ConsumerGroup:
    """One KIP-848 group (Kafka's `ConsumerGroup`)."""

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.group_epoch = 0
        self.target_epoch = 0
        self.members: dict[str, ConsumerMember] = {}
        self.static_members: dict[str, str] = {}
        self.target: dict[str, Assignment] = {}
        #: (topic id, partition) -> the member holding it (assigned or pending revocation).
        self.owners: dict[tuple[uuid.UUID, int], str] = {}
        #: The subscribed topics' (id, partitions) the target assignment was computed from.
        self.metadata: dict[str, tuple[uuid.UUID, int]] = {}
        self.assignor = "uniform"
        #: The records last written for this group (key -> value), to write only changes.
        self.persisted: dict[bytes, bytes] = {}

    @property
    def state(self) -> str:
        if not self.members:
            return "Empty"
        if self.group_epoch != self.target_epoch:
            return "Assigning"
        for m in self.members.values():
            if m.member_epoch != self.target_epoch or m.state is not MemberState.STABLE:
                return "Reconciling"
        return "Stable"

    def subscribed_names(self, catalog: TopicCatalog) -> set[str]:
        names: set[str] = set()
        for member in self.members.values():
            names.update(member.subscribed_topic_names)
            if member.subscribed_topic_regex:
                names.update(_match(member.subscribed_topic_regex, catalog.names()))
        return names


def _match(regex: str, names: Iterable[str]) -> list[str]:
    try:
        pattern = re.compile(regex)
    except re.error:
        return []
    return [n for n in names if pattern.fullmatch(n)]


@dataclass(slots=True)
class HeartbeatResult:
    error: ErrorCode = ErrorCode.NONE
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    #: Topic id -> partitions; None when the assignment is not (re)sent.
    assignment: Assignment | None = None


class ConsumerStore(Protocol):
    def store_consumer_group(self, group: ConsumerGroup) -> None: ...

    def delete_consumer_group(self, group: ConsumerGroup) -> None: ...


class _NoStore:
    def store_consumer_group(self, group: ConsumerGroup) -> None:
        pass

    def delete_consumer_group(self, group: ConsumerGroup) -> None:
        pass


class ConsumerGroupCoordinator(TimerHeap):
    def __init__(self, config: ConsumerGroupConfig, clock: Callable[[], int],
                 catalog: TopicCatalog, store: ConsumerStore | None = None,
                 classic: Any = None) -> None:
        self.config = config
        self.clock = clock
        self.catalog = catalog
        self.store: ConsumerStore = store if store is not None else _NoStore()
        #: The classic `GroupCoordinator` sharing the group id space (None in unit tests).
        self.classic = classic
        self.groups: dict[str, ConsumerGroup] = {}
        TimerHeap.__init__(self)

    # -- timers ------------------------------------------------------------------------------

    def tick(self, now: int | None = None) -> None:
        now = self.clock() if now is None else now
        for _, kind, group_id, member_id, token in self._due(now):
            group = self.groups.get(group_id)
            member = group.members.get(member_id) if group is not None else None
            if group is None or member is None:
                continue
            if kind == "session" and token == member.session_token:
                log.info("consumer group member session expired group=%s member=%s",
                         group_id, member_id)
                self._remove_member(group, member)
            elif kind == "rebalance" and token == member.rebalance_token \
                    and member.state is MemberState.UNREVOKED_PARTITIONS:
                log.info("consumer group member failed to revoke in time group=%s member=%s",
                         group_id, member_id)
                self._remove_member(group, member)

    def _touch(self, group: ConsumerGroup, member: ConsumerMember, now: int) -> None:
        member.session_token += 1
        self._schedule(now + self.config.session_timeout_ms, "session", group.group_id,
                       member.member_id, member.session_token)

    # -- group lookup ----------------------------------------------------------------------

    def _classic_group(self, group_id: str) -> Any:
        if self.classic is None:
            return None
        return self.classic.groups.get(group_id)

    def is_consumer_group(self, group_id: str) -> bool:
        return group_id in self.groups

    def _group_for_heartbeat(self, group_id: str, create: bool) -> ConsumerGroup:
        group = self.groups.get(group_id)
        if group is not None:
            return group
        classic = self._classic_group(group_id)
        if classic is not None and classic.members:
            raise ConsumerGroupError(ErrorCode.GROUP_ID_NOT_FOUND,
                                     f"Group {group_id} is not a consumer group.")
        if not create:
            raise ConsumerGroupError(ErrorCode.GROUP_ID_NOT_FOUND,
                                     f"Consumer group {group_id} not found.")
        group = ConsumerGroup(group_id)
        group.assignor = self.config.assignors[0]
        self.groups[group_id] = group
        if self.classic is not None:
            self.classic.adopt_consumer_group(group_id, group)
        return group

    # -- ConsumerGroupHeartbeat ------------------------------------------------------------

    def heartbeat(self, *, group_id: str, member_id: str, member_epoch: int,
                  instance_id: str | None = None, rack_id: str | None = None,
                  rebalance_timeout_ms: int = -1,
                  subscribed_topic_names: list[str] | None = None,
                  subscribed_topic_regex: str | None = None,
                  server_assignor: str | None = None,
                  owned: list[tuple[uuid.UUID, list[int]]] | None = None,
                  client_id: str = "", client_host: str = "",
                  api_version: int = 0) -> HeartbeatResult:
        try:
            self._validate_request(group_id, member_id, member_epoch, instance_id, rack_id,
                                   rebalance_timeout_ms, subscribed_topic_names,
                                   subscribed_topic_regex, server_assignor, owned,
                                   api_version)
            if member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
                return self._leave(group_id, member_id, member_epoch, instance_id)
            if member_epoch == 0 and not member_id:
                member_id = new_member_id()
            return self._heartbeat(
                group_id, member_id, member_epoch, instance_id, rack_id, rebalance_timeout_ms,
                subscribed_topic_names, subscribed_topic_regex, server_assignor,
                None if owned is None else {t: set(ps) for t, ps in owned},
                client_id, client_host)
        except ConsumerGroupError as exc:
            return HeartbeatResult(error=exc.code, message=exc.message)

    def _validate_request(self, group_id: str, member_id: str, member_epoch: int,
                          instance_id: str | None, rack_id: str | None,
                          rebalance_timeout_ms: int, names: list[str] | None,
                          regex: str | None, assignor: str | None,
                          owned: list[tuple[uuid.UUID, list[int]]] | None,
                          api_version: int) -> None:
        def invalid(message: str) -> ConsumerGroupError:
            return ConsumerGroupError(ErrorCode.INVALID_REQUEST, message)

        if not group_id:
            raise invalid("GroupId can't be empty.")
        if instance_id is not None and not instance_id:
            raise invalid("InstanceId can't be empty.")
        if rack_id is not None and not rack_id:
            raise invalid("RackId can't be empty.")
        if api_version >= CLIENT_MEMBER_ID_VERSION and not member_id:
            raise invalid("MemberId can't be empty.")
        if member_epoch > 0 or member_epoch == LEAVE_EPOCH:
            if not member_id:
                raise invalid("MemberId can't be empty.")
        elif member_epoch == 0:
            if rebalance_timeout_ms == -1:
                raise invalid("RebalanceTimeoutMs must be provided in first request.")
            if owned is None or owned:
                raise invalid("TopicPartitions must be empty when (re-)joining.")
            if names is None and regex is None:
                raise invalid("Either SubscribedTopicNames or SubscribedTopicRegex must be "
                              "non-null when (re-)joining.")
        elif member_epoch == STATIC_LEAVE_EPOCH:
            if not member_id:
                raise invalid("MemberId can't be empty.")
            if instance_id is None:
                raise invalid("InstanceId can't be null.")
        else:
            raise invalid("MemberEpoch is invalid.")
        if regex is not None:
            try:
                re.compile(regex)
            except re.error as exc:
                raise ConsumerGroupError(ErrorCode.INVALID_REGULAR_EXPRESSION,
                                         f"SubscribedTopicRegex `{regex}` is not a valid "
                                         f"regular expression: {exc}.") from exc
        if assignor is not None and assignor not in self.config.assignors:
            raise ConsumerGroupError(
                ErrorCode.UNSUPPORTED_ASSIGNOR,
                f"ServerAssignor {assignor} is not supported. Supported assignors: "
                f"{', '.join(self.config.assignors)}.")

    def _member_for(self, group: ConsumerGroup, member_id: str, member_epoch: int,
                    instance_id: str | None, owned: Assignment | None) -> ConsumerMember:
        if instance_id is None:
            member = group.members.get(member_id)
            if member is None:
                if member_epoch != 0:
                    raise ConsumerGroupError(
                        ErrorCode.UNKNOWN_MEMBER_ID,
                        f"Member {member_id} is not a member of group {group.group_id}.")
                return self._new_member(group, member_id, None)
            if member_epoch != 0:
                self._check_epoch(member, member_epoch, owned)
            return member
        static_id = group.static_members.get(instance_id)
        existing = group.members.get(static_id) if static_id is not None else None
        if member_epoch == 0:
            if existing is None:
                if member_id in group.members:
                    raise ConsumerGroupError(
                        ErrorCode.UNKNOWN_MEMBER_ID,
                        f"Member {member_id} is not a member of group {group.group_id}.")
                return self._new_member(group, member_id, instance_id)
            if existing.member_id == member_id:
                return existing
            if existing.member_epoch != STATIC_LEAVE_EPOCH:
                raise ConsumerGroupError(
                    ErrorCode.UNRELEASED_INSTANCE_ID,
                    f"Static member {member_id} with instance id {instance_id} cannot join "
                    f"the group because the instance id is owned by {existing.member_id} "
                    f"member.")
            return self._replace_static(group, existing, member_id)
        if existing is None:
            raise ConsumerGroupError(ErrorCode.UNKNOWN_MEMBER_ID,
                                     f"Instance id {instance_id} is unknown.")
        if existing.member_id != member_id:
            raise _fenced_instance(member_id, instance_id, existing.member_id)
        self._check_epoch(existing, member_epoch, owned)
        return existing

    @staticmethod
    def _check_epoch(member: ConsumerMember, received: int, owned: Assignment | None) -> None:
        if received > member.member_epoch:
            raise ConsumerGroupError(
                ErrorCode.FENCED_MEMBER_EPOCH,
                f"The consumer group member has a greater member epoch ({received}) than the "
                f"one known by the group coordinator ({member.member_epoch}). The member must "
                f"abandon all its partitions and rejoin.")
        if received < member.member_epoch:
            subset = owned is None or _flatten(owned) <= _flatten(member.assigned)
            if received != member.previous_member_epoch or not subset:
                raise ConsumerGroupError(
                    ErrorCode.FENCED_MEMBER_EPOCH,
                    f"The consumer group member has a smaller member epoch ({received}) than "
                    f"the one known by the group coordinator ({member.member_epoch}). The "
                    f"member must abandon all its partitions and rejoin.")

    def _new_member(self, group: ConsumerGroup, member_id: str,
                    instance_id: str | None) -> ConsumerMember:
        if len(group.members) >= self.config.max_size:
            raise ConsumerGroupError(
                ErrorCode.GROUP_MAX_SIZE_REACHED,
                f"The consumer group has reached its maximum capacity of "
                f"{self.config.max_size} members.")
        return ConsumerMember(member_id=member_id, instance_id=instance_id)

    def _replace_static(self, group: ConsumerGroup, old: ConsumerMember,
                        member_id: str) -> ConsumerMember:
        """A static member back under a new member id takes over its predecessor's place."""
        new = ConsumerMember(
            member_id=member_id, instance_id=old.instance_id, rack_id=old.rack_id,
            rebalance_timeout_ms=old.rebalance_timeout_ms,
            subscribed_topic_names=list(old.subscribed_topic_names),
            subscribed_topic_regex=old.subscribed_topic_regex,
            server_assignor=old.server_assignor,
            member_epoch=0, previous_member_epoch=old.previous_member_epoch,
            state=old.state, assigned=_copy(old.assigned),
            pending_revocation=_copy(old.pending_revocation))
        del group.members[old.member_id]
        group.members[member_id] = new
        assert old.instance_id is not None
        group.static_members[old.instance_id] = member_id
        if old.member_id in group.target:
            group.target[member_id] = group.target.pop(old.member_id)
        for tp, owner in list(group.owners.items()):
            if owner == old.member_id:
                group.owners[tp] = member_id
        log.info("static member replaced group=%s instance=%s old=%s new=%s",
                 group.group_id, old.instance_id, old.member_id, member_id)
        return new

    def _heartbeat(self, group_id: str, member_id: str, member_epoch: int,
                   instance_id: str | None, rack_id: str | None, rebalance_timeout_ms: int,
                   names: list[str] | None, regex: str | None, assignor: str | None,
                   owned: Assignment | None, client_id: str, client_host: str
                   ) -> HeartbeatResult:
        now = self.clock()
        group = self._group_for_heartbeat(group_id, create=member_epoch == 0)
        try:
            member = self._member_for(group, member_id, member_epoch, instance_id, owned)
        except ConsumerGroupError:
            if not group.members and group_id in self.groups and member_epoch == 0:
                self._drop_if_empty(group)
            raise
        joining = member.member_id not in group.members
        before = (list(member.subscribed_topic_names), member.subscribed_topic_regex,
                  member.server_assignor)
        member.client_id, member.client_host = client_id, client_host
        if rack_id is not None:
            member.rack_id = rack_id
        if rebalance_timeout_ms != -1:
            member.rebalance_timeout_ms = rebalance_timeout_ms
        if names is not None:
            member.subscribed_topic_names = sorted(set(names))
        if regex is not None:
            member.subscribed_topic_regex = regex or None
        if assignor is not None:
            member.server_assignor = assignor
        if joining:
            group.members[member.member_id] = member
            if instance_id is not None:
                group.static_members[instance_id] = member.member_id
            log.info("consumer group member joined group=%s member=%s instance=%s",
                     group_id, member.member_id, instance_id)
        changed = joining or before != (member.subscribed_topic_names,
                                        member.subscribed_topic_regex, member.server_assignor)
        metadata = self._metadata(group)
        if changed or metadata != group.metadata:
            group.metadata = metadata
            group.group_epoch += 1
            group.assignor = self._choose_assignor(group)
        if group.group_epoch > group.target_epoch:
            self._compute_target(group)
        was_assigned = _copy(member.assigned)
        self._reconcile(group, member, owned, now)
        self._touch(group, member, now)
        self._persist(group)
        send = (member_epoch == 0 or _copy(member.assigned) != was_assigned
                or (owned is not None and _copy(owned) != _copy(member.assigned)))
        return HeartbeatResult(member_id=member.member_id, member_epoch=member.member_epoch,
                               heartbeat_interval_ms=self.config.heartbeat_interval_ms,
                               assignment=_copy(member.assigned) if send else None)

    def _leave(self, group_id: str, member_id: str, member_epoch: int,
               instance_id: str | None) -> HeartbeatResult:
        group = self.groups.get(group_id)
        if group is None:
            raise ConsumerGroupError(ErrorCode.GROUP_ID_NOT_FOUND,
                                     f"Group {group_id} not found.")
        if instance_id is None:
            member = group.members.get(member_id)
            if member is None:
                raise ConsumerGroupError(
                    ErrorCode.UNKNOWN_MEMBER_ID,
                    f"Member {member_id} is not a member of group {group_id}.")
        else:
            static_id = group.static_members.get(instance_id)
            member = group.members.get(static_id) if static_id is not None else None
            if member is None:
                raise ConsumerGroupError(ErrorCode.UNKNOWN_MEMBER_ID,
                                         f"Instance id {instance_id} is unknown.")
            if member.member_id != member_id:
                raise _fenced_instance(member_id, instance_id, member.member_id)
        if member_epoch == STATIC_LEAVE_EPOCH:
            log.info("static member leaving temporarily group=%s member=%s instance=%s",
                     group_id, member_id, instance_id)
            if member.member_epoch != STATIC_LEAVE_EPOCH:
                member.previous_member_epoch = member.member_epoch
            member.member_epoch = STATIC_LEAVE_EPOCH
            self._touch(group, member, self.clock())
            self._persist(group)
        else:
            log.info("consumer group member left group=%s member=%s", group_id, member_id)
            self._remove_member(group, member)
        return HeartbeatResult(member_id=member_id, member_epoch=member_epoch)

    # -- assignment ---------------------------------------------------------------------------

    def _metadata(self, group: ConsumerGroup) -> dict[str, tuple[uuid.UUID, int]]:
        metadata: dict[str, tuple[uuid.UUID, int]] = {}
        for name in group.subscribed_names(self.catalog):
            found = self.catalog.topic(name)
            if found is not None:
                metadata[name] = found
        return metadata

    def _choose_assignor(self, group: ConsumerGroup) -> str:
        """The server assignor most members ask for; the first configured one by default."""
        votes: dict[str, int] = {}
        for member in group.members.values():
            if member.server_assignor is not None:
                votes[member.server_assignor] = votes.get(member.server_assignor, 0) + 1
        if not votes:
            return self.config.assignors[0]
        return max(sorted(votes), key=lambda name: votes[name])

    def _member_topics(self, group: ConsumerGroup, member: ConsumerMember) -> frozenset[uuid.UUID]:
        names = set(member.subscribed_topic_names)
        if member.subscribed_topic_regex:
            names.update(_match(member.subscribed_topic_regex, group.metadata))
        return frozenset(group.metadata[n][0] for n in names if n in group.metadata)

    def _compute_target(self, group: ConsumerGroup) -> None:
        specs = {m.member_id: MemberSpec(self._member_topics(group, m), m.instance_id, m.rack_id)
                 for m in group.members.values()}
        topics = dict(group.metadata.values())
        assign = ASSIGNORS[group.assignor]
        target = assign(specs, topics, group.target)
        group.target = {m: _copy(a) for m, a in target.items()}
        group.target_epoch = group.group_epoch
        log.info("consumer group target assignment group=%s epoch=%d assignor=%s members=%d",
                 group.group_id, group.target_epoch, group.assignor, len(specs))

    def _set_partitions(self, group: ConsumerGroup, member: ConsumerMember,
                        assigned: Assignment, pending: Assignment) -> None:
        for tp in _flatten(member.assigned) | _flatten(member.pending_revocation):
            if group.owners.get(tp) == member.member_id:
                del group.owners[tp]
        member.assigned, member.pending_revocation = _copy(assigned), _copy(pending)
        for tp in _flatten(member.assigned) | _flatten(member.pending_revocation):
            group.owners[tp] = member.member_id

    def _reconcile(self, group: ConsumerGroup, member: ConsumerMember,
                   owned: Assignment | None, now: int) -> None:
        if member.state is MemberState.UNREVOKED_PARTITIONS:
            if _owns_any(owned, member.pending_revocation):
                return
            self._set_partitions(group, member, member.assigned, {})
            member.state = MemberState.STABLE
            self._next_assignment(group, member, owned, now)
        elif member.state is MemberState.UNRELEASED_PARTITIONS \
                or member.member_epoch != group.target_epoch:
            self._next_assignment(group, member, owned, now)

    def _next_assignment(self, group: ConsumerGroup, member: ConsumerMember,
                         owned: Assignment | None, now: int) -> None:
        target = group.target.get(member.member_id, {})
        keep: Assignment = {}
        revoke: Assignment = {}
        assign: Assignment = {}
        unreleased = False
        for topic in set(target) | set(member.assigned):
            current = member.assigned.get(topic, set())
            wanted = target.get(topic, set())
            keep[topic] = current & wanted
            revoke[topic] = current - wanted
            for partition in wanted - current:
                owner = group.owners.get((topic, partition))
                if owner is None or owner == member.member_id:
                    assign.setdefault(topic, set()).add(partition)
                else:
                    unreleased = True
        revoke = _copy(revoke)
        if revoke and _owns_any(owned, revoke):
            self._set_partitions(group, member, keep, revoke)
            member.state = MemberState.UNREVOKED_PARTITIONS
            member.rebalance_token += 1
            self._schedule(now + member.rebalance_timeout_ms, "rebalance", group.group_id,
                           member.member_id, member.rebalance_token)
            return
        for topic, partitions in assign.items():
            keep.setdefault(topic, set()).update(partitions)
        self._set_partitions(group, member, keep, {})
        member.state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
        if member.member_epoch != group.target_epoch:
            member.previous_member_epoch = member.member_epoch
            member.member_epoch = group.target_epoch

    def _remove_member(self, group: ConsumerGroup, member: ConsumerMember) -> None:
        self._set_partitions(group, member, {}, {})
        group.members.pop(member.member_id, None)
        if member.instance_id is not None \
                and group.static_members.get(member.instance_id) == member.member_id:
            del group.static_members[member.instance_id]
        group.target.pop(member.member_id, None)
        group.group_epoch += 1
        self._persist(group)

    def _drop_if_empty(self, group: ConsumerGroup) -> None:
        if not group.members and group.group_epoch == 0:
            self.groups.pop(group.group_id, None)
            if self.classic is not None:
                self.classic.release_consumer_group(group.group_id)

    def _persist(self, group: ConsumerGroup) -> None:
        try:
            self.store.store_consumer_group(group)
        except Exception as exc:  # the state is authoritative in memory; log the failure
            log.warning("consumer group write failed group=%s error=%s", group.group_id, exc)

    # -- loading ------------------------------------------------------------------------------

    def load_group(self, group_id: str, found: Mapping[tuple[int, str | None], tuple[bytes, Any]]
                   ) -> ConsumerGroup:
        """Rebuild a group from its records (`broker.groups.records`): record type 3 the
        group epoch, 5 member metadata, 6 the target epoch, 7 a member's target, 8 a member's
        current assignment. Members get a fresh session timeout to heartbeat again."""
        now = self.clock()
        group = self.groups.get(group_id) or ConsumerGroup(group_id)
        states = {0: MemberState.STABLE, 1: MemberState.UNRELEASED_PARTITIONS,
                  2: MemberState.UNREVOKED_PARTITIONS}
        for (kind, member_id), (_, value) in found.items():
            if kind == 3:
                group.group_epoch = value.epoch
            elif kind == 6:
                group.target_epoch = value.assignment_epoch
            elif kind == 7 and member_id is not None:
                group.target[member_id] = {tp.topic_id: set(tp.partitions)
                                           for tp in value.topic_partitions if tp.partitions}
            elif kind == 5 and member_id is not None:
                member = group.members.setdefault(member_id, ConsumerMember(member_id))
                member.instance_id, member.rack_id = value.instance_id, value.rack_id
                member.client_id, member.client_host = value.client_id, value.client_host
                member.subscribed_topic_names = list(value.subscribed_topic_names)
                member.subscribed_topic_regex = value.subscribed_topic_regex
                member.rebalance_timeout_ms = value.rebalance_timeout_ms
                member.server_assignor = value.server_assignor
        for (kind, member_id), (_, value) in found.items():
            if kind == 8 and member_id in group.members:
                member = group.members[member_id]
                member.member_epoch = value.member_epoch
                member.previous_member_epoch = value.previous_member_epoch
                member.state = states.get(value.state, MemberState.STABLE)
                assigned = {tp.topic_id: set(tp.partitions) for tp in value.assigned_partitions}
                pending = {tp.topic_id: set(tp.partitions)
                           for tp in value.partitions_pending_revocation}
                self._set_partitions(group, member, assigned, pending)
        group.target = {m: a for m, a in group.target.items() if m in group.members}
        for member in group.members.values():
            if member.instance_id is not None:
                group.static_members[member.instance_id] = member.member_id
            self._touch(group, member, now)
            if member.state is MemberState.UNREVOKED_PARTITIONS:
                member.rebalance_token += 1
                self._schedule(now + member.rebalance_timeout_ms, "rebalance", group_id,
                               member.member_id, member.rebalance_token)
        group.metadata = self._metadata(group)
        group.assignor = self._choose_assignor(group)
        self.groups[group_id] = group
        if self.classic is not None:
            self.classic.adopt_consumer_group(group_id, group)
        return group

    # -- queries -----------------------------------------------------------------------------

    def delete_group(self, group_id: str) -> ErrorCode:
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.GROUP_ID_NOT_FOUND
        if group.members:
            return ErrorCode.NON_EMPTY_GROUP
        self.store.delete_consumer_group(group)
        del self.groups[group_id]
        return ErrorCode.NONE

    def validate_commit(self, group_id: str, member_id: str, member_epoch: int,
                        api_version: int) -> ErrorCode:
        """OffsetCommit from a member of a consumer group (Kafka's
        `ConsumerGroup.validateOffsetCommit`)."""
        group = self.groups[group_id]
        if member_epoch < 0 and not group.members:
            return ErrorCode.NONE
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if api_version < 9:
            return ErrorCode.UNSUPPORTED_VERSION
        if member_epoch != member.member_epoch:
            return ErrorCode.STALE_MEMBER_EPOCH
        return ErrorCode.NONE

    def validate_fetch(self, group_id: str, member_id: str | None,
                       member_epoch: int) -> ErrorCode:
        """OffsetFetch v9+ from a member (Kafka's `ConsumerGroup.validateOffsetFetch`)."""
        group = self.groups.get(group_id)
        if group is None or (member_epoch < 0 and member_id is None):
            return ErrorCode.NONE
        member = group.members.get(member_id or "")
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if member_epoch != member.member_epoch:
            return ErrorCode.STALE_MEMBER_EPOCH
        return ErrorCode.NONE

    def list_groups(self, states: Iterable[str] = (), types: Iterable[str] = ()
                    ) -> list[tuple[str, str, str, str]]:
        """(group_id, protocol_type, state, type) of the consumer groups matching the
        filters (case-insensitive; empty filters match everything)."""
        wanted_states = {s.lower() for s in states}
        wanted_types = {t.lower() for t in types}
        if wanted_types and "consumer" not in wanted_types:
            return []
        return [(g.group_id, "consumer", g.state, "consumer") for g in self.groups.values()
                if not wanted_states or g.state.lower() in wanted_states]

    def subscribed_topics(self, group_id: str) -> set[str]:
        group = self.groups.get(group_id)
        return set() if group is None else group.subscribed_names(self.catalog)


def _fenced_instance(member_id: str, instance_id: str, owner: str) -> ConsumerGroupError:
    return ConsumerGroupError(
        ErrorCode.FENCED_INSTANCE_ID,
        f"Static member {member_id} with instance id {instance_id} was fenced by member "
        f"{owner}.")


def _owns_any(owned: Assignment | None, partitions: Assignment) -> bool:
    """Whether the member still owns any of `partitions` (unknown owned set: assume it does)."""
    if owned is None:
        return True
    return bool(_flatten(owned) & _flatten(partitions))
