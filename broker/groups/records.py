"""Groups and offsets in `__consumer_offsets`, in Kafka's own record formats.

How this works
--------------
Every record's key and value start with an int16 version. The key's version says what the
record is: 0 or 1 an offset commit (`OffsetCommitKey`: group, topic, partition), 2 a group's
metadata (`GroupMetadataKey`: group). Values are `OffsetCommitValue` (version 1 when the
commit carries an expire timestamp, as OffsetCommit v2-4 with a retention time does, else
version 3) and `GroupMetadataValue` version 3, what Kafka 4.x writes. A null value is a
tombstone: the offset or group is gone, and compaction (the topic is `cleanup.policy=compact`)
eventually drops every older record with the same key.

A group lives in partition `abs(groupId.hashCode()) % partitions`, Java's `String.hashCode`
and Kafka's `Utils.abs`, so a data dir moved between Kafka and us keeps its groups where both
look for them. `LogGroupStore` writes one batch per operation (all the offsets of one commit
together) and returns only after the append; `load` scans every partition from its log start
offset, later records winning, tombstones deleting.

Transactional offset commits (TxnOffsetCommit) are written as a transactional batch of the
producer (`store_txn_offsets`); they stay pending until the transaction coordinator writes
its COMMIT or ABORT marker into the same partition. `load` replays that too: a partition's
transactional offsets wait for a marker of their producer later in that partition, and
those still without one come back as pending.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from broker.groups.coordinator import (
    Group,
    GroupCoordinator,
    GroupState,
    Member,
    OffsetAndMetadata,
    PendingOffset,
    StoreError,
)
from protocol.coordinator import (
    consumer_group_current_member_assignment_value as current_value,
)
from protocol.coordinator import (
    consumer_group_target_assignment_member_value as target_value,
)
from protocol.coordinator.consumer_group_current_member_assignment_key import (
    ConsumerGroupCurrentMemberAssignmentKey,
)
from protocol.coordinator.consumer_group_member_metadata_key import (
    ConsumerGroupMemberMetadataKey,
)
from protocol.coordinator.consumer_group_member_metadata_value import (
    ConsumerGroupMemberMetadataValue,
)
from protocol.coordinator.consumer_group_metadata_key import ConsumerGroupMetadataKey
from protocol.coordinator.consumer_group_metadata_value import ConsumerGroupMetadataValue
from protocol.coordinator.consumer_group_target_assignment_member_key import (
    ConsumerGroupTargetAssignmentMemberKey,
)
from protocol.coordinator.consumer_group_target_assignment_member_value import (
    ConsumerGroupTargetAssignmentMemberValue,
)
from protocol.coordinator.consumer_group_target_assignment_metadata_key import (
    ConsumerGroupTargetAssignmentMetadataKey,
)
from protocol.coordinator.consumer_group_target_assignment_metadata_value import (
    ConsumerGroupTargetAssignmentMetadataValue,
)
from protocol.coordinator.group_metadata_key import GroupMetadataKey
from protocol.coordinator.group_metadata_value import GroupMetadataValue, MemberMetadata
from protocol.coordinator.offset_commit_key import OffsetCommitKey
from protocol.coordinator.offset_commit_value import OffsetCommitValue
from protocol.errors import ErrorCode, ProtocolError
from protocol.records import (
    ControlType,
    build_batch,
    iter_batches,
    iter_records,
    parse_control_record,
)
from storage.errors import RecordTooLarge, StorageError
from storage.producer_state import AppendOrigin, InvalidProducerEpoch

if TYPE_CHECKING:
    from broker.groups.consumer import ConsumerGroup
    from storage import PartitionLog

log = logging.getLogger("odradek.groups")

OFFSETS_TOPIC = "__consumer_offsets"
OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2
GROUP_METADATA_VALUE_VERSION = 3
_I16 = struct.Struct(">h")
_READ_CHUNK = 1 << 20


def java_string_hash(text: str) -> int:
    """Java's `String.hashCode` (over UTF-16 code units), as a signed 32-bit int."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group_id: str, partitions: int) -> int:
    """Kafka's `Utils.abs(groupId.hashCode()) % partitions`."""
    h = java_string_hash(group_id)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def _encode(version: int, struct_obj: Any) -> bytes:
    return _I16.pack(version) + b"".join(bytes(c) for c in struct_obj.encode(version))


