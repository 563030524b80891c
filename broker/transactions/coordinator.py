"""The transaction coordinator: a synchronous state machine with an injected clock.

How this works
--------------
`TransactionCoordinator` keeps a `TransactionMetadata` (`broker.transactions.state`) per
transactional id and answers the transaction APIs with Kafka's rules (the Scala
`TransactionCoordinator` and `TransactionStateManager` of Kafka 4.x, transactions v1).
Every answer is one synchronous call that returns Kafka error codes; nothing here sleeps,
reads a clock of its own or touches trio.

Persistence goes through a `TxnStore` (`broker.transactions.log.TransactionLogStore` writes
Kafka's records to `__transaction_state`): a transition is prepared, written, and only then
installed, so what is in memory is always what the log says. A store that is not available
(`__transaction_state` does not exist yet) makes the coordinator answer NOT_COORDINATOR, as
Kafka does for transactional ids whose partition it does not own.

Ending a transaction (EndTxn, an epoch fence, a timeout) writes PrepareCommit/PrepareAbort,
then a COMMIT/ABORT marker to every partition of the transaction through the `MarkerSink`
(one broker: markers are local appends, there is no WriteTxnMarkers round trip), then
CompleteCommit/CompleteAbort. All of it happens before EndTxn is answered, so a client never
sees CONCURRENT_TRANSACTIONS from its own commit. A marker that cannot be written now (a
storage error) leaves the transaction in PrepareCommit/PrepareAbort with the partitions still
missing a marker; `complete_pending` (the service's timer, and start-up recovery) retries.

Timers (`abort_timed_out`, `expire_transactional_ids`) are called by the service every
`transaction.abort.timed.out.transaction.cleanup.interval.ms` and
`transaction.remove.expired.transaction.cleanup.interval.ms`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from broker.transactions.state import (
    EXPIRABLE,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    IllegalTransition,
    TopicPartition,
    TransactionMetadata,
    TransactionState,
    TransitionError,
    TxnTransit,
    is_epoch_exhausted,
)
from protocol.errors import ErrorCode

log = logging.getLogger("odradek.transactions")

S = TransactionState


class TxnStore(Protocol):
    """Where transitions are persisted (Kafka's `__transaction_state`)."""

    def available(self) -> bool:
        """Whether the coordinator owns the transaction state (the topic exists)."""
        ...

    def write(self, transactional_id: str, transit: TxnTransit | None) -> ErrorCode:
        """Append the transit (None: a tombstone); the error code to answer on failure."""
        ...


class MarkerSink(Protocol):
    def write_marker(self, tp: TopicPartition, producer_id: int, producer_epoch: int,
                     coordinator_epoch: int, commit: bool) -> bool:
        """Write one marker; True when done (or nothing to do), False to retry later."""
        ...


class MemoryTxnStore:
    """A `TxnStore` that keeps the last record per id (unit tests); `fail` fails writes."""

    def __init__(self) -> None:
        self.records: dict[str, TxnTransit | None] = {}
        self.writes: list[tuple[str, TransactionState | None]] = []
        self.fail: ErrorCode | None = None
        self.ready = True

    def available(self) -> bool:
        return self.ready

    def write(self, transactional_id: str, transit: TxnTransit | None) -> ErrorCode:
        if self.fail is not None:
            return self.fail
        self.records[transactional_id] = transit
        self.writes.append((transactional_id, None if transit is None else transit.state))
        return ErrorCode.NONE


@dataclass(slots=True)
class TxnConfig:
    max_timeout_ms: int = 900_000
    transactional_id_expiration_ms: int = 604_800_000
    abort_timed_out_interval_ms: int = 10_000
    remove_expired_interval_ms: int = 3_600_000

    @classmethod
    def from_broker(cls, config: Any) -> TxnConfig:
        return cls(
            max_timeout_ms=config["transaction.max.timeout.ms"],
            transactional_id_expiration_ms=config["transactional.id.expiration.ms"],
            abort_timed_out_interval_ms=config[
                "transaction.abort.timed.out.transaction.cleanup.interval.ms"],
            remove_expired_interval_ms=config[
                "transaction.remove.expired.transaction.cleanup.interval.ms"],
        )


@dataclass(frozen=True, slots=True)
class InitResult:
    error: ErrorCode
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


class TransactionCoordinator:
    def __init__(self, config: TxnConfig, clock: Callable[[], int],
                 generate_producer_id: Callable[[], int], store: TxnStore,
                 markers: MarkerSink) -> None:
        self.config = config
        self.clock = clock
        self.generate_producer_id = generate_producer_id
        self.store = store
        self.markers = markers
        self.txns: dict[str, TransactionMetadata] = {}
        #: Kafka's coordinator epoch is the leader epoch of the `__transaction_state`
        #: partition; one broker leads every partition at epoch 0.
        self.coordinator_epoch = 0

    # -- persistence ------------------------------------------------------------------

    def _persist(self, meta: TransactionMetadata, transit: TxnTransit) -> ErrorCode:
        error = self.store.write(meta.transactional_id, transit)
        if error is not ErrorCode.NONE:
            log.info("transaction log write failed transactional_id=%s state=%s error=%s",
                     meta.transactional_id, transit.state.display, error.name)
            meta.abort_transition()
            return error
        meta.complete_transition(transit)
        return ErrorCode.NONE

    def load(self, loaded: Iterable[tuple[str, TransactionMetadata]]) -> None:
        """Install metadata read back from the log (no pending states)."""
        for transactional_id, meta in loaded:
            self.txns[transactional_id] = meta

    # -- InitProducerId ---------------------------------------------------------------

    def init_producer_id(self, transactional_id: str, timeout_ms: int,
                         expected: tuple[int, int] | None) -> InitResult:
        """InitProducerId with a transactional id (`expected`: v3+ producer id and epoch)."""
        if transactional_id == "":
            return InitResult(ErrorCode.INVALID_REQUEST)
        if not 0 < timeout_ms <= self.config.max_timeout_ms:
            return InitResult(ErrorCode.INVALID_TRANSACTION_TIMEOUT)
        if not self.store.available():
            return InitResult(ErrorCode.NOT_COORDINATOR)
        meta = self.txns.get(transactional_id)
        if meta is None:
            meta = TransactionMetadata(transactional_id, self.generate_producer_id(),
                                       txn_timeout_ms=timeout_ms,
                                       txn_last_update_timestamp=self.clock())
            self.txns[transactional_id] = meta
        if meta.pending_transition_in_progress:
            return InitResult(ErrorCode.CONCURRENT_TRANSACTIONS)
        if expected is not None and not self._valid_expected(meta, *expected):
            return InitResult(ErrorCode.PRODUCER_FENCED)
        state = meta.state
        if state in (S.PREPARE_ABORT, S.PREPARE_COMMIT):
            return InitResult(ErrorCode.CONCURRENT_TRANSACTIONS)
        if state is S.ONGOING:
            # Abort the open transaction with a bumped epoch (fencing the old producer) and
            # let the client retry, which bumps the epoch once more.
            fence = meta.prepare_fence_producer_epoch()
            error = self._end(meta, fence.producer_id, fence.producer_epoch, commit=False,
                              from_client=False)
            return InitResult(error if error is not ErrorCode.NONE
                              else ErrorCode.CONCURRENT_TRANSACTIONS)
        if state not in (S.EMPTY, S.COMPLETE_ABORT, S.COMPLETE_COMMIT):
            raise IllegalTransition(f"Found transactionalId {transactional_id} with state "
                                    f"{state.display}. This is illegal as we should never have "
                                    "transitioned to this state.")
        now = self.clock()
        try:
            if meta.is_producer_epoch_exhausted and (expected is None
                                                     or expected[1] == meta.producer_epoch):
                transit = meta.prepare_producer_id_rotation(
                    self.generate_producer_id(), timeout_ms, now, expected is not None)
            else:
                transit = meta.prepare_increment_producer_epoch(
                    timeout_ms, None if expected is None else expected[1], now)
        except TransitionError as exc:
            return InitResult(exc.code)
        error = self._persist(meta, transit)
        if error is not ErrorCode.NONE:
            return InitResult(error)
        log.info("initialized transactional_id=%s producer_id=%d epoch=%d", transactional_id,
                 meta.producer_id, meta.producer_epoch)
        return InitResult(ErrorCode.NONE, meta.producer_id, meta.producer_epoch)

    @staticmethod
    def _valid_expected(meta: TransactionMetadata, producer_id: int, epoch: int) -> bool:
        """Kafka's `isValidProducerId`: a brand-new id, the current id, or the previous id
        with an exhausted epoch (a retry of a rotation whose answer was lost)."""
        return (meta.producer_epoch == NO_PRODUCER_EPOCH
                or producer_id == meta.producer_id
                or (producer_id == meta.prev_producer_id and is_epoch_exhausted(epoch)))

    # -- AddPartitionsToTxn / AddOffsetsToTxn -----------------------------------------

    def _lookup(self, transactional_id: str, producer_id: int, epoch: int
                ) -> tuple[ErrorCode, TransactionMetadata | None]:
        if not transactional_id:
            return ErrorCode.INVALID_REQUEST, None
        if not self.store.available():
            return ErrorCode.NOT_COORDINATOR, None
        meta = self.txns.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING, None
        if meta.producer_epoch != epoch:
            return ErrorCode.PRODUCER_FENCED, None
        return ErrorCode.NONE, meta

    def add_partitions(self, transactional_id: str, producer_id: int, epoch: int,
                       partitions: Iterable[TopicPartition]) -> ErrorCode:
        error, meta = self._lookup(transactional_id, producer_id, epoch)
        if meta is None:
            return error
        added = set(partitions)
        if meta.pending_transition_in_progress:
            return ErrorCode.CONCURRENT_TRANSACTIONS
        if meta.state in (S.PREPARE_COMMIT, S.PREPARE_ABORT):
            return ErrorCode.CONCURRENT_TRANSACTIONS
        if meta.state is S.ONGOING and added <= meta.partitions:
            return ErrorCode.NONE
        return self._persist(meta, meta.prepare_add_partitions(added, self.clock()))

    def verify_partitions(self, transactional_id: str, producer_id: int, epoch: int,
                          partitions: Iterable[TopicPartition]
                          ) -> dict[TopicPartition, ErrorCode]:
        """KIP-890 part 1 verification (AddPartitionsToTxn v4+ with verify_only): NONE for
        partitions in the transaction, TRANSACTION_ABORTABLE for the others; one error for
        all of them when the id, producer or state does not fit."""
        wanted = list(partitions)
        error, meta = self._lookup(transactional_id, producer_id, epoch)
        if meta is not None and meta.state in (S.PREPARE_COMMIT, S.PREPARE_ABORT):
            error, meta = ErrorCode.CONCURRENT_TRANSACTIONS, None
        if meta is None:
            return dict.fromkeys(wanted, error)
        return {tp: ErrorCode.NONE if tp in meta.partitions else ErrorCode.TRANSACTION_ABORTABLE
                for tp in wanted}

    # -- EndTxn -----------------------------------------------------------------------

    def end_txn(self, transactional_id: str, producer_id: int, epoch: int,
                commit: bool) -> ErrorCode:
        if not transactional_id:
            return ErrorCode.INVALID_REQUEST
        if not self.store.available():
            return ErrorCode.NOT_COORDINATOR
        meta = self.txns.get(transactional_id)
        if meta is None:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        return self._end(meta, producer_id, epoch, commit=commit, from_client=True)

    def _end(self, meta: TransactionMetadata, producer_id: int, epoch: int, *, commit: bool,
             from_client: bool) -> ErrorCode:
        """Kafka's `endTransactionWithTV1`, then the markers and the completion."""
        if meta.producer_id != producer_id:
            self._clear_fence(meta)
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if (from_client and epoch != meta.producer_epoch) or epoch < meta.producer_epoch:
            self._clear_fence(meta)
            return ErrorCode.PRODUCER_FENCED
        fencing = meta.pending_state is S.PREPARE_EPOCH_FENCE
        if meta.pending_transition_in_progress and not fencing:
            return ErrorCode.CONCURRENT_TRANSACTIONS
        state = meta.state
        if state is S.ONGOING:
            target = S.PREPARE_COMMIT if commit else S.PREPARE_ABORT
            if fencing:
                meta.pending_state = None
                if target is S.PREPARE_ABORT:
                    meta.producer_epoch = epoch
                    meta.last_producer_epoch = NO_PRODUCER_EPOCH
            transit = meta.prepare_abort_or_commit(target, self.clock())
            error = self._persist(meta, transit)
            if error is not ErrorCode.NONE:
                if fencing:
                    meta.has_failed_epoch_fence = True
                    log.warning("failed to write an epoch fence transactional_id=%s error=%s",
                                meta.transactional_id, error.name)
                return error
            self._send_markers(meta)
            return ErrorCode.NONE
        self._clear_fence(meta)
        if state is S.COMPLETE_COMMIT:
            return ErrorCode.NONE if commit else self._invalid(meta, commit)
        if state is S.COMPLETE_ABORT:
            return ErrorCode.NONE if not commit else self._invalid(meta, commit)
        if state is S.PREPARE_COMMIT:
            return ErrorCode.CONCURRENT_TRANSACTIONS if commit else self._invalid(meta, commit)
        if state is S.PREPARE_ABORT:
            return ErrorCode.CONCURRENT_TRANSACTIONS if not commit \
                else self._invalid(meta, commit)
        if state is S.EMPTY:
            return self._invalid(meta, commit)
        raise IllegalTransition(f"Found transactionalId {meta.transactional_id} with state "
                                f"{state.display}. This is illegal as we should never have "
                                "transitioned to this state.")

    @staticmethod
    def _clear_fence(meta: TransactionMetadata) -> None:
        if meta.pending_state is S.PREPARE_EPOCH_FENCE:
            meta.pending_state = None

    @staticmethod
    def _invalid(meta: TransactionMetadata, commit: bool) -> ErrorCode:
        log.warning("TransactionalId: %s's state is %s, but received transaction marker result "
                    "to send: %s", meta.transactional_id, meta.state.display,
                    "COMMIT" if commit else "ABORT")
        return ErrorCode.INVALID_TXN_STATE

    def _send_markers(self, meta: TransactionMetadata) -> bool:
        """Write the markers still missing, then CompleteCommit/CompleteAbort. False when
        something is left for `complete_pending`."""
        commit = meta.state is S.PREPARE_COMMIT
        for tp in sorted(meta.partitions):
            if self.markers.write_marker(tp, meta.producer_id, meta.producer_epoch,
                                         self.coordinator_epoch, commit):
                meta.partitions.discard(tp)  # Kafka's removePartition once a marker is acked
        if meta.partitions:
            return False
        transit = meta.prepare_complete(self.clock())
        if self._persist(meta, transit) is not ErrorCode.NONE:
            return False
        log.info("completed transaction transactional_id=%s producer_id=%d epoch=%d result=%s",
                 meta.transactional_id, meta.producer_id, meta.producer_epoch,
                 "COMMIT" if commit else "ABORT")
        return True

    def complete_pending(self) -> int:
        """Finish every transaction left in PrepareCommit/PrepareAbort (recovery after a
        restart, markers that failed); returns how many are still unfinished."""
        left = 0
        for meta in list(self.txns.values()):
            if (meta.state in (S.PREPARE_COMMIT, S.PREPARE_ABORT)
                    and not meta.pending_transition_in_progress
                    and not self._send_markers(meta)):
                left += 1
        return left

    # -- timers -----------------------------------------------------------------------

    def abort_timed_out(self, now: int) -> list[str]:
        """Abort (with an epoch fence) every Ongoing transaction open longer than its
        timeout (Kafka: `txnStartTimestamp + txnTimeoutMs < now`); the ids aborted."""
        if not self.store.available():
            return []
        aborted = []
        for meta in list(self.txns.values()):
            if (meta.state is not S.ONGOING or meta.pending_transition_in_progress
                    or meta.txn_start_timestamp + meta.txn_timeout_ms >= now):
                continue
            fence = meta.prepare_fence_producer_epoch()
            error = self._end(meta, fence.producer_id, fence.producer_epoch, commit=False,
                              from_client=False)
            if error is ErrorCode.NONE:
                log.info("Completed rollback of ongoing transaction for transactionalId %s due "
                         "to timeout", meta.transactional_id)
                aborted.append(meta.transactional_id)
            else:
                log.warning("Rollback of ongoing transaction for transactionalId %s failed due "
                            "to error %s", meta.transactional_id, error.name)
        return aborted

    def expire_transactional_ids(self, now: int) -> list[str]:
        """Remove ids idle (in Empty/CompleteCommit/CompleteAbort) for
        `transactional.id.expiration.ms`, writing a tombstone for each; the ids removed."""
        if not self.store.available():
            return []
        expired = []
        horizon = now - self.config.transactional_id_expiration_ms
        for txn_id, meta in list(self.txns.items()):
            if (meta.state not in EXPIRABLE or meta.pending_transition_in_progress
                    or meta.txn_last_update_timestamp > horizon):
                continue
            meta.prepare_dead()
            if self.store.write(txn_id, None) is ErrorCode.NONE:
                del self.txns[txn_id]
                expired.append(txn_id)
            else:
                meta.abort_transition()
        if expired:
            log.info("expired transactional ids count=%d", len(expired))
        return expired

    def next_timeout(self) -> int | None:
        """When the oldest open transaction times out (None: none open)."""
        deadlines = [m.txn_start_timestamp + m.txn_timeout_ms for m in self.txns.values()
                     if m.state is S.ONGOING]
        return min(deadlines) if deadlines else None

    # -- Describe / List --------------------------------------------------------------

    def describe(self, transactional_id: str) -> tuple[ErrorCode, TransactionMetadata | None]:
        if not transactional_id:
            return ErrorCode.INVALID_REQUEST, None
        if not self.store.available():
            return ErrorCode.NOT_COORDINATOR, None
        meta = self.txns.get(transactional_id)
        if meta is None or meta.state is S.DEAD:
            return ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, None
        return ErrorCode.NONE, meta

    def list_transactions(self, states: Iterable[str], producer_ids: Iterable[int],
                          duration_ms: int = -1, pattern: str | None = None
                          ) -> tuple[ErrorCode, list[str], list[TransactionMetadata]]:
        """(error, unknown state filters, matching metadata), Kafka's
        `listTransactionStates`: Dead is never listed; a duration keeps transactions
        running longer than it; the pattern must match the whole id."""
        unknown: list[str] = []
        wanted_states = set()
        for name in states:
            state = S.from_name(name)
            if state is None:
                unknown.append(name)
            else:
                wanted_states.add(state)
        compiled = None
        if pattern:
            try:
                compiled = re.compile(pattern)
            except re.error:
                return ErrorCode.INVALID_REGULAR_EXPRESSION, unknown, []
        wanted_ids = set(producer_ids)
        now = self.clock()
        out = []
        for meta in self.txns.values():
            if meta.state is S.DEAD:
                continue
            if wanted_ids and meta.producer_id not in wanted_ids:
                continue
            if wanted_states and meta.state not in wanted_states:
                continue
            if duration_ms >= 0 and now - meta.txn_start_timestamp <= duration_ms:
                continue
            if compiled is not None and compiled.fullmatch(meta.transactional_id) is None:
                continue
            out.append(meta)
        return ErrorCode.NONE, unknown, out
