"""Idempotent producer state of one partition: Kafka's `ProducerStateManager`.

How this works
--------------
An idempotent producer stamps every batch with its producer id, epoch and the sequence
number of its first record. Per partition the broker remembers, for each producer id, the
epoch and the last `NUM_BATCHES_TO_RETAIN` (5) batches it appended (their first and last
sequence, last offset and timestamp), because a producer keeps at most 5 requests in flight.
Before an append from a client (`check_client_batch`):

* a batch whose epoch and exact sequence range match one of the retained batches is a
  **duplicate** (a retry whose first answer was lost): it is not appended again and the
  client is answered with the original offsets (`BatchMetadata`);
* an epoch lower than the producer's is fenced: INVALID_PRODUCER_EPOCH;
* with the producer's current epoch, the first sequence must follow the last one
  (`last + 1`, wrapping from 2**31-1 to 0), else OUT_OF_ORDER_SEQUENCE_NUMBER;
* a new (higher) epoch must start at sequence 0, else OUT_OF_ORDER_SEQUENCE_NUMBER;
* a producer id the partition does not know is accepted with any sequence (Kafka 4.x's
  `ProducerAppendInfo.checkSequence`: its state may have expired, or been removed with the
  records, so UNKNOWN_PRODUCER_ID is no longer answered);
* a non-transactional batch while the producer has a transaction open here: INVALID_TXN_STATE.

After the append, `apply` records the batch. Batches read back from the log (recovery,
truncation) go through the same code with origin REPLICATION: no sequence checks, and an
old epoch is only logged, as Kafka's followers do. Transaction markers (control batches)
close the producer's open transaction and raise its coordinator epoch; a marker from an
older coordinator epoch is TRANSACTION_COORDINATOR_FENCED.

**Transactions** (Kafka's `ongoingTxns`/`unreplicatedTxns`): the first transactional
batch of a producer opens a transaction at its offset (`ProducerAppend.started`, kept in
`_ongoing`, first offset -> producer id); a marker of a producer with an open transaction
completes it (`ProducerAppend.completed`, a `CompletedTxn`). The log then records an
aborted one in the transaction index with `last_stable_offset_of` and calls
`complete_txn`, which keeps it as unstable until the high watermark passes its marker
(`on_high_watermark_updated`; at once with one replica). `first_unstable_offset` is the
lowest first offset of both. Open transactions are restored from a snapshot's
`current_txn_first_offset` and cleared by truncation.

**Snapshots** are Kafka's `<20-digit offset>.snapshot` files in the partition directory:
int16 version (1), uint32 CRC-32C of everything after it, int32 entry count, then per
producer int64 id, int16 epoch, int32 last sequence, int64 last offset (-1: no batch),
int32 offset delta, int64 timestamp, int32 coordinator epoch, int64 first offset of the
open transaction (-1: none). A snapshot at offset N holds the state after every batch
below N; only each producer's last batch is kept, as Kafka does. The log takes one at each
segment roll (named after the new segment) and at a clean shutdown; on load it restores the
newest snapshot not beyond the log end and replays the batches after it
(`PartitionLog._rebuild_producer_state`, Kafka's `UnifiedLog.rebuildProducerState`), so an
unclean stop loses nothing. A snapshot that fails its CRC or schema is deleted and the next
older one is tried.

Producers idle for `producer.id.expiration.ms` (by their last batch timestamp) and without
an open transaction are dropped by `remove_expired_producers` and ignored when a snapshot
is loaded.

Not thread-safe: `PartitionLog` calls it under its lock.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from crc32c import crc32c

from protocol.records import NO_PRODUCER_EPOCH, NO_SEQUENCE, NO_TIMESTAMP
from storage.errors import StorageError

__all__ = [
    "DEFAULT_PRODUCER_ID_EXPIRATION_MS",
    "NUM_BATCHES_TO_RETAIN",
    "PRODUCER_SNAPSHOT_FILE_SUFFIX",
    "AppendOrigin",
    "BatchMetadata",
    "CompletedTxn",
    "CorruptSnapshot",
    "InvalidProducerEpoch",
    "InvalidTxnState",
    "OutOfOrderSequence",
    "ProducerStateEntry",
    "ProducerStateManager",
    "TransactionCoordinatorFenced",
    "read_snapshot",
    "snapshot_file_name",
    "write_snapshot",
]

log = logging.getLogger("odradek.producer_state")

NUM_BATCHES_TO_RETAIN = 5
PRODUCER_SNAPSHOT_FILE_SUFFIX = ".snapshot"
DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000  # producer.id.expiration.ms
PRODUCER_SNAPSHOT_VERSION = 1

_INT32_MAX = 2**31 - 1
_SNAPSHOT_HEADER = struct.Struct(">hIi")  # version, crc, entry count
_SNAPSHOT_ENTRY = struct.Struct(">qhiqiqiq")
_CRC_OFFSET = 2
_ENTRIES_OFFSET = 6
_SNAPSHOT_FILE = re.compile(r"^(\d{20})\.snapshot$")


class OutOfOrderSequence(StorageError):
    """A sequence that does not follow the producer's last one. OUT_OF_ORDER_SEQUENCE_NUMBER."""

    error_code = 45