def offset_key(group_id: str, topic: str, partition: int) -> bytes:
    return _encode(OFFSET_COMMIT_KEY_VERSION, OffsetCommitKey(group_id, topic, partition))


def group_key(group_id: str) -> bytes:
    return _encode(GROUP_METADATA_KEY_VERSION, GroupMetadataKey(group_id))


def offset_value(om: OffsetAndMetadata) -> bytes:
    if om.expire_timestamp is not None:
        return _encode(1, OffsetCommitValue(om.offset, -1, om.metadata, om.commit_timestamp,
                                            om.expire_timestamp))
    return _encode(3, OffsetCommitValue(om.offset, om.leader_epoch, om.metadata,
                                        om.commit_timestamp))


def group_value(group: Group) -> bytes:
    protocol = group.protocol_name
    members = [MemberMetadata(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                              m.rebalance_timeout_ms, m.session_timeout_ms,
                              m.metadata(protocol), m.assignment)
               for m in group.members.values()]
    value = GroupMetadataValue(group.protocol_type or "", group.generation_id, protocol,
                               group.leader_id, group.state_timestamp, members)
    return _encode(GROUP_METADATA_VALUE_VERSION, value)


# -- KIP-848 consumer groups --------------------------------------------------------------------
# Key versions (the record types of Kafka's group coordinator): 3 ConsumerGroupMetadata,
# 5 ConsumerGroupMemberMetadata, 6 ConsumerGroupTargetAssignmentMetadata,
# 7 ConsumerGroupTargetAssignmentMember, 8 ConsumerGroupCurrentMemberAssignment; values are
# version 0. (4, ConsumerGroupPartitionMetadata, is not written: Kafka 4.1+ dropped it.)
CONSUMER_KEY_TYPES: dict[int, Any] = {
                      3: ConsumerGroupMetadataKey, 5: ConsumerGroupMemberMetadataKey,
                      6: ConsumerGroupTargetAssignmentMetadataKey,
                      7: ConsumerGroupTargetAssignmentMemberKey,
                      8: ConsumerGroupCurrentMemberAssignmentKey}
#: Kafka's `MemberState` byte values.
MEMBER_STATE_BYTES = {"stable": 0, "unreleased_partitions": 1, "unrevoked_partitions": 2}


def _partitions(cls: Any, assignment: Mapping[Any, Iterable[int]]) -> list[Any]:
    return [cls(topic_id, sorted(ps)) for topic_id, ps in
            sorted(assignment.items(), key=lambda item: str(item[0])) if ps]


def consumer_group_records(group: ConsumerGroup) -> dict[bytes, bytes]:
    """Every record describing `group` now, key -> value."""
    gid = group.group_id
    out = {
        _encode(3, ConsumerGroupMetadataKey(gid)):
            _encode(0, ConsumerGroupMetadataValue(group.group_epoch)),
        _encode(6, ConsumerGroupTargetAssignmentMetadataKey(gid)):
            _encode(0, ConsumerGroupTargetAssignmentMetadataValue(group.target_epoch)),
    }
    for m in group.members.values():
        out[_encode(5, ConsumerGroupMemberMetadataKey(gid, m.member_id))] = _encode(
            0, ConsumerGroupMemberMetadataValue(
                m.instance_id, m.rack_id, m.client_id, m.client_host,
                list(m.subscribed_topic_names), m.subscribed_topic_regex,
                m.rebalance_timeout_ms, m.server_assignor, None))
        out[_encode(8, ConsumerGroupCurrentMemberAssignmentKey(gid, m.member_id))] = _encode(
            0, current_value.ConsumerGroupCurrentMemberAssignmentValue(
                m.member_epoch, m.previous_member_epoch, MEMBER_STATE_BYTES[m.state.value],
                _partitions(current_value.TopicPartitions, m.assigned),
                _partitions(current_value.TopicPartitions, m.pending_revocation)))
    for member_id, assignment in group.target.items():
        out[_encode(7, ConsumerGroupTargetAssignmentMemberKey(gid, member_id))] = _encode(
            0, ConsumerGroupTargetAssignmentMemberValue(
                _partitions(target_value.TopicPartition, assignment)))
    return out


