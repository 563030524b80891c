"""Transaction state in `__transaction_state`, in Kafka's own record format.

How this works
--------------
One record per transition, keyed by the transactional id: the key is int16 version 0 +
`TransactionLogKey`; the value int16 version 0 + `TransactionLogValue` (producer id and
epoch, timeout, status byte = `TransactionState.id`, the partitions grouped by topic - null
for Empty - and the last-update and start timestamps). Version 0 is what Kafka writes while
`transaction.version` is below 2, as here. A tombstone (null value) removes an expired id;
the topic is compacted, so only the latest record per id survives.

The transactional id lives in partition `abs(hashCode(id)) % partitions` (Java's
`String.hashCode`), `transaction.state.log.num.partitions` when the topic is created (then
the topic's own count). The topic is created on first need (FindCoordinator for a
transaction key) with Kafka's enforced configs: compact, uncompressed, no unclean leader
election, `transaction.state.log.min.isr` and `transaction.state.log.segment.bytes`.

`load` reads every partition from its log start, later records winning; the metadata comes
back without pending state and with `last_producer_epoch` -1, as Kafka's
`TransactionLog.readTxnRecordValue` leaves it.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from broker.groups.records import partition_for
from broker.transactions.state import TransactionMetadata, TransactionState, TxnTransit
from protocol.coordinator.transaction_log_key import TransactionLogKey
from protocol.coordinator.transaction_log_value import PartitionsSchema, TransactionLogValue
from protocol.errors import ErrorCode, ProtocolError
from protocol.records import build_batch, iter_batches, iter_records
from storage.errors import RecordTooLarge, StorageError
from storage.producer_state import AppendOrigin

if TYPE_CHECKING:
    from broker.metadata import TopicRegistry
    from storage import PartitionLog

log = logging.getLogger("odradek.transactions")

TRANSACTION_STATE_TOPIC = "__transaction_state"
KEY_VERSION = 0
VALUE_VERSION = 0
_I16 = struct.Struct(">h")
_READ_CHUNK = 1 << 20


def _encode(version: int, obj: TransactionLogKey | TransactionLogValue) -> bytes:
    return _I16.pack(version) + b"".join(bytes(c) for c in obj.encode(version))


def key_bytes(transactional_id: str) -> bytes:
    return _encode(KEY_VERSION, TransactionLogKey(transactional_id))


def value_bytes(transit: TxnTransit) -> bytes:
    partitions: list[PartitionsSchema] | None = None
    if transit.state is not TransactionState.EMPTY:
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(transit.partitions):
            by_topic.setdefault(topic, []).append(partition)
        partitions = [PartitionsSchema(topic, ids) for topic, ids in by_topic.items()]
    value = TransactionLogValue(
        producer_id=transit.producer_id, producer_epoch=transit.producer_epoch,
        transaction_timeout_ms=transit.txn_timeout_ms, transaction_status=transit.state.id,
        transaction_partitions=partitions,
        transaction_last_update_timestamp_ms=transit.txn_last_update_timestamp,
        transaction_start_timestamp_ms=transit.txn_start_timestamp)
    return _encode(VALUE_VERSION, value)


def decode_record(key: bytes, value: bytes | None) -> tuple[str, TransactionMetadata | None]:
    """(transactional id, metadata or None for a tombstone); `ProtocolError` otherwise."""
    key_version = _I16.unpack_from(key)[0]
    if key_version != KEY_VERSION:
        raise ProtocolError(f"Unknown version {key_version} from the transaction log message key")
    transactional_id = TransactionLogKey.decode(key[2:], 0).transactional_id
    if value is None:
        return transactional_id, None
    version = _I16.unpack_from(value)[0]
    if not TransactionLogValue.MIN_VERSION <= version <= TransactionLogValue.MAX_VERSION:
        raise ProtocolError(f"Unknown version {version} from the transaction log message value")
    v = TransactionLogValue.decode(value[2:], version)
    state = TransactionState.from_id(v.transaction_status)
    partitions: set[tuple[str, int]] = set()
    if state is not TransactionState.EMPTY:
        for schema in v.transaction_partitions or []:
            partitions.update((schema.topic, p) for p in schema.partition_ids)
    return transactional_id, TransactionMetadata(
        transactional_id, v.producer_id, prev_producer_id=v.previous_producer_id,
        next_producer_id=v.next_producer_id, producer_epoch=v.producer_epoch,
        txn_timeout_ms=v.transaction_timeout_ms, state=state, partitions=partitions,
        txn_start_timestamp=v.transaction_start_timestamp_ms,
        txn_last_update_timestamp=v.transaction_last_update_timestamp_ms)


class TransactionLogStore:
    """A `TxnStore` appending to `__transaction_state` in the broker's topic registry."""

    def __init__(self, topics: TopicRegistry, clock: Callable[[], int]) -> None:
        self._topics = topics
        self._clock = clock

    def available(self) -> bool:
        return self._topics.get(TRANSACTION_STATE_TOPIC) is not None

    def partition_for(self, transactional_id: str) -> int | None:
        topic = self._topics.get(TRANSACTION_STATE_TOPIC)
        return None if topic is None else partition_for(transactional_id, topic.partitions)

    def write(self, transactional_id: str, transit: TxnTransit | None) -> ErrorCode:
        """Append one record; Kafka's `appendTransactionToLog` error mapping on failure."""
        partition = self.partition_for(transactional_id)
        plog = None if partition is None else self._topics.log(TRANSACTION_STATE_TOPIC, partition)
        if plog is None:
            return ErrorCode.NOT_COORDINATOR
        value = None if transit is None else value_bytes(transit)
        batch = build_batch([(key_bytes(transactional_id), value)], base_timestamp=self._clock())
        try:
            plog.append(batch, validated=True, origin=AppendOrigin.COORDINATOR)
        except RecordTooLarge as exc:
            log.error("transaction record too large transactional_id=%s error=%s",
                      transactional_id, exc)
            return ErrorCode.UNKNOWN_SERVER_ERROR
        except StorageError as exc:
            log.warning("transaction log append failed transactional_id=%s error=%s",
                        transactional_id, exc)
            return ErrorCode.NOT_COORDINATOR
        return ErrorCode.NONE

    def logs(self) -> list[PartitionLog]:
        topic = self._topics.get(TRANSACTION_STATE_TOPIC)
        if topic is None:
            return []
        return [plog for p in range(topic.partitions)
                if (plog := self._topics.log(TRANSACTION_STATE_TOPIC, p)) is not None]


def load(logs: list[PartitionLog]) -> tuple[dict[str, TransactionMetadata], int]:
    """Every transactional id's latest metadata in `logs`, and the number of records read.
    Malformed records are skipped with a warning."""
    found: dict[str, TransactionMetadata | None] = {}
    count = 0
    for plog in logs:
        for offset, key, value in _records(plog):
            count += 1
            try:
                txn_id, meta = decode_record(key, value)
            except (ProtocolError, ValueError, struct.error) as exc:
                log.warning("skipping malformed transaction record offset=%d error=%s",
                            offset, exc)
                continue
            found[txn_id] = meta
    return {k: v for k, v in found.items() if v is not None}, count


def _records(plog: PartitionLog) -> Iterator[tuple[int, bytes, bytes | None]]:
    position = plog.log_start_offset
    end = plog.high_watermark
    while position < end:
        data = plog.read_bytes(position, _READ_CHUNK, max_offset=end)
        if not data:
            break
        for pos, header in iter_batches(data):
            if not header.is_control:
                for record in iter_records(data, pos, header):
                    if record.key is not None and record.offset >= position:
                        yield record.offset, bytes(record.key), \
                            None if record.value is None else bytes(record.value)
            position = header.next_offset
