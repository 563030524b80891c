"""The classic group coordinator: a synchronous state machine with an injected clock.

How this works
--------------
Each group moves through Kafka's five classic states::

    Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
    CompletingRebalance --leader's SyncGroup--> Stable --join/leave/expiry--> PreparingRebalance
    PreparingRebalance --nobody rejoined--> Empty            (deleted) --> Dead

Every request is one synchronous method call. JoinGroup and SyncGroup may have to wait for
other members: they take a `callback` that the state machine calls, exactly once, with the
result, either at once or from a later call (another member's join, the leader's sync, a
timer). The async layer (`broker.groups.service`) turns the callback into a `trio.Event`, so
nothing here sleeps, reads a clock of its own or touches trio.

Timers are deadlines in a heap: member session expiry (`session.timeout.ms`; new members
awaiting their first join get Kafka's 5-minute new-member join timeout), pending members
of KIP-394 (MEMBER_ID_REQUIRED), the rebalance timeout of the join phase (with Kafka's
initial rebalance delay for a group leaving Empty, extended while new members keep
arriving), the sync timeout after a rebalance (members that never sync are removed), and the
periodic offset expiry. `tick(now)` fires what is due; `next_deadline()` says when to call
it next; `wakeup` (if set) is called when an earlier deadline appears.

Persistence goes through a `GroupStore` (`broker.groups.records.LogGroupStore` writes
Kafka's records to `__consumer_offsets`). A write either succeeds before the response or
raises `StoreError` with the Kafka error code to answer; offset commits are acknowledged only
after their records are appended.

Rules follow Kafka's classic group coordinator (`GroupMetadataManager`, `ClassicGroup` and
`OffsetMetadataManager` in the group-coordinator module of Kafka 4.x, and the older
`GroupCoordinator.scala`), including static membership (KIP-345), the member-id round trip
(KIP-394), skip-assignment for a rejoining static leader (KIP-814) and the offset expiry
rules of KIP-211.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from broker.groups.timers import TimerHeap
from protocol.errors import ErrorCode

log = logging.getLogger("odradek.groups")

#: Kafka's `classicGroupNewMemberJoinTimeoutMs`: how long a new member may wait in a join.
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000
CONSUMER_PROTOCOL_TYPE = "consumer"


class GroupState(Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


class StoreError(Exception):
    """A failed write to the group log, with the Kafka error code to answer."""

    def __init__(self, code: ErrorCode, message: str = "") -> None:
        super().__init__(message or code.name)
        self.code = code


@dataclass(slots=True)
class OffsetAndMetadata:
    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp: int = 0
    expire_timestamp: int | None = None


class GroupStore(Protocol):
    """Where the coordinator persists groups and offsets (Kafka's `__consumer_offsets`)."""

    def store_group(self, group: Group) -> None: ...

    def store_offsets(self, group_id: str,
                      offsets: Mapping[tuple[str, int], OffsetAndMetadata]) -> None: ...

    def delete_offsets(self, group_id: str, partitions: Iterable[tuple[str, int]]) -> None: ...

    def delete_group(self, group_id: str, partitions: Iterable[tuple[str, int]]) -> None: ...

    def store_txn_offsets(self, group_id: str, producer_id: int, producer_epoch: int,
                          offsets: Mapping[tuple[str, int], OffsetAndMetadata]) -> None: ...


@dataclass(slots=True)
class PendingOffset:
    """A transactional offset commit awaiting its transaction's marker. `superseded`: a
    regular commit of the same partition came after it, so a COMMIT marker must not
    materialise it (Kafka keeps the commit with the higher record offset)."""

    offset: OffsetAndMetadata
    superseded: bool = False


class MemoryStore:
    """A `GroupStore` that keeps nothing (unit tests); `fail` makes the next write fail."""

    def __init__(self) -> None:
        self.fail: ErrorCode | None = None
        self.writes: list[tuple[str, str]] = []

    def _write(self, kind: str, group_id: str) -> None:
        if self.fail is not None:
            code, self.fail = self.fail, None
            raise StoreError(code)
        self.writes.append((kind, group_id))

    def store_group(self, group: Group) -> None:
        self._write("group", group.group_id)

    def store_offsets(self, group_id: str,
                      offsets: Mapping[tuple[str, int], OffsetAndMetadata]) -> None:
        self._write("offsets", group_id)

    def delete_offsets(self, group_id: str, partitions: Iterable[tuple[str, int]]) -> None:
        self._write("delete_offsets", group_id)

    def delete_group(self, group_id: str, partitions: Iterable[tuple[str, int]]) -> None:
        self._write("delete_group", group_id)

    def store_txn_offsets(self, group_id: str, producer_id: int, producer_epoch: int,
                          offsets: Mapping[tuple[str, int], OffsetAndMetadata]) -> None:
        self._write("txn_offsets", group_id)


class _Configs(Protocol):
    def __getitem__(self, name: str, /) -> Any: ...


@dataclass(slots=True)
class GroupConfig:
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1800000
    initial_rebalance_delay_ms: int = 3000
    max_size: int = 2**31 - 1
    offset_metadata_max_bytes: int = 4096
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000
    offsets_retention_check_interval_ms: int = 600000

    @classmethod
    def from_broker(cls, config: _Configs) -> GroupConfig:
        get = config.__getitem__
        return cls(
            min_session_timeout_ms=get("group.min.session.timeout.ms"),
            max_session_timeout_ms=get("group.max.session.timeout.ms"),
            initial_rebalance_delay_ms=get("group.initial.rebalance.delay.ms"),
            max_size=get("group.max.size"),
            offset_metadata_max_bytes=get("offset.metadata.max.bytes"),
            offsets_retention_ms=get("offsets.retention.minutes") * 60 * 1000,
            offsets_retention_check_interval_ms=get("offsets.retention.check.interval.ms"),
        )


# -- results handed to callbacks / returned --------------------------------------------------


@dataclass(slots=True)
class JoinResult:
    error: ErrorCode
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    skip_assignment: bool = False
    #: (member_id, group_instance_id, metadata): only the leader gets them.
    members: list[tuple[str, str | None, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class SyncResult:
    error: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


JoinCallback = Callable[[JoinResult], None]
SyncCallback = Callable[[SyncResult], None]


@dataclass(slots=True)
class MemberSummary:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(slots=True)
class GroupSummary:
    group_id: str
    state: str
    protocol_type: str
    protocol_data: str
    members: list[MemberSummary]


# -- the group ---------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    join_callback: JoinCallback | None = None
    sync_callback: SyncCallback | None = None
    is_new: bool = False
    #: When the member must next be heard from (session or new-member join timeout).
    deadline: int = 0

    @property
    def awaiting_join(self) -> bool:
        return self.join_callback is not None

    def metadata(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        return self.protocols == protocols

    def vote(self, candidates: set[str]) -> str:
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError("member does not support any candidate protocol")


class Group:
    """One classic group's state (Kafka's `ClassicGroup`) and its committed offsets."""

    def __init__(self, group_id: str, now: int) -> None:
        self.group_id = group_id
        self.state = GroupState.EMPTY
        self.previous_state = GroupState.EMPTY
        self.state_timestamp = now
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.static_members: dict[str, str] = {}
        #: KIP-394 pending member ids and when they expire.
        self.pending_members: dict[str, int] = {}
        self.pending_sync: set[str] = set()
        self.supported_protocols: Counter[str] = Counter()
        self.new_member_added = False
        #: Bumped at each new join phase / generation; timers carry the value they were set for.
        self.join_epoch = 0
        self.offsets: dict[tuple[str, int], OffsetAndMetadata] = {}
        #: Transactional offset commits awaiting their marker: producer id -> partition ->
        #: pending offset (Kafka's `pendingTransactionalOffsets`).
        self.pending_txn_offsets: dict[int, dict[tuple[str, int], PendingOffset]] = {}
        #: The KIP-848 `ConsumerGroup` owning this id, if any: this record then only holds
        #: the committed offsets (see `broker.groups.consumer`).
        self.consumer: Any = None

    # queries
    def is_in(self, *states: GroupState) -> bool:
        return self.state in states

    @property
    def is_empty_state(self) -> bool:
        return self.state is GroupState.EMPTY

    def has_member(self, member_id: str) -> bool:
        return member_id in self.members

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    @property
    def num_awaiting_join(self) -> int:
        return sum(1 for m in self.members.values() if m.awaiting_join)

    def has_all_members_joined(self) -> bool:
        return (not self.pending_members
                and all(m.awaiting_join for m in self.members.values()))

    @property
    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def transition(self, state: GroupState, now: int) -> None:
        self.previous_state = self.state
        self.state = state
        self.state_timestamp = now

    def supports_protocols(self, protocol_type: str, protocols: list[tuple[str, bytes]]) -> bool:
        if self.is_empty_state:
            return bool(protocol_type) and bool(protocols)
        count = len(self.members)
        return (protocol_type == self.protocol_type
                and any(self.supported_protocols[name] == count for name, _ in protocols))

    def add(self, member: Member) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        self.members[member.member_id] = member
        for name, _ in member.protocols:
            self.supported_protocols[name] += 1
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if self.leader_id is None:
            self.leader_id = member.member_id

    def remove(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        for name, _ in member.protocols:
            self.supported_protocols[name] -= 1
        if (member.group_instance_id is not None
                and self.static_members.get(member.group_instance_id) == member_id):
            del self.static_members[member.group_instance_id]
        self.pending_sync.discard(member_id)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        return member

    def update_protocols(self, member: Member, protocols: list[tuple[str, bytes]]) -> None:
        for name, _ in member.protocols:
            self.supported_protocols[name] -= 1
        member.protocols = list(protocols)
        for name, _ in member.protocols:
            self.supported_protocols[name] += 1

    def select_protocol(self) -> str:
        """Kafka's vote: among protocols every member supports, the one most members list
        first (ties go to the earliest in the leader's preference order)."""
        count = len(self.members)
        candidates = {name for name, n in self.supported_protocols.items() if n == count}
        votes: Counter[str] = Counter(m.vote(candidates) for m in self.members.values())
        leader = self.members.get(self.leader_id or "") or next(iter(self.members.values()))
        order = {name: i for i, (name, _) in enumerate(leader.protocols)}
        return max(votes, key=lambda name: (votes[name], -order.get(name, len(order))))

    def subscribed_topics(self) -> set[str] | None:
        """Topics the members subscribe to, for a consumer group; None when unknown."""
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE or self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            parsed = parse_subscription_topics(member.metadata(self.protocol_name))
            if parsed is None:
                return None
            topics.update(parsed)
        return topics

    def is_subscribed_to(self, topic: str) -> bool:
        topics = self.subscribed_topics()
        return topics is not None and topic in topics


def parse_subscription_topics(metadata: bytes) -> list[str] | None:
    """The topics of a `ConsumerProtocolSubscription` (any version), or None if malformed."""
    try:
        pos = 2  # int16 version
        count = int.from_bytes(metadata[pos:pos + 4], "big", signed=True)
        pos += 4
        if count < 0 or len(metadata) < pos:
            return None
        topics = []
        for _ in range(count):
            length = int.from_bytes(metadata[pos:pos + 2], "big", signed=True)
            pos += 2
            if length < 0 or pos + length > len(metadata):
                return None
            topics.append(metadata[pos:pos + length].decode("utf-8"))
            pos += length
        return topics
    except (UnicodeDecodeError, ValueError):
        return None


# -- the coordinator -----------------------------------------------------------------------------


class GroupCoordinator(TimerHeap):
    def __init__(self, config: GroupConfig, clock: Callable[[], int],
                 store: GroupStore | None = None) -> None:
        self.config = config
        self.clock = clock
        self.store: GroupStore = store if store is not None else MemoryStore()
        self.groups: dict[str, Group] = {}
        TimerHeap.__init__(self)
        #: The KIP-848 coordinator (`ConsumerGroupCoordinator`) sharing the group ids.
        self.consumer: Any = None
        self._schedule(clock() + config.offsets_retention_check_interval_ms, "expire", "", "", 0)

    # -- timers ------------------------------------------------------------------------------

    def tick(self, now: int | None = None) -> None:
        """Fire every timer due at `now` (default: the clock)."""
        now = self.clock() if now is None else now
        for deadline, kind, group_id, member_id, token in self._due(now):
            if kind == "expire":
                self.expire_offsets(now)
                self._schedule(now + self.config.offsets_retention_check_interval_ms,
                               "expire", "", "", 0)
                continue
            group = self.groups.get(group_id)
            if group is None:
                continue
            if kind == "member":
                self._on_member_deadline(group, member_id, now)
            elif kind == "pending":
                if group.pending_members.get(member_id) == deadline:
                    self._remove_pending_member(group, member_id)
            elif kind == "join":
                if group.join_epoch == token and group.is_in(GroupState.PREPARING_REBALANCE):
                    self._complete_join(group)
            elif kind == "initial":
                if group.join_epoch == token and group.is_in(GroupState.PREPARING_REBALANCE):
                    self._initial_delay_expired(group, *_unpack_delay(member_id))
            elif kind == "sync":
                if group.generation_id == token:
                    self._on_sync_timeout(group)

    def _touch(self, group: Group, member: Member, timeout_ms: int | None = None) -> None:
        """Kafka's completeAndScheduleNextHeartbeatExpiration."""
        member.deadline = self.clock() + (member.session_timeout_ms if timeout_ms is None
                                          else timeout_ms)
        self._schedule(member.deadline, "member", group.group_id, member.member_id, 0)

    def _on_member_deadline(self, group: Group, member_id: str, now: int) -> None:
        member = group.members.get(member_id)
        if member is None or member.deadline > now:
            return
        if not member.is_new and (member.awaiting_join or member.sync_callback is not None):
            return  # a member in a rebalance is kept alive until its response is sent
        log.info("member expired group=%s member=%s", group.group_id, member_id)
        self._remove_member_and_update(group, member, "session timeout")

    # -- JoinGroup ----------------------------------------------------------------------------

    def join_group(self, *, group_id: str, member_id: str, group_instance_id: str | None,
                   client_id: str, client_host: str, session_timeout_ms: int,
                   rebalance_timeout_ms: int, protocol_type: str,
                   protocols: list[tuple[str, bytes]], require_known_member_id: bool,
                   supports_skip_assignment: bool, callback: JoinCallback) -> None:
        if not group_id:
            return callback(JoinResult(ErrorCode.INVALID_GROUP_ID, member_id))
        if not (self.config.min_session_timeout_ms <= session_timeout_ms
                <= self.config.max_session_timeout_ms):
            return callback(JoinResult(ErrorCode.INVALID_SESSION_TIMEOUT, member_id))
        unknown = member_id == ""
        group = self.groups.get(group_id)
        if group is None:
            if not unknown:
                return callback(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
            group = self.groups[group_id] = Group(group_id, self.clock())
        if group.consumer is not None:
            if group.consumer.members:
                # Kafka would let a classic member join a consumer group (online migration);
                # we refuse mixing protocols in one group.
                return callback(JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id))
            self.consumer.delete_group(group_id)
            group.consumer = None
        if not self._accept_joining_member(group, member_id):
            existing = group.members.get(member_id)
            if existing is not None:
                self._remove_member_and_update(group, existing, "group max size reached")
            return callback(JoinResult(ErrorCode.GROUP_MAX_SIZE_REACHED, ""))
        args = (group, group_instance_id, client_id, client_host, session_timeout_ms,
                rebalance_timeout_ms, protocol_type, protocols)
        if unknown:
            self._join_new_member(*args, require_known_member_id, supports_skip_assignment,
                                  callback)
        else:
            self._join_existing_member(member_id, *args, callback)

    def _accept_joining_member(self, group: Group, member_id: str) -> bool:
        max_size = self.config.max_size
        if group.is_in(GroupState.EMPTY, GroupState.DEAD):
            return True
        member = group.members.get(member_id)
        if group.is_in(GroupState.PREPARING_REBALANCE):
            return ((member is not None and member.awaiting_join)
                    or group.num_awaiting_join < max_size)
        return member is not None or len(group.members) < max_size

    def _join_new_member(self, group: Group, instance_id: str | None, client_id: str,
                         client_host: str, session_timeout_ms: int, rebalance_timeout_ms: int,
                         protocol_type: str, protocols: list[tuple[str, bytes]],
                         require_known_member_id: bool, supports_skip_assignment: bool,
                         callback: JoinCallback) -> None:
        if group.is_in(GroupState.DEAD):
            return callback(JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE, ""))
        if not group.supports_protocols(protocol_type, protocols):
            return callback(JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, ""))
        new_member_id = f"{instance_id if instance_id is not None else client_id}-{uuid.uuid4()}"
        if instance_id is not None and instance_id in group.static_members:
            self._replace_static_member(group, instance_id, new_member_id, client_id,
                                        client_host, session_timeout_ms, rebalance_timeout_ms,
                                        protocols, supports_skip_assignment, callback)
        elif instance_id is None and require_known_member_id:
            deadline = self.clock() + session_timeout_ms
            group.pending_members[new_member_id] = deadline
            self._schedule(deadline, "pending", group.group_id, new_member_id, 0)
            callback(JoinResult(ErrorCode.MEMBER_ID_REQUIRED, new_member_id))
        else:
            self._add_member_and_rebalance(group, new_member_id, instance_id, client_id,
                                           client_host, session_timeout_ms,
                                           rebalance_timeout_ms, protocol_type, protocols,
                                           callback)

    def _join_existing_member(self, member_id: str, group: Group, instance_id: str | None,
                              client_id: str, client_host: str, session_timeout_ms: int,
                              rebalance_timeout_ms: int, protocol_type: str,
                              protocols: list[tuple[str, bytes]],
                              callback: JoinCallback) -> None:
        if group.is_in(GroupState.DEAD):
            return callback(JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE, member_id))
        if not group.supports_protocols(protocol_type, protocols):
            return callback(JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id))
        if member_id in group.pending_members:
            # A rejoining pending member (never a static one) is accepted.
            return self._add_member_and_rebalance(
                group, member_id, instance_id, client_id, client_host, session_timeout_ms,
                rebalance_timeout_ms, protocol_type, protocols, callback)
        error = self._validate_member(group, member_id, instance_id)
        if error is not ErrorCode.NONE:
            return callback(JoinResult(error, member_id))
        member = group.members[member_id]
        if group.is_in(GroupState.PREPARING_REBALANCE):
            self._update_member_and_rebalance(group, member, protocols, rebalance_timeout_ms,
                                              session_timeout_ms, callback)
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            if member.matches(protocols):
                # The member lost the first response: answer again for this generation.
                callback(self._join_response(group, member_id,
                                             with_members=group.is_leader(member_id)))
            else:
                self._update_member_and_rebalance(group, member, protocols,
                                                  rebalance_timeout_ms, session_timeout_ms,
                                                  callback)
        elif group.is_in(GroupState.STABLE):
            if group.is_leader(member_id) or not member.matches(protocols):
                # The leader rejoining forces a rebalance (its way to react to metadata
                # changes); so does a member whose metadata changed.
                self._update_member_and_rebalance(group, member, protocols,
                                                  rebalance_timeout_ms, session_timeout_ms,
                                                  callback)
            else:
                callback(self._join_response(group, member_id, with_members=False))
        else:  # Empty: the member must reset its generation and rejoin
            callback(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id))

    def _join_response(self, group: Group, member_id: str, *, with_members: bool,
                       leader: str | None = None, skip_assignment: bool = False) -> JoinResult:
        members = []
        if with_members:
            members = [(m.member_id, m.group_instance_id, m.metadata(group.protocol_name))
                       for m in group.members.values()]
        return JoinResult(ErrorCode.NONE, member_id, group.generation_id, group.protocol_type,
                          group.protocol_name, leader if leader is not None
                          else group.leader_id or "", skip_assignment, members)

    def _validate_member(self, group: Group, member_id: str,
                         instance_id: str | None) -> ErrorCode:
        """Kafka's `ClassicGroup.validateMember`."""
        if instance_id is not None:
            existing = group.static_members.get(instance_id)
            if existing is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if existing != member_id:
                return ErrorCode.FENCED_INSTANCE_ID
            return ErrorCode.NONE
        if member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        return ErrorCode.NONE

    def _add_member_and_rebalance(self, group: Group, member_id: str, instance_id: str | None,
                                  client_id: str, client_host: str, session_timeout_ms: int,
                                  rebalance_timeout_ms: int, protocol_type: str,
                                  protocols: list[tuple[str, bytes]],
                                  callback: JoinCallback) -> None:
        member = Member(member_id, instance_id, client_id, client_host, rebalance_timeout_ms,
                        session_timeout_ms, protocol_type, list(protocols),
                        join_callback=callback, is_new=True)
        group.pending_members.pop(member_id, None)
        group.add(member)
        if group.is_in(GroupState.PREPARING_REBALANCE) and group.generation_id == 0:
            group.new_member_added = True
        # New members cannot heartbeat before their first join response; a JoinGroup
        # parked too long (a client that went away) times out instead.
        self._touch(group, member, NEW_MEMBER_JOIN_TIMEOUT_MS)
        if group.is_in(GroupState.PREPARING_REBALANCE):
            self._maybe_complete_join(group)
        else:
            self._prepare_rebalance(group, f"adding new member {member_id}")

    def _update_member_and_rebalance(self, group: Group, member: Member,
                                     protocols: list[tuple[str, bytes]],
                                     rebalance_timeout_ms: int, session_timeout_ms: int,
                                     callback: JoinCallback) -> None:
        group.update_protocols(member, protocols)
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        if member.join_callback is not None:
            # A second JoinGroup from the same member supersedes the parked one.
            member.join_callback(JoinResult(ErrorCode.REBALANCE_IN_PROGRESS, member.member_id))
        member.join_callback = callback
        if group.is_in(GroupState.PREPARING_REBALANCE):
            self._maybe_complete_join(group)
        else:
            self._prepare_rebalance(group, f"updating metadata of member {member.member_id}")

    def _replace_static_member(self, group: Group, instance_id: str, new_member_id: str,
                               client_id: str, client_host: str, session_timeout_ms: int,
                               rebalance_timeout_ms: int, protocols: list[tuple[str, bytes]],
                               supports_skip_assignment: bool, callback: JoinCallback) -> None:
        """A static member rejoins with an unknown member id (KIP-345): it takes over its
        old identity; in a Stable group it gets its assignment back without a rebalance."""
        old_member_id = group.static_members[instance_id]
        old = group.members[old_member_id]
        old_protocols = old.protocols
        old_leader = group.leader_id
        # Fence the old instance's parked requests.
        if old.join_callback is not None:
            old.join_callback(JoinResult(ErrorCode.FENCED_INSTANCE_ID, old_member_id))
            old.join_callback = None
        if old.sync_callback is not None:
            old.sync_callback(SyncResult(ErrorCode.FENCED_INSTANCE_ID))
            old.sync_callback = None
        del group.members[old_member_id]
        old.member_id = new_member_id
        old.client_id, old.client_host = client_id, client_host
        old.session_timeout_ms, old.rebalance_timeout_ms = session_timeout_ms, rebalance_timeout_ms
        group.members[new_member_id] = old
        group.static_members[instance_id] = new_member_id
        if group.leader_id == old_member_id:
            group.leader_id = new_member_id
        if old_member_id in group.pending_sync:
            group.pending_sync.discard(old_member_id)
            group.pending_sync.add(new_member_id)
        self._touch(group, old)

        if group.is_in(GroupState.PREPARING_REBALANCE):
            group.update_protocols(old, protocols)
            old.join_callback = callback
            self._maybe_complete_join(group)
            return
        if group.is_in(GroupState.COMPLETING_REBALANCE):
            # No rebalance: the member waits for the leader's assignment like the others.
            group.update_protocols(old, protocols)
            callback(self._join_response(group, new_member_id, with_members=False,
                                         leader=old_leader or ""))
            return
        # Stable.
        selected = group.protocol_name
        metadata_changed = (dict(old_protocols).get(selected or "")
                            != dict(protocols).get(selected or ""))
        is_leader = group.is_leader(new_member_id)
        if metadata_changed:
            group.update_protocols(old, protocols)
            old.join_callback = callback
            self._prepare_rebalance(group, f"static member {instance_id} rejoined")
            return
        group.update_protocols(old, protocols)
        try:
            self.store.store_group(group)
        except StoreError as exc:
            # Revert the member id so that the old one stays valid, as Kafka does.
            del group.members[new_member_id]
            old.member_id = old_member_id
            group.members[old_member_id] = old
            group.static_members[instance_id] = old_member_id
            if group.leader_id == new_member_id:
                group.leader_id = old_member_id
            group.update_protocols(old, old_protocols)
            return callback(JoinResult(exc.code, ""))
        if is_leader and supports_skip_assignment:
            # KIP-814: the rejoined leader learns the members but skips the assignment.
            callback(self._join_response(group, new_member_id, with_members=True,
                                         skip_assignment=True))
        else:
            # Return the old leader id so that the member (even the leader, before v9) does
            # not think it leads: its assignment would not be sent in a Stable group.
            callback(self._join_response(group, new_member_id, with_members=False,
                                         leader=old_leader or ""))

    # -- the join phase --------------------------------------------------------------------------

    def _can_rebalance(self, group: Group) -> bool:
        return group.is_in(GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY)

    def _prepare_rebalance(self, group: Group, reason: str) -> None:
        if not self._can_rebalance(group):
            return
        if group.is_in(GroupState.COMPLETING_REBALANCE):
            self._reset_and_propagate_assignment_error(group, ErrorCode.REBALANCE_IN_PROGRESS)
        group.pending_sync.clear()
        now = self.clock()
        initial = group.is_empty_state
        group.transition(GroupState.PREPARING_REBALANCE, now)
        group.join_epoch += 1
        log.info("preparing rebalance group=%s generation=%d reason=%s", group.group_id,
                 group.generation_id, reason)
        if initial:
            delay = self.config.initial_rebalance_delay_ms
            remaining = max(group.rebalance_timeout_ms - delay, 0)
            self._schedule(now + delay, "initial", group.group_id, _pack_delay(delay, remaining),
                           group.join_epoch)
        else:
            self._schedule(now + group.rebalance_timeout_ms, "join", group.group_id, "",
                           group.join_epoch)
            self._maybe_complete_join(group)

    def _initial_delay_expired(self, group: Group, delay: int, remaining: int) -> None:
        if group.new_member_added and remaining != 0:
            group.new_member_added = False
            new_delay = min(self.config.initial_rebalance_delay_ms, remaining)
            new_remaining = max(remaining - delay, 0)
            self._schedule(self.clock() + new_delay, "initial", group.group_id,
                           _pack_delay(new_delay, new_remaining), group.join_epoch)
        else:
            self._complete_join(group)

    def _maybe_complete_join(self, group: Group) -> None:
        if (group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined()
                and group.previous_state is not GroupState.EMPTY):
            self._complete_join(group)

    def _complete_join(self, group: Group) -> None:
        # Dynamic members that did not rejoin in time are removed; static ones stay.
        for member in [m for m in group.members.values()
                       if not m.awaiting_join and m.group_instance_id is None]:
            self._remove_member(group, member)
        if group.members and not any(m.awaiting_join for m in group.members.values()):
            # Only static members that did not rejoin: wait for their session to expire.
            group.join_epoch += 1
            self._schedule(self.clock() + group.rebalance_timeout_ms, "join", group.group_id,
                           "", group.join_epoch)
            return
        if group.leader_id is None or not group.members[group.leader_id].awaiting_join:
            group.leader_id = next((mid for mid, m in group.members.items()
                                    if m.awaiting_join), None)
        now = self.clock()
        group.generation_id += 1
        group.join_epoch += 1
        if not group.members:
            group.protocol_name = None
            group.transition(GroupState.EMPTY, now)
            log.info("group is empty group=%s generation=%d", group.group_id,
                     group.generation_id)
            try:
                self.store.store_group(group)
            except StoreError as exc:
                log.warning("could not store empty group group=%s error=%s", group.group_id,
                            exc.code.name)
            return
        group.protocol_name = group.select_protocol()
        group.transition(GroupState.COMPLETING_REBALANCE, now)
        group.pending_sync = set(group.members)
        log.info("stabilized group=%s generation=%d protocol=%s members=%d", group.group_id,
                 group.generation_id, group.protocol_name, len(group.members))
        for member in list(group.members.values()):
            callback = member.join_callback
            if callback is None:
                continue
            member.join_callback = None
            member.is_new = False
            self._touch(group, member)
            callback(self._join_response(group, member.member_id,
                                         with_members=group.is_leader(member.member_id)))
        self._schedule(now + group.rebalance_timeout_ms, "sync", group.group_id, "",
                       group.generation_id)

    def _on_sync_timeout(self, group: Group) -> None:
        if not group.is_in(GroupState.COMPLETING_REBALANCE, GroupState.STABLE):
            return
        missing = [group.members[mid] for mid in group.pending_sync if mid in group.members]
        group.pending_sync.clear()
        if not missing:
            return
        for member in missing:
            log.info("member did not sync in time group=%s member=%s", group.group_id,
                     member.member_id)
            self._remove_member(group, member)
        self._prepare_rebalance(group, "members failed to sync within the rebalance timeout")

    def _reset_and_propagate_assignment_error(self, group: Group, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
            if member.sync_callback is not None:
                callback, member.sync_callback = member.sync_callback, None
                callback(SyncResult(error))

    # -- removal ---------------------------------------------------------------------------------

    def _remove_member(self, group: Group, member: Member) -> None:
        if member.join_callback is not None:
            callback, member.join_callback = member.join_callback, None
            callback(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member.member_id))
        if member.sync_callback is not None:
            sync_callback, member.sync_callback = member.sync_callback, None
            sync_callback(SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
        group.remove(member.member_id)

    def _remove_member_and_update(self, group: Group, member: Member, reason: str) -> None:
        self._remove_member(group, member)
        if group.is_in(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._prepare_rebalance(group, f"removing member {member.member_id} on {reason}")
        elif group.is_in(GroupState.PREPARING_REBALANCE):
            self._maybe_complete_join(group)

    def _remove_pending_member(self, group: Group, member_id: str) -> None:
        group.pending_members.pop(member_id, None)
        self._maybe_complete_join(group)

    # -- SyncGroup -------------------------------------------------------------------------------

    def sync_group(self, *, group_id: str, generation_id: int, member_id: str,
                   group_instance_id: str | None, protocol_type: str | None,
                   protocol_name: str | None, assignments: Mapping[str, bytes],
                   callback: SyncCallback) -> None:
        if not group_id:
            return callback(SyncResult(ErrorCode.INVALID_GROUP_ID))
        group = self.groups.get(group_id)
        if group is None:
            return callback(SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
        if group.is_in(GroupState.DEAD):
            return callback(SyncResult(ErrorCode.COORDINATOR_NOT_AVAILABLE))
        error = self._validate_member(group, member_id, group_instance_id)
        if error is ErrorCode.NONE and generation_id != group.generation_id:
            error = ErrorCode.ILLEGAL_GENERATION
        if error is ErrorCode.NONE and (
                (protocol_type is not None and protocol_type != group.protocol_type)
                or (protocol_name is not None and protocol_name != group.protocol_name)):
            error = ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        if error is not ErrorCode.NONE:
            return callback(SyncResult(error))
        if group.is_in(GroupState.EMPTY):
            return callback(SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
        if group.is_in(GroupState.PREPARING_REBALANCE):
            return callback(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
        member = group.members[member_id]
        group.pending_sync.discard(member_id)
        if group.is_in(GroupState.STABLE):
            self._touch(group, member)
            return callback(SyncResult(ErrorCode.NONE, group.protocol_type, group.protocol_name,
                                       member.assignment))
        # CompletingRebalance: park until the leader's assignment is stored.
        if member.sync_callback is not None:
            member.sync_callback(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
        member.sync_callback = callback
        if not group.is_leader(member_id):
            return
        assignment = {mid: bytes(assignments.get(mid, b"")) for mid in group.members}
        previous = {mid: m.assignment for mid, m in group.members.items()}
        for mid, m in group.members.items():
            m.assignment = assignment[mid]
        try:
            self.store.store_group(group)
        except StoreError as exc:
            for mid, m in group.members.items():
                m.assignment = previous[mid]
            self._reset_and_propagate_assignment_error(group, exc.code)
            self._prepare_rebalance(group, "error when storing the group assignment")
            return
        group.transition(GroupState.STABLE, self.clock())
        for m in group.members.values():
            if m.sync_callback is not None:
                sync_callback, m.sync_callback = m.sync_callback, None
                self._touch(group, m)
                sync_callback(SyncResult(ErrorCode.NONE, group.protocol_type,
                                         group.protocol_name, m.assignment))

    # -- Heartbeat ---------------------------------------------------------------------------

    def heartbeat(self, *, group_id: str, generation_id: int, member_id: str,
                  group_instance_id: str | None) -> ErrorCode:
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_in(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = self._validate_member(group, member_id, group_instance_id)
        if error is not ErrorCode.NONE:
            return error
        if generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if group.is_in(GroupState.EMPTY):
            return ErrorCode.UNKNOWN_MEMBER_ID
        member = group.members[member_id]
        if not member.is_new:
            self._touch(group, member)
        if group.is_in(GroupState.PREPARING_REBALANCE):
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    # -- LeaveGroup --------------------------------------------------------------------------

    def leave_group(self, group_id: str, leaving: list[tuple[str, str | None]]
                    ) -> tuple[ErrorCode, list[ErrorCode]]:
        """(top-level error, one error per leaving (member_id, group_instance_id))."""
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID, []
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.NONE, [ErrorCode.UNKNOWN_MEMBER_ID for _ in leaving]
        if group.is_in(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, []
        errors = []
        for member_id, instance_id in leaving:
            static_id = group.static_members.get(instance_id) if instance_id else None
            if member_id and static_id is not None and static_id != member_id:
                errors.append(ErrorCode.FENCED_INSTANCE_ID)
            elif member_id in group.pending_members:
                self._remove_pending_member(group, member_id)
                errors.append(ErrorCode.NONE)
            elif member_id not in group.members and static_id is None:
                errors.append(ErrorCode.UNKNOWN_MEMBER_ID)
            else:
                member = group.members[static_id if static_id is not None else member_id]
                log.info("member left group=%s member=%s", group_id, member.member_id)
                self._remove_member_and_update(group, member, "LeaveGroup")
                errors.append(ErrorCode.NONE)
        return ErrorCode.NONE, errors

    # -- ListGroups / DescribeGroups / DeleteGroups -------------------------------------------

    def list_groups(self, states: Iterable[str] = (), types: Iterable[str] = ()
                    ) -> list[tuple[str, str, str]]:
        """(group_id, protocol_type, state) of the groups matching the filters
        (case-insensitive; empty filters match everything; every group is 'classic')."""
        wanted_states = {s.lower() for s in states}
        wanted_types = {t.lower() for t in types}
        if wanted_types and "classic" not in wanted_types:
            return []
        return [(g.group_id, g.protocol_type or "", g.state.value)
                for g in self.groups.values()
                if g.state is not GroupState.DEAD and g.consumer is None
                and (not wanted_states or g.state.value.lower() in wanted_states)]

    def describe_group(self, group_id: str) -> GroupSummary | None:
        group = self.groups.get(group_id)
        if group is None or group.is_in(GroupState.DEAD) or group.consumer is not None:
            return None
        stable = group.is_in(GroupState.STABLE)
        members = [MemberSummary(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                                 m.metadata(group.protocol_name) if stable else b"",
                                 m.assignment if stable else b"")
                   for m in group.members.values()]
        return GroupSummary(group.group_id, group.state.value, group.protocol_type or "",
                            (group.protocol_name or "") if stable else "", members)

    def delete_groups(self, group_ids: Iterable[str]) -> dict[str, ErrorCode]:
        results: dict[str, ErrorCode] = {}
        for group_id in group_ids:
            group = self.groups.get(group_id)
            if group is None or group.is_in(GroupState.DEAD):
                results[group_id] = ErrorCode.GROUP_ID_NOT_FOUND
            elif group.consumer is not None and group.consumer.members:
                results[group_id] = ErrorCode.NON_EMPTY_GROUP
            elif not group.is_in(GroupState.EMPTY):
                results[group_id] = ErrorCode.NON_EMPTY_GROUP
            else:
                try:
                    self.store.delete_group(group_id, list(group.offsets))
                except StoreError as exc:
                    results[group_id] = exc.code
                    continue
                if group.consumer is not None:
                    self.consumer.delete_group(group_id)
                self._drop_group(group)
                results[group_id] = ErrorCode.NONE
        return results

    def _drop_group(self, group: Group) -> None:
        group.transition(GroupState.DEAD, self.clock())
        group.offsets.clear()
        self.groups.pop(group.group_id, None)
        log.info("group deleted group=%s", group.group_id)

    # -- offsets -----------------------------------------------------------------------------

    def _check_metadata_size(self, offsets: Mapping[tuple[str, int], OffsetAndMetadata]
                             ) -> tuple[dict[tuple[str, int], ErrorCode],
                                        dict[tuple[str, int], OffsetAndMetadata]]:
        """OFFSET_METADATA_TOO_LARGE for each offset whose metadata is over
        `offset.metadata.max.bytes`; the others, to store."""
        limit = self.config.offset_metadata_max_bytes
        results: dict[tuple[str, int], ErrorCode] = {}
        valid: dict[tuple[str, int], OffsetAndMetadata] = {}
        for tp, om in offsets.items():
            if len(om.metadata.encode("utf-8")) > limit:
                results[tp] = ErrorCode.OFFSET_METADATA_TOO_LARGE
            else:
                valid[tp] = om
        return results, valid

    def commit_offsets(self, *, group_id: str, generation_id: int, member_id: str,
                       group_instance_id: str | None, api_version: int,
                       offsets: Mapping[tuple[str, int], OffsetAndMetadata]
                       ) -> dict[tuple[str, int], ErrorCode]:
        """Validate and store `offsets` (commit timestamps set here). One error per
        partition; a group-level failure gives every partition the same code."""
        error, group = self._validate_commit(group_id, generation_id, member_id,
                                             group_instance_id, api_version)
        if error is not ErrorCode.NONE or group is None:
            return {tp: error for tp in offsets}
        results, valid = self._check_metadata_size(offsets)
        if valid:
            try:
                self.store.store_offsets(group_id, valid)
            except StoreError as exc:
                for tp in valid:
                    results[tp] = exc.code
                return results
            group.offsets.update(valid)
            for tp in valid:
                results[tp] = ErrorCode.NONE
            for pending in group.pending_txn_offsets.values():
                for tp in valid:
                    if tp in pending:
                        pending[tp].superseded = True
        return results

    def _validate_commit(self, group_id: str, generation_id: int, member_id: str,
                         instance_id: str | None, api_version: int,
                         transactional: bool = False) -> tuple[ErrorCode, Group | None]:
        """Kafka's `validateOffsetCommit` (`transactional`: TxnOffsetCommit's variant, which
        accepts a commit without member id from a non-empty group, does not refuse one
        during a rebalance, and answers ILLEGAL_GENERATION for an unknown group)."""
        group = self.groups.get(group_id)
        if group is None:
            if generation_id < 0:
                # A "simple" group that only stores offsets.
                group = self.groups[group_id] = Group(group_id, self.clock())
                return ErrorCode.NONE, group
            return (ErrorCode.GROUP_ID_NOT_FOUND if api_version >= 9 and not transactional
                    else ErrorCode.ILLEGAL_GENERATION), None
        if group.is_in(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, None
        if group.consumer is not None:
            # A transactional commit of a KIP-848 member: any TxnOffsetCommit version is
            # fine, and a stale member epoch is ILLEGAL_GENERATION.
            error = self.consumer.validate_commit(group_id, member_id, generation_id,
                                                  max(api_version, 9) if transactional
                                                  else api_version)
            if transactional and error is ErrorCode.STALE_MEMBER_EPOCH:
                error = ErrorCode.ILLEGAL_GENERATION
            return error, group if error is ErrorCode.NONE else None
        if generation_id < 0 and group.is_in(GroupState.EMPTY):
            return ErrorCode.NONE, group
        if generation_id >= 0 or member_id or instance_id is not None:
            error = self._validate_member(group, member_id, instance_id)
            if error is not ErrorCode.NONE:
                return error, None
            if generation_id != group.generation_id:
                return ErrorCode.ILLEGAL_GENERATION, None
        elif not transactional and not group.is_in(GroupState.EMPTY):
            return ErrorCode.UNKNOWN_MEMBER_ID, None
        if not transactional and group.is_in(GroupState.COMPLETING_REBALANCE):
            return ErrorCode.REBALANCE_IN_PROGRESS, None
        member = group.members.get(member_id)
        if member is not None and not member.is_new:
            self._touch(group, member)
        return ErrorCode.NONE, group

    # -- transactional offsets -------------------------------------------------------

    def commit_txn_offsets(self, *, group_id: str, producer_id: int, producer_epoch: int,
                           generation_id: int, member_id: str, group_instance_id: str | None,
                           api_version: int, offsets: Mapping[tuple[str, int], OffsetAndMetadata]
                           ) -> dict[tuple[str, int], ErrorCode]:
        """TxnOffsetCommit (Kafka's `OffsetMetadataManager.commitTransactionalOffset`): the
        offsets are written as a transactional batch of `producer_id` and stay pending
        until the transaction's marker lands in the group's partition
        (`complete_txn_offsets`). One error per partition."""
        if not group_id:
            return dict.fromkeys(offsets, ErrorCode.INVALID_GROUP_ID)
        error, group = self._validate_commit(group_id, generation_id, member_id,
                                             group_instance_id, api_version, transactional=True)
        if error is not ErrorCode.NONE or group is None:
            return dict.fromkeys(offsets, error)
        results, valid = self._check_metadata_size(offsets)
        if valid:
            try:
                self.store.store_txn_offsets(group_id, producer_id, producer_epoch, valid)
            except StoreError as exc:
                return {**results, **dict.fromkeys(valid, exc.code)}
            self.add_pending_txn_offsets(group, producer_id, valid)
            results.update(dict.fromkeys(valid, ErrorCode.NONE))
        return results

    @staticmethod
    def add_pending_txn_offsets(group: Group, producer_id: int,
                                offsets: Mapping[tuple[str, int], OffsetAndMetadata]) -> None:
        pending = group.pending_txn_offsets.setdefault(producer_id, {})
        for tp, om in offsets.items():
            pending[tp] = PendingOffset(om)

    def complete_txn_offsets(self, producer_id: int, commit: bool,
                             in_partition: Callable[[str], bool] = lambda group_id: True
                             ) -> int:
        """A COMMIT or ABORT marker of `producer_id` landed in the offsets partition holding
        the groups `in_partition` accepts: materialise (commit) or drop (abort) their
        pending offsets (Kafka's `replayEndTransactionMarker`). Returns how many offsets
        were materialised."""
        applied = 0
        for group in list(self.groups.values()):
            if producer_id not in group.pending_txn_offsets or not in_partition(group.group_id):
                continue
            pending = group.pending_txn_offsets.pop(producer_id)
            if not commit:
                continue
            for tp, entry in pending.items():
                if not entry.superseded:
                    group.offsets[tp] = entry.offset
                    applied += 1
        return applied

    @staticmethod
    def has_pending_txn_offset(group: Group | None, tp: tuple[str, int]) -> bool:
        return group is not None and any(tp in p for p in group.pending_txn_offsets.values())

    def pending_partitions(self, group_id: str) -> set[tuple[str, int]]:
        """Partitions of the group with a transactional offset awaiting its marker."""
        group = self.groups.get(group_id)
        if group is None:
            return set()
        return {tp for pending in group.pending_txn_offsets.values() for tp in pending}

    def fetch_offsets(self, group_id: str, partitions: Iterable[tuple[str, int]] | None
                      ) -> dict[tuple[str, int], OffsetAndMetadata | None]:
        """Committed offsets of `partitions` (all the group's when None); None where
        nothing is committed. An unknown group has no offsets (no error, as Kafka)."""
        group = self.groups.get(group_id)
        offsets = group.offsets if group is not None else {}
        if partitions is None:
            return dict(sorted(offsets.items()))
        return {tp: offsets.get(tp) for tp in partitions}

    def delete_offsets(self, group_id: str, partitions: Iterable[tuple[str, int]]
                       ) -> tuple[ErrorCode, dict[tuple[str, int], ErrorCode]]:
        """OffsetDelete: (group error, per-partition errors)."""
        group = self.groups.get(group_id)
        if group is None or group.is_in(GroupState.DEAD):
            return ErrorCode.GROUP_ID_NOT_FOUND, {}
        if not group.is_in(GroupState.EMPTY) and group.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return ErrorCode.NON_EMPTY_GROUP, {}
        results: dict[tuple[str, int], ErrorCode] = {}
        to_delete = []
        subscribed = (group.subscribed_topics() or set()) if not group.is_empty_state else set()
        if group.consumer is not None:
            subscribed = self.consumer.subscribed_topics(group_id)
        for tp in partitions:
            if tp[0] in subscribed:
                results[tp] = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
            else:
                results[tp] = ErrorCode.NONE
                if tp in group.offsets:
                    to_delete.append(tp)
        if to_delete:
            try:
                self.store.delete_offsets(group_id, to_delete)
            except StoreError as exc:
                return exc.code, {}
            for tp in to_delete:
                del group.offsets[tp]
        return ErrorCode.NONE, results

    def expire_offsets(self, now: int) -> None:
        """Kafka's offset expiry (KIP-211) and the removal of empty groups without offsets."""
        retention = self.config.offsets_retention_ms
        for group in list(self.groups.values()):
            base: Callable[[OffsetAndMetadata], int] | None = None
            subscribed: set[str] = set()
            if group.consumer is not None and group.consumer.members:
                subscribed = self.consumer.subscribed_topics(group.group_id)

                def base(om: OffsetAndMetadata) -> int:
                    return om.commit_timestamp
            elif group.protocol_type is None:
                def base(om: OffsetAndMetadata) -> int:
                    return om.commit_timestamp
            elif group.is_in(GroupState.EMPTY):
                def base(om: OffsetAndMetadata, ts: int = group.state_timestamp) -> int:
                    return ts
            elif group.is_in(GroupState.STABLE) and group.protocol_type == CONSUMER_PROTOCOL_TYPE:
                topics = group.subscribed_topics()
                if topics is not None:
                    subscribed = topics

                    def base(om: OffsetAndMetadata) -> int:
                        return om.commit_timestamp
            expired = []
            if base is not None:
                for tp, om in group.offsets.items():
                    if tp[0] in subscribed:
                        continue
                    if om.expire_timestamp is not None:
                        if now >= om.expire_timestamp:
                            expired.append(tp)
                    elif now - base(om) >= retention:
                        expired.append(tp)
            if expired:
                try:
                    self.store.delete_offsets(group.group_id, expired)
                except StoreError:
                    continue
                for tp in expired:
                    del group.offsets[tp]
                log.info("expired offsets group=%s partitions=%d", group.group_id, len(expired))
            if group.consumer is not None:
                continue
            if (group.is_in(GroupState.EMPTY) and not group.offsets and not group.pending_members
                    and not group.pending_txn_offsets):
                try:
                    self.store.delete_group(group.group_id, [])
                except StoreError:
                    continue
                self._drop_group(group)

    def remove_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop committed offsets of deleted topic partitions (Kafka's onPartitionsDeleted)."""
        gone = set(partitions)
        for group in self.groups.values():
            doomed = [tp for tp in group.offsets if tp in gone]
            if doomed:
                try:
                    self.store.delete_offsets(group.group_id, doomed)
                except StoreError:
                    continue
                for tp in doomed:
                    del group.offsets[tp]

    # -- KIP-848 consumer groups ------------------------------------------------------------

    def adopt_consumer_group(self, group_id: str, consumer_group: Any) -> None:
        """A consumer group took this id: an empty classic group's offsets stay with it."""
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = Group(group_id, self.clock())
        group.consumer = consumer_group

    def release_consumer_group(self, group_id: str) -> None:
        group = self.groups.get(group_id)
        if group is not None:
            group.consumer = None
            if not group.offsets and group.is_in(GroupState.EMPTY) \
                    and group.protocol_type is None:
                self.groups.pop(group_id, None)

    # -- loading ---------------------------------------------------------------------------------

    def load_group(self, group: Group) -> None:
        """Install a group read back from the log; its members must heartbeat again."""
        self.groups[group.group_id] = group
        for member in group.members.values():
            self._touch(group, member)


def _pack_delay(delay: int, remaining: int) -> str:
    return f"{delay}:{remaining}"


def _unpack_delay(text: str) -> tuple[int, int]:
    delay, remaining = text.split(":")
    return int(delay), int(remaining)