def decode_consumer_record(version: int, key: bytes, value: bytes | None
                           ) -> tuple[str, str | None, Any]:
    """(group_id, member_id or None, decoded value or None) of a consumer group record."""
    k = CONSUMER_KEY_TYPES[version].decode(key[2:], version)
    member_id = getattr(k, "member_id", None)
    if value is None:
        return k.group_id, member_id, None
    value_cls: Any = {3: ConsumerGroupMetadataValue, 5: ConsumerGroupMemberMetadataValue,
                      6: ConsumerGroupTargetAssignmentMetadataValue,
                      7: ConsumerGroupTargetAssignmentMemberValue,
                      8: current_value.ConsumerGroupCurrentMemberAssignmentValue}[version]
    return k.group_id, member_id, value_cls.decode(value[2:], 0)


def decode_key(key: bytes) -> tuple[str, Any]:
    """("offset", OffsetCommitKey) | ("group", GroupMetadataKey) | ("other", version)."""
    version = _I16.unpack_from(key)[0]
    if version in (0, 1):
        return "offset", OffsetCommitKey.decode(key[2:], version)
    if version == 2:
        return "group", GroupMetadataKey.decode(key[2:], version)
    if version in CONSUMER_KEY_TYPES:
        return "consumer", version
    return "other", version


def decode_offset_value(value: bytes) -> OffsetAndMetadata:
    version = _I16.unpack_from(value)[0]
    v = OffsetCommitValue.decode(value[2:], min(version, OffsetCommitValue.MAX_VERSION))
    expire = v.expire_timestamp if version == 1 and v.expire_timestamp != -1 else None
    return OffsetAndMetadata(v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, expire)


def decode_group_value(group_id: str, value: bytes, now: int) -> Group:
    version = _I16.unpack_from(value)[0]
    v = GroupMetadataValue.decode(value[2:], min(version, GroupMetadataValue.MAX_VERSION))
    group = Group(group_id, now)
    group.protocol_type = v.protocol_type or None
    group.generation_id = v.generation
    group.protocol_name = v.protocol
    if v.current_state_timestamp != -1:
        group.state_timestamp = v.current_state_timestamp
    for mm in v.members:
        rebalance_timeout = mm.rebalance_timeout if mm.rebalance_timeout != -1 \
            else mm.session_timeout
        group.add(Member(mm.member_id, mm.group_instance_id, mm.client_id, mm.client_host,
                         rebalance_timeout, mm.session_timeout, group.protocol_type or "",
                         [(v.protocol or "", mm.subscription)], assignment=mm.assignment))
    group.leader_id = v.leader if v.leader in group.members else group.leader_id
    group.state = GroupState.STABLE if group.members else GroupState.EMPTY
    group.previous_state = group.state
    return group