class InvalidProducerEpoch(StorageError):
    """An epoch older than the producer's current one. INVALID_PRODUCER_EPOCH."""

    error_code = 47


class InvalidTxnState(StorageError):
    """A write that contradicts the producer's transaction state. INVALID_TXN_STATE."""

    error_code = 48


class TransactionCoordinatorFenced(StorageError):
    """A marker from a coordinator epoch older than the partition last saw.
    TRANSACTION_COORDINATOR_FENCED."""

    error_code = 52


class CompletedTxn(NamedTuple):
    """A transaction a COMMIT or ABORT marker completed (Kafka's `CompletedTxn`):
    its producer, its first offset and the marker's offset."""

    producer_id: int
    first_offset: int
    last_offset: int
    is_aborted: bool


class CorruptSnapshot(StorageError):
    """A producer snapshot file that fails its CRC or schema check."""


class AppendOrigin(Enum):
    """Who appends (Kafka's `AppendOrigin`): what is checked depends on it."""

    CLIENT = "client"  # full checks: duplicates, epochs, sequences
    COORDINATOR = "coordinator"  # epochs only (group/transaction coordinators' own writes)
    REPLICATION = "replication"  # nothing fails: batches already in a log


def increment_sequence(sequence: int, increment: int) -> int:
    if sequence > _INT32_MAX - increment:
        return increment - (_INT32_MAX - sequence) - 1
    return sequence + increment


def decrement_sequence(sequence: int, decrement: int) -> int:
    """Kafka's `DefaultRecordBatch.decrementSequence`: wraps below 0 to 2**31-1."""
    if sequence < decrement:
        return _INT32_MAX - (decrement - sequence) + 1
    return sequence - decrement


def in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == _INT32_MAX)


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    """One retained batch of a producer (Kafka's `BatchMetadata`)."""

    last_seq: int
    last_offset: int
    offset_delta: int
    timestamp: int

    @property
    def first_seq(self) -> int:
        return decrement_sequence(self.last_seq, self.offset_delta)

    @property
    def first_offset(self) -> int:
        return self.last_offset - self.offset_delta