class LogGroupStore:
    """A `GroupStore` appending to `__consumer_offsets` through `log_for(partition)`."""

    def __init__(self, log_for: Callable[[str], tuple[PartitionLog, int] | None],
                 clock: Callable[[], int],
                 notify: Callable[[int], None] = lambda partition: None) -> None:
        self._log_for = log_for
        self._clock = clock
        self._notify = notify

    def _append(self, group_id: str, records: list[tuple[bytes, bytes | None]],
                producer: tuple[int, int] | None = None) -> None:
        found = self._log_for(group_id)
        if found is None:
            raise StoreError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        plog, partition = found
        if producer is None:
            batch = build_batch(records, base_timestamp=self._clock())
        else:
            batch = build_batch(records, base_timestamp=self._clock(), producer_id=producer[0],
                                producer_epoch=producer[1], base_sequence=0,
                                is_transactional=True)
        try:
            plog.append(batch, validated=True, origin=AppendOrigin.COORDINATOR)
        except RecordTooLarge as exc:
            raise StoreError(ErrorCode.INVALID_COMMIT_OFFSET_SIZE, str(exc)) from exc
        except InvalidProducerEpoch as exc:
            # A zombie producer's transactional commit (its epoch was bumped by a fence).
            raise StoreError(ErrorCode.INVALID_PRODUCER_EPOCH, str(exc)) from exc
        except StorageError as exc:
            log.warning("group log append failed group=%s error=%s", group_id, exc)
            raise StoreError(ErrorCode.UNKNOWN_SERVER_ERROR, str(exc)) from exc
        self._notify(partition)

    def store_group(self, group: Group) -> None:
        self._append(group.group_id, [(group_key(group.group_id), group_value(group))])

    def store_offsets(self, group_id: str,
                      offsets: Mapping[tuple[str, int], OffsetAndMetadata]) -> None:
        self._append(group_id, [(offset_key(group_id, t, p), offset_value(om))
                                for (t, p), om in offsets.items()])

    def store_txn_offsets(self, group_id: str, producer_id: int, producer_epoch: int,
                          offsets: Mapping[tuple[str, int], OffsetAndMetadata]) -> None:
        """The offsets of a TxnOffsetCommit: one transactional batch of the producer, which
        its transaction's marker later commits or aborts."""
        self._append(group_id, [(offset_key(group_id, t, p), offset_value(om))
                                for (t, p), om in offsets.items()],
                     producer=(producer_id, producer_epoch))

    def delete_offsets(self, group_id: str, partitions: Iterable[tuple[str, int]]) -> None:
        records: list[tuple[bytes, bytes | None]] = [
            (offset_key(group_id, t, p), None) for t, p in partitions]
        if records:
            self._append(group_id, records)

    def delete_group(self, group_id: str, partitions: Iterable[tuple[str, int]]) -> None:
        records: list[tuple[bytes, bytes | None]] = [
            (offset_key(group_id, t, p), None) for t, p in partitions]
        records.append((group_key(group_id), None))
        self._append(group_id, records)

    def store_consumer_group(self, group: ConsumerGroup) -> None:
        """Write what changed since the group's last write: new or changed records, and
        tombstones for members gone."""
        now = consumer_group_records(group)
        before = group.persisted
        records: list[tuple[bytes, bytes | None]] = [
            (k, None) for k in before if k not in now]
        records += [(k, v) for k, v in now.items() if before.get(k) != v]
        if records:
            self._append(group.group_id, records)
            group.persisted = now

    def delete_consumer_group(self, group: ConsumerGroup) -> None:
        records: list[tuple[bytes, bytes | None]] = [(k, None) for k in group.persisted]
        if records:
            self._append(group.group_id, records)
        group.persisted = {}


def load(coordinator: GroupCoordinator, logs: Iterable[PartitionLog], now: int) -> int:
    """Read every group and offset back from the logs into `coordinator`; returns the number
    of records read. Malformed records are skipped with a warning."""
    groups: dict[str, bytes | None] = {}
    offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata | None]] = {}
    #: KIP-848 groups: group id -> (record type, member id) -> (raw key, decoded value).
    consumer: dict[str, dict[tuple[int, str | None], tuple[bytes, Any]]] = {}
    #: Transactional offsets awaiting a marker: group id -> producer id -> partition -> offset.
    pending: dict[str, dict[int, dict[tuple[str, int], PendingOffset]]] = {}
    count = 0
    for plog in logs:
        # A marker only settles the pending offsets of its own partition.
        part_pending: dict[str, dict[int, dict[tuple[str, int], PendingOffset]]] = {}
        position = plog.log_start_offset
        end = plog.high_watermark
        while position < end:
            data = plog.read_bytes(position, _READ_CHUNK, max_offset=end)
            if not data:
                break
            for pos, header in iter_batches(data):
                if header.is_control:
                    _replay_marker(data, pos, header, offsets, part_pending)
                    position = header.next_offset
                    continue
                transactional = header.is_transactional and header.producer_id >= 0
                for record in iter_records(data, pos, header):
                    if record.key is None or record.offset < position:
                        continue
                    count += 1
                    try:
                        kind, key = decode_key(record.key)
                        if kind == "offset" and transactional and record.value is not None:
                            part_pending.setdefault(key.group, {}).setdefault(
                                header.producer_id, {})[(key.topic, key.partition)] = \
                                PendingOffset(decode_offset_value(record.value))
                        elif kind == "offset":
                            om = (decode_offset_value(record.value)
                                  if record.value is not None else None)
                            tp = (key.topic, key.partition)
                            offsets.setdefault(key.group, {})[tp] = om
                            for by_producer in part_pending.get(key.group, {}).values():
                                if tp in by_producer:
                                    by_producer[tp].superseded = True
                        elif kind == "group":
                            groups[key.group] = record.value
                        elif kind == "consumer":
                            gid, mid, value = decode_consumer_record(key, record.key,
                                                                     record.value)
                            slot = consumer.setdefault(gid, {})
                            if value is None:
                                slot.pop((key, mid), None)
                            else:
                                slot[(key, mid)] = (bytes(record.key), value)
                    except (ProtocolError, struct.error) as exc:
                        log.warning("skipping malformed group record offset=%d error=%s",
                                    record.offset, exc)
                position = header.next_offset
        for group_id, producers in part_pending.items():
            for producer_id, by_tp in producers.items():
                if by_tp:
                    pending.setdefault(group_id, {})[producer_id] = by_tp
    for group_id in set(groups) | set(offsets) | set(pending):
        value = groups.get(group_id)
        group = decode_group_value(group_id, value, now) if value is not None \
            else Group(group_id, now)
        group.offsets = {tp: om for tp, om in offsets.get(group_id, {}).items()
                         if om is not None}
        group.pending_txn_offsets = {pid: by_tp for pid, by_tp in
                                     pending.get(group_id, {}).items() if by_tp}
        if value is None and not group.offsets and not group.pending_txn_offsets:
            continue
        coordinator.load_group(group)
    if coordinator.consumer is not None:
        for group_id, found in consumer.items():
            if found:
                loaded = coordinator.consumer.load_group(group_id, found)
                persisted = consumer_group_records(loaded)
                for raw_key, _ in found.values():
                    persisted.setdefault(raw_key, b"")  # stale: tombstoned on next write
                loaded.persisted = persisted
    return count


def _replay_marker(data: bytes, pos: int, header: Any,
                   offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata | None]],
                   pending: dict[str, dict[int, dict[tuple[str, int], PendingOffset]]]) -> None:
    """A transaction marker read back from the log: the producer's pending offsets in this
    partition are committed or dropped (the groups of one partition are all read from it)."""
    try:
        records = list(iter_records(data, pos, header))
        control, _ = parse_control_record(records[0]) if records else (None, 0)
    except (ProtocolError, struct.error):
        return
    if control is None:
        return
    for group_id, by_producer in pending.items():
        found = by_producer.pop(header.producer_id, None)
        if found is None or control is not ControlType.COMMIT:
            continue
        for tp, entry in found.items():
            if not entry.superseded:
                offsets.setdefault(group_id, {})[tp] = entry.offset