@dataclass(slots=True)
class ProducerStateEntry:
    """What a partition knows of one producer id (Kafka's `ProducerStateEntry`)."""

    producer_id: int
    producer_epoch: int = NO_PRODUCER_EPOCH
    coordinator_epoch: int = -1
    last_timestamp: int = NO_TIMESTAMP
    current_txn_first_offset: int | None = None
    batches: deque[BatchMetadata] = field(default_factory=deque)

    @property
    def is_empty(self) -> bool:
        return not self.batches

    @property
    def first_seq(self) -> int:
        return self.batches[0].first_seq if self.batches else NO_SEQUENCE

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    @property
    def last_data_offset(self) -> int:
        return self.batches[-1].last_offset if self.batches else -1

    @property
    def last_offset_delta(self) -> int:
        return self.batches[-1].offset_delta if self.batches else 0

    def copy(self, *, with_batches: bool = True) -> ProducerStateEntry:
        return ProducerStateEntry(
            self.producer_id,
            self.producer_epoch,
            self.coordinator_epoch,
            self.last_timestamp,
            self.current_txn_first_offset,
            deque(self.batches) if with_batches else deque(),
        )

    def maybe_update_epoch(self, epoch: int) -> None:
        if self.producer_epoch != epoch:
            self.batches.clear()
            self.producer_epoch = epoch

    def add_batch(self, epoch: int, last_seq: int, last_offset: int, offset_delta: int,
                  timestamp: int) -> None:
        self.maybe_update_epoch(epoch)
        if len(self.batches) == NUM_BATCHES_TO_RETAIN:
            self.batches.popleft()
        self.batches.append(BatchMetadata(last_seq, last_offset, offset_delta, timestamp))
        self.last_timestamp = timestamp

    def find_duplicate(self, epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
        """The retained batch with exactly this sequence range in this epoch, if any."""
        if epoch != self.producer_epoch:
            return None
        for batch in self.batches:
            if batch.last_seq == last_seq and batch.first_seq == first_seq:
                return batch
        return None

    def merge(self, other: ProducerStateEntry) -> None:
        """Kafka's `ProducerStateEntry.update(nextEntry)`: take `other`'s state, keeping
        our retained batches when the epoch did not change."""
        self.maybe_update_epoch(other.producer_epoch)
        for batch in other.batches:
            if len(self.batches) == NUM_BATCHES_TO_RETAIN:
                self.batches.popleft()
            self.batches.append(batch)
        self.coordinator_epoch = other.coordinator_epoch
        self.current_txn_first_offset = other.current_txn_first_offset
        self.last_timestamp = other.last_timestamp


@dataclass(frozen=True, slots=True)
class DataBatch:
    """The producer fields of one data or control batch, with its final offsets."""

    producer_id: int
    producer_epoch: int
    base_sequence: int
    last_sequence: int
    first_offset: int
    last_offset: int
    max_timestamp: int
    is_transactional: bool
    is_control: bool = False
    #: For a transaction marker: (is commit, coordinator epoch).
    marker: tuple[bool, int] | None = None


class ProducerAppend:
    """Pending changes to the producer entries of one append (Kafka's `ProducerAppendInfo`,
    for every producer of the append at once). Nothing changes until `commit`."""

    def __init__(self, manager: ProducerStateManager, origin: AppendOrigin) -> None:
        self._manager = manager
        self._origin = origin
        self._updated: dict[int, tuple[ProducerStateEntry, ProducerStateEntry]] = {}
        #: (producer id, first offset) of each transaction a batch of this append began.
        self.started: list[tuple[int, int]] = []
        #: The transactions a marker of this append completed, in marker order.
        self.completed: list[CompletedTxn] = []

    def _entries(self, producer_id: int) -> tuple[ProducerStateEntry, ProducerStateEntry]:
        pair = self._updated.get(producer_id)
        if pair is None:
            current = self._manager.entry(producer_id) or ProducerStateEntry(producer_id)
            pair = (current, current.copy(with_batches=False))
            self._updated[producer_id] = pair
        return pair

    def append(self, batch: DataBatch) -> None:
        current, updated = self._entries(batch.producer_id)
        tp = self._manager.topic_partition
        if batch.is_control:
            if batch.marker is None:
                return  # an empty control batch: the whole transaction was cleaned away
            commit, coordinator_epoch = batch.marker
            self._check_epoch(updated, batch.producer_epoch, batch.first_offset)
            if updated.coordinator_epoch > coordinator_epoch:
                message = (
                    f"Invalid coordinator epoch for producerId {batch.producer_id} at offset "
                    f"{batch.first_offset} in partition {tp}: {coordinator_epoch} (zombie), "
                    f"{updated.coordinator_epoch} (current)")
                if self._origin is not AppendOrigin.REPLICATION:
                    raise TransactionCoordinatorFenced(message)
                log.info("%s", message)
            if updated.current_txn_first_offset is not None:
                # A marker without data here (no open transaction) completes nothing.
                self.completed.append(CompletedTxn(
                    batch.producer_id, updated.current_txn_first_offset, batch.first_offset,
                    not commit))
            updated.maybe_update_epoch(batch.producer_epoch)
            updated.coordinator_epoch = coordinator_epoch
            updated.current_txn_first_offset = None
            updated.last_timestamp = batch.max_timestamp
            return
        self._check_epoch(updated, batch.producer_epoch, batch.first_offset)
        if self._origin is AppendOrigin.CLIENT:
            self._check_sequence(current, updated, batch)
        updated.add_batch(batch.producer_epoch, batch.last_sequence, batch.last_offset,
                          batch.last_offset - batch.first_offset, batch.max_timestamp)
        if updated.current_txn_first_offset is not None and not batch.is_transactional:
            raise InvalidTxnState(
                f"Expected transactional write from producer {batch.producer_id} at offset "
                f"{batch.first_offset} in partition {tp}")
        if updated.current_txn_first_offset is None and batch.is_transactional:
            updated.current_txn_first_offset = batch.first_offset
            self.started.append((batch.producer_id, batch.first_offset))

    def _check_epoch(self, updated: ProducerStateEntry, epoch: int, offset: int) -> None:
        if epoch < updated.producer_epoch:
            message = (
                f"Epoch of producer {updated.producer_id} at offset {offset} in "
                f"{self._manager.topic_partition} is {epoch}, which is smaller than the last "
                f"seen epoch {updated.producer_epoch}")
            if self._origin is AppendOrigin.REPLICATION:
                log.warning("%s", message)
            else:
                raise InvalidProducerEpoch(message)

    def _check_sequence(self, current: ProducerStateEntry, updated: ProducerStateEntry,
                        batch: DataBatch) -> None:
        tp = self._manager.topic_partition
        epoch, first_seq, offset = batch.producer_epoch, batch.base_sequence, batch.first_offset
        if epoch != updated.producer_epoch:
            if first_seq != 0 and updated.producer_epoch != NO_PRODUCER_EPOCH:
                raise OutOfOrderSequence(
                    f"Invalid sequence number for new epoch of producer {batch.producer_id} at "
                    f"offset {offset} in partition {tp}: {epoch} (request epoch), {first_seq} "
                    f"(seq. number), {updated.producer_epoch} (current producer epoch)")
            return
        if not updated.is_empty:
            current_last_seq = updated.last_seq
        elif epoch == current.producer_epoch:
            current_last_seq = current.last_seq
        else:
            current_last_seq = NO_SEQUENCE
        # No epoch known (state expired, or removed with its records): any sequence goes.
        if current.producer_epoch != NO_PRODUCER_EPOCH and not in_sequence(current_last_seq,
                                                                             first_seq):
            raise OutOfOrderSequence(
                f"Out of order sequence number for producer {batch.producer_id} at offset "
                f"{offset} in partition {tp}: {first_seq} (incoming seq. number), "
                f"{current_last_seq} (current end sequence number)")

    def commit(self) -> list[CompletedTxn]:
        """Apply the producer updates and register the transactions begun. Returns the
        completed transactions: the caller records each (`last_stable_offset_of`, the
        transaction index) and then calls `complete_txn`, as Kafka's `UnifiedLog` does."""
        manager = self._manager
        for producer_id, (_, updated) in self._updated.items():
            manager.update(producer_id, updated)
        for producer_id, first_offset in self.started:
            manager._ongoing[first_offset] = producer_id
        return self.completed


class ProducerStateManager:
    """The producer entries and snapshot files of one partition directory."""

    def __init__(
        self,
        dir: str | os.PathLike[str],
        *,
        topic_partition: str = "",
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    ) -> None:
        """Describe the state of `dir`; touches no file until `load_snapshots`."""
        self.dir = os.fspath(dir)
        self.topic_partition = topic_partition or os.path.basename(self.dir)
        self.producer_id_expiration_ms = producer_id_expiration_ms
        self._producers: dict[int, ProducerStateEntry] = {}
        #: Open transactions: first offset -> producer id (Kafka's `ongoingTxns`).
        self._ongoing: dict[int, int] = {}
        #: Completed transactions whose marker is not below the high watermark yet:
        #: first offset -> (producer id, marker offset) (Kafka's `unreplicatedTxns`).
        self._unreplicated: dict[int, tuple[int, int]] = {}
        self._snapshots: dict[int, str] = {}
        self._last_map_offset = 0
        self._last_snap_offset = 0

    # -- queries ---------------------------------------------------------------------

    def entry(self, producer_id: int) -> ProducerStateEntry | None:
        return self._producers.get(producer_id)

    @property
    def producers(self) -> dict[int, ProducerStateEntry]:
        """The active producers (a copy)."""
        return dict(self._producers)

    def __len__(self) -> int:
        return len(self._producers)

    @property
    def is_empty(self) -> bool:
        return not self._producers and not self._unreplicated

    # -- transactions ------------------------------------------------------------------

    def ongoing_transactions(self) -> dict[int, int]:
        """producer id -> first offset of each open transaction."""
        return {pid: first for first, pid in sorted(self._ongoing.items())}

    @property
    def has_unstable(self) -> bool:
        """Whether any transaction is open or not yet below the high watermark."""
        return bool(self._ongoing or self._unreplicated)

    def first_undecided_offset(self) -> int | None:
        """The first offset of the oldest open transaction (None: none is open)."""
        return min(self._ongoing) if self._ongoing else None

    def first_unstable_offset(self, high_watermark: int) -> int | None:
        """Kafka's `firstUnstableOffset`: the first offset of the oldest transaction that
        is open, or completed by a marker at or above `high_watermark`."""
        if self._unreplicated:
            self.on_high_watermark_updated(high_watermark)
        if not self._ongoing and not self._unreplicated:
            return None
        return min(min(self._ongoing, default=high_watermark),
                   min(self._unreplicated, default=high_watermark))

    def on_high_watermark_updated(self, high_watermark: int) -> None:
        """Forget the completed transactions whose marker is below `high_watermark`."""
        self._remove_unreplicated(high_watermark)

    def _remove_unreplicated(self, offset: int) -> None:
        for first in [f for f, (_, last) in self._unreplicated.items() if last < offset]:
            del self._unreplicated[first]

    def last_stable_offset_of(self, completed: CompletedTxn) -> int:
        """Kafka's `lastStableOffset(completedTxn)`: the LSO once `completed` is done, the
        first offset of the oldest open transaction of another producer, else the
        marker's offset + 1 (recorded in the transaction index)."""
        others = [first for first, pid in self._ongoing.items()
                  if pid != completed.producer_id]
        return min(others) if others else completed.last_offset + 1

    def complete_txn(self, completed: CompletedTxn) -> None:
        """Close `completed` (it stays unstable until the high watermark passes its marker)."""
        if self._ongoing.pop(completed.first_offset, None) is None:
            log.warning("completed transaction %s on partition %s which was not started",
                        completed, self.topic_partition)
        self._unreplicated[completed.first_offset] = (completed.producer_id,
                                                      completed.last_offset)

    @property
    def map_end_offset(self) -> int:
        """The offset up to which batches have been applied (exclusive)."""
        return self._last_map_offset

    def snapshot_offsets(self) -> list[int]:
        return sorted(self._snapshots)

    def latest_snapshot_offset(self) -> int | None:
        return max(self._snapshots) if self._snapshots else None

    def has_ongoing_transaction(self, producer_id: int, epoch: int) -> bool:
        entry = self._producers.get(producer_id)
        return (entry is not None and entry.current_txn_first_offset is not None
                and entry.producer_epoch == epoch)

    # -- appends ---------------------------------------------------------------------

    def prepare(self, origin: AppendOrigin) -> ProducerAppend:
        return ProducerAppend(self, origin)

    def find_duplicate(self, producer_id: int, epoch: int, first_seq: int,
                       last_seq: int) -> BatchMetadata | None:
        entry = self._producers.get(producer_id)
        return None if entry is None else entry.find_duplicate(epoch, first_seq, last_seq)

    def update(self, producer_id: int, updated: ProducerStateEntry) -> None:
        current = self._producers.get(producer_id)
        if current is None:
            self._producers[producer_id] = updated
        else:
            current.merge(updated)

    def update_map_end_offset(self, offset: int) -> None:
        self._last_map_offset = offset

    def remove_expired_producers(self, now_ms: int, expiration_ms: int | None = None) -> int:
        """Drop producers idle for `producer.id.expiration.ms`; returns how many."""
        if expiration_ms is not None:
            self.producer_id_expiration_ms = expiration_ms
        expired = [pid for pid, e in self._producers.items() if self._is_expired(now_ms, e)]
        for pid in expired:
            del self._producers[pid]
        return len(expired)

    def _is_expired(self, now_ms: int, entry: ProducerStateEntry) -> bool:
        return (entry.current_txn_first_offset is None
                and now_ms - entry.last_timestamp >= self.producer_id_expiration_ms)

    # -- snapshots -------------------------------------------------------------------

    def snapshot_path(self, offset: int) -> str:
        return os.path.join(self.dir, snapshot_file_name(offset))

    def load_snapshots(self) -> None:
        """Find the snapshot files in the directory."""
        self._snapshots = {}
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return
        for name in names:
            if name.endswith(PRODUCER_SNAPSHOT_FILE_SUFFIX + ".tmp"):
                try:  # a snapshot write cut short by a crash
                    os.unlink(os.path.join(self.dir, name))
                except OSError:
                    pass
                continue
            m = _SNAPSHOT_FILE.match(name)
            if m is not None and os.path.isfile(os.path.join(self.dir, name)):
                self._snapshots[int(m.group(1))] = os.path.join(self.dir, name)

    def take_snapshot(self, *, sync: bool = True) -> str | None:
        """Write a snapshot at the map end offset unless one exists there already."""
        if self._last_map_offset <= self._last_snap_offset:
            return None
        path = self.snapshot_path(self._last_map_offset)
        write_snapshot(path, self._producers.values(), sync=sync)
        self._snapshots[self._last_map_offset] = path
        self._last_snap_offset = self._last_map_offset
        return path

    def remove_stray_snapshots(self, segment_base_offsets: Iterable[int]) -> None:
        """Kafka's `removeStraySnapshots`: delete snapshots that match no segment, except
        the newest stray one when it lies beyond every segment (the clean-shutdown one)."""
        bases = set(segment_base_offsets)
        self.load_snapshots()
        latest_stray: int | None = None
        for offset in sorted(self._snapshots):
            if offset in bases:
                continue
            if latest_stray is not None:
                self._delete_snapshot(latest_stray)
            latest_stray = offset
        if latest_stray is not None and bases and latest_stray < max(bases):
            self._delete_snapshot(latest_stray)

    def delete_snapshot(self, offset: int) -> None:
        self._delete_snapshot(offset)

    def delete_snapshots_before(self, offset: int) -> None:
        for snap in [o for o in self._snapshots if o < offset]:
            self._delete_snapshot(snap)

    def _delete_snapshot(self, offset: int) -> None:
        path = self._snapshots.pop(offset, None)
        if path is not None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def truncate_and_reload(self, log_start_offset: int, log_end_offset: int,
                            now_ms: int) -> None:
        """Drop snapshots outside (log start, log end]; reload from the newest one left
        when the state does not end at the log end offset."""
        for offset in list(self._snapshots):
            if offset > log_end_offset or offset <= log_start_offset:
                self._delete_snapshot(offset)
        if log_end_offset != self._last_map_offset:
            self._producers.clear()
            self._ongoing.clear()
            self._unreplicated.clear()
            self._load_from_snapshot(log_start_offset, now_ms)
        else:
            self.on_log_start_offset_incremented(log_start_offset)

    def _load_from_snapshot(self, log_start_offset: int, now_ms: int) -> None:
        while self._snapshots:
            offset = max(self._snapshots)
            path = self._snapshots[offset]
            try:
                entries = read_snapshot(path)
            except (CorruptSnapshot, OSError) as e:
                log.warning("failed to load producer snapshot %s: %s", path, e)
                self._delete_snapshot(offset)
                continue
            for entry in entries:
                if not self._is_expired(now_ms, entry):
                    self._load_entry(entry)
            self._last_snap_offset = self._last_map_offset = offset
            return
        self._last_snap_offset = self._last_map_offset = log_start_offset

    def _load_entry(self, entry: ProducerStateEntry) -> None:
        """Kafka's `loadProducerEntry`: the entry, and its open transaction if any."""
        self._producers[entry.producer_id] = entry
        if entry.current_txn_first_offset is not None:
            self._ongoing[entry.current_txn_first_offset] = entry.producer_id

    def load_at(self, offset: int, now_ms: int) -> None:
        """Restore the newest snapshot at or below `offset` without deleting any file (a
        scratch manager rebuilding transaction indexes uses it). Corrupt ones are skipped;
        with none, the state starts empty at offset 0."""
        self.load_snapshots()
        self._producers.clear()
        self._ongoing.clear()
        self._unreplicated.clear()
        for snap in sorted((o for o in self._snapshots if o <= offset), reverse=True):
            try:
                entries = read_snapshot(self._snapshots[snap])
            except (CorruptSnapshot, OSError):
                continue
            for entry in entries:
                if not self._is_expired(now_ms, entry):
                    self._load_entry(entry)
            self._last_snap_offset = self._last_map_offset = snap
            return
        self._last_snap_offset = self._last_map_offset = 0

    def on_log_start_offset_incremented(self, log_start_offset: int) -> None:
        self._remove_unreplicated(log_start_offset)
        if self._last_map_offset < log_start_offset:
            self._last_map_offset = log_start_offset
        latest = self.latest_snapshot_offset()
        self._last_snap_offset = log_start_offset if latest is None else latest

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Forget every producer and snapshot; the state restarts at `offset`."""
        self._producers.clear()
        self._ongoing.clear()
        self._unreplicated.clear()
        for snap in list(self._snapshots):
            self._delete_snapshot(snap)
        self._last_snap_offset = 0
        self._last_map_offset = offset


def snapshot_file_name(offset: int) -> str:
    return f"{offset:020d}{PRODUCER_SNAPSHOT_FILE_SUFFIX}"


def encode_snapshot(entries: Iterable[ProducerStateEntry]) -> bytes:
    body = bytearray()
    count = 0
    for e in entries:
        body += _SNAPSHOT_ENTRY.pack(
            e.producer_id, e.producer_epoch, e.last_seq, e.last_data_offset,
            e.last_offset_delta, e.last_timestamp, e.coordinator_epoch,
            -1 if e.current_txn_first_offset is None else e.current_txn_first_offset)
        count += 1
    out = bytearray(_SNAPSHOT_HEADER.pack(PRODUCER_SNAPSHOT_VERSION, 0, count))
    out += body
    struct.pack_into(">I", out, _CRC_OFFSET, crc32c(bytes(out[_ENTRIES_OFFSET:])))
    return bytes(out)


def decode_snapshot(data: bytes) -> list[ProducerStateEntry]:
    """Parse a snapshot; `CorruptSnapshot` for a bad version, CRC or layout."""
    if len(data) < _SNAPSHOT_HEADER.size:
        raise CorruptSnapshot("Snapshot failed schema validation: file too short")
    version, crc, count = _SNAPSHOT_HEADER.unpack_from(data)
    if version != PRODUCER_SNAPSHOT_VERSION:
        raise CorruptSnapshot(f"Snapshot contained an unknown file version {version}")
    computed = crc32c(data[_ENTRIES_OFFSET:])
    if crc != computed:
        raise CorruptSnapshot(
            f"Snapshot is corrupt (CRC is no longer valid). Stored crc: {crc}. "
            f"Computed crc: {computed}")
    if count < 0 or len(data) != _SNAPSHOT_HEADER.size + count * _SNAPSHOT_ENTRY.size:
        raise CorruptSnapshot(
            f"Snapshot failed schema validation: {count} entries in {len(data)} bytes")
    entries = []
    for i in range(count):
        pid, epoch, seq, offset, delta, ts, coordinator_epoch, txn_first = (
            _SNAPSHOT_ENTRY.unpack_from(data, _SNAPSHOT_HEADER.size + i * _SNAPSHOT_ENTRY.size))
        entry = ProducerStateEntry(pid, epoch, coordinator_epoch, ts,
                                   txn_first if txn_first >= 0 else None)
        if offset >= 0:
            entry.batches.append(BatchMetadata(seq, offset, delta, ts))
        entries.append(entry)
    return entries


def write_snapshot(path: str, entries: Iterable[ProducerStateEntry], *, sync: bool = True
                   ) -> None:
    """Write a snapshot file (via a temporary file and a rename, so that a crash never
    leaves a torn one under the final name)."""
    data = encode_snapshot(entries)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def read_snapshot(path: str) -> list[ProducerStateEntry]:
    with open(path, "rb") as f:
        return decode_snapshot(f.read())
