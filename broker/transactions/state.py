"""One transactional id's metadata and Kafka's transitions between its states.

How this works
--------------
A transactional id moves through Kafka's eight `TransactionState`s::

    Empty/CompleteCommit/CompleteAbort --AddPartitions/AddOffsets--> Ongoing
    Ongoing --EndTxn(commit)--> PrepareCommit --markers written--> CompleteCommit
    Ongoing --EndTxn(abort), fence, timeout--> PrepareAbort --markers--> CompleteAbort
    Empty/CompleteCommit/CompleteAbort --InitProducerId--> Empty (epoch + 1)
    Ongoing --InitProducerId, timeout--> PrepareEpochFence --> PrepareAbort
    Empty/CompleteCommit/CompleteAbort --transactional.id.expiration.ms--> Dead (removed)

Every change is two steps, as in Kafka's `TransactionMetadata`: a `prepare_*` method checks
that the target state may follow the current one (`VALID_PREVIOUS`), records it as the
pending state and returns a `TxnTransit` (the whole metadata as it will be); once that
transit is written to `__transaction_state`, `complete_transition` installs it. A failed
write calls `abort_transition` and nothing changes. While a state is pending, other
requests get CONCURRENT_TRANSACTIONS.

Epochs: a producer epoch at `EPOCH_EXHAUSTED` (32766) or above is exhausted, so that the
coordinator can always bump once more to fence; InitProducerId then rotates to a new
producer id at epoch 0. `last_producer_epoch` remembers the epoch before the last
InitProducerId bump, so a retried InitProducerId (KIP-360) gets the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from protocol.errors import ErrorCode

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
SHORT_MAX = 32767
#: Kafka's `TransactionMetadata.isEpochExhausted`: epochs at or above Short.MAX_VALUE - 1.
EPOCH_EXHAUSTED = SHORT_MAX - 1

TopicPartition = tuple[str, int]


class TransactionState(Enum):
    """Kafka's states: (id written to the log, name shown by Describe/ListTransactions)."""

    EMPTY = (0, "Empty")
    ONGOING = (1, "Ongoing")
    PREPARE_COMMIT = (2, "PrepareCommit")
    PREPARE_ABORT = (3, "PrepareAbort")
    COMPLETE_COMMIT = (4, "CompleteCommit")
    COMPLETE_ABORT = (5, "CompleteAbort")
    DEAD = (6, "Dead")
    PREPARE_EPOCH_FENCE = (7, "PrepareEpochFence")

    @property
    def id(self) -> int:
        return self.value[0]

    @property
    def display(self) -> str:
        return self.value[1]

    @classmethod
    def from_id(cls, state_id: int) -> TransactionState:
        for state in cls:
            if state.id == state_id:
                return state
        raise ValueError(f"Unknown transaction state id {state_id} from the transaction "
                         "status message")

    @classmethod
    def from_name(cls, name: str) -> TransactionState | None:
        for state in cls:
            if state.display == name:
                return state
        return None


S = TransactionState
#: Kafka's `TransactionState.validPreviousStates` (PrepareAbort from Empty/Complete* is TV2's
#: abort of an empty transaction; kept so the table matches Kafka's).
VALID_PREVIOUS: dict[TransactionState, frozenset[TransactionState]] = {
    S.EMPTY: frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.ONGOING: frozenset({S.ONGOING, S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.PREPARE_COMMIT: frozenset({S.ONGOING}),
    S.PREPARE_ABORT: frozenset({S.ONGOING, S.PREPARE_EPOCH_FENCE, S.EMPTY,
                                S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.COMPLETE_COMMIT: frozenset({S.PREPARE_COMMIT}),
    S.COMPLETE_ABORT: frozenset({S.PREPARE_ABORT}),
    S.DEAD: frozenset({S.EMPTY, S.COMPLETE_ABORT, S.COMPLETE_COMMIT}),
    S.PREPARE_EPOCH_FENCE: frozenset({S.ONGOING}),
}
#: States from which a transactional id may expire (Kafka's `isExpirationAllowed`).
EXPIRABLE = frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT})


def is_epoch_exhausted(epoch: int) -> bool:
    return epoch >= EPOCH_EXHAUSTED


class IllegalTransition(Exception):
    """A transition Kafka treats as a coordinator bug (IllegalStateException)."""


class TransitionError(Exception):
    """A transition refused with a Kafka error code (e.g. PRODUCER_FENCED)."""

    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


@dataclass(frozen=True, slots=True)
class TxnTransit:
    """The metadata as a prepared transition will leave it (Kafka's `TxnTransitMetadata`)."""

    producer_id: int
    prev_producer_id: int
    next_producer_id: int
    producer_epoch: int
    last_producer_epoch: int
    txn_timeout_ms: int
    state: TransactionState
    partitions: frozenset[TopicPartition]
    txn_start_timestamp: int
    txn_last_update_timestamp: int


@dataclass(slots=True, eq=False)
class TransactionMetadata:
    """The coordinator's view of one transactional id (Kafka's `TransactionMetadata`)."""

    transactional_id: str
    producer_id: int
    prev_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    txn_timeout_ms: int = 60000
    state: TransactionState = TransactionState.EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    txn_start_timestamp: int = -1
    txn_last_update_timestamp: int = -1
    pending_state: TransactionState | None = None
    #: A fence whose write failed: the next fence does not bump the epoch again.
    has_failed_epoch_fence: bool = False

    @property
    def pending_transition_in_progress(self) -> bool:
        return self.pending_state is not None

    @property
    def is_producer_epoch_exhausted(self) -> bool:
        return is_epoch_exhausted(self.producer_epoch)

    def snapshot(self) -> TxnTransit:
        return TxnTransit(self.producer_id, self.prev_producer_id, self.next_producer_id,
                          self.producer_epoch, self.last_producer_epoch, self.txn_timeout_ms,
                          self.state, frozenset(self.partitions), self.txn_start_timestamp,
                          self.txn_last_update_timestamp)

    # -- prepare ------------------------------------------------------------------------

    def _prepare(self, transit: TxnTransit) -> TxnTransit:
        if self.pending_state is not None:
            raise IllegalTransition(
                f"Preparing transaction state transition to {transit.state.display} while it "
                f"already a pending state {self.pending_state.display}")
        if transit.producer_id < 0:
            raise IllegalTransition(f"Illegal new producer id {transit.producer_id}")
        if transit.state is not S.DEAD and transit.producer_epoch < 0:
            raise IllegalTransition(f"Illegal new producer epoch {transit.producer_epoch}")
        if self.state not in VALID_PREVIOUS[transit.state]:
            raise IllegalTransition(
                f"Preparing transaction state transition to {transit.state.display} failed "
                f"since the target state {transit.state.display} is not a valid previous "
                f"state of the current state {self.state.display}")
        self.pending_state = transit.state
        # The new transit's previous producer id is the current one, as Kafka records it.
        return replace(transit, prev_producer_id=self.producer_id)

    def prepare_fence_producer_epoch(self) -> TxnTransit:
        """Ongoing -> PrepareEpochFence with the epoch bumped (not again after a failed
        fence, nor past Short.MAX_VALUE)."""
        bump = not self.has_failed_epoch_fence and self.producer_epoch != SHORT_MAX
        epoch = self.producer_epoch + 1 if bump else self.producer_epoch
        return self._prepare(replace(self.snapshot(), producer_epoch=epoch,
                                     state=S.PREPARE_EPOCH_FENCE))

    def prepare_increment_producer_epoch(self, timeout_ms: int, expected_epoch: int | None,
                                         now: int) -> TxnTransit:
        """InitProducerId on a completed or empty transaction: -> Empty with epoch + 1.

        With an expected epoch (KIP-360): the current one (or none yet) bumps and records
        it as the last epoch; the last epoch is a retry and gets the current epoch again;
        any other is PRODUCER_FENCED (`TransitionError`).
        """
        if self.is_producer_epoch_exhausted:
            raise IllegalTransition(
                f"Cannot allocate any more producer epochs for producerId {self.producer_id}")
        bumped = self.producer_epoch + 1
        if expected_epoch is None:
            epoch, last = bumped, NO_PRODUCER_EPOCH
        elif self.producer_epoch == NO_PRODUCER_EPOCH or expected_epoch == self.producer_epoch:
            epoch, last = bumped, self.producer_epoch
        elif expected_epoch == self.last_producer_epoch:
            epoch, last = self.producer_epoch, self.last_producer_epoch
        else:
            raise TransitionError(ErrorCode.PRODUCER_FENCED)
        return self._prepare(replace(
            self.snapshot(), producer_epoch=epoch, last_producer_epoch=last,
            txn_timeout_ms=timeout_ms, state=S.EMPTY, partitions=frozenset(),
            txn_start_timestamp=-1, txn_last_update_timestamp=now))

    def prepare_producer_id_rotation(self, new_producer_id: int, timeout_ms: int, now: int,
                                     record_last_epoch: bool) -> TxnTransit:
        """InitProducerId with the epoch exhausted: a new producer id at epoch 0."""
        if self.state in (S.ONGOING, S.PREPARE_ABORT, S.PREPARE_COMMIT):
            raise IllegalTransition("Cannot rotate producer ids while a transaction is still "
                                    "pending")
        return self._prepare(replace(
            self.snapshot(), producer_id=new_producer_id, producer_epoch=0,
            last_producer_epoch=self.producer_epoch if record_last_epoch else NO_PRODUCER_EPOCH,
            txn_timeout_ms=timeout_ms, state=S.EMPTY, partitions=frozenset(),
            txn_start_timestamp=-1, txn_last_update_timestamp=now))

    def prepare_add_partitions(self, added: set[TopicPartition], now: int) -> TxnTransit:
        """-> Ongoing with `added` joined; a new transaction starts its clock now."""
        start = now if self.state in (S.EMPTY, S.COMPLETE_ABORT, S.COMPLETE_COMMIT) \
            else self.txn_start_timestamp
        return self._prepare(replace(
            self.snapshot(), state=S.ONGOING, partitions=frozenset(self.partitions | added),
            txn_start_timestamp=start, txn_last_update_timestamp=now))

    def prepare_abort_or_commit(self, state: TransactionState, now: int) -> TxnTransit:
        """Ongoing -> PrepareCommit/PrepareAbort (transactions v1: the epoch stays)."""
        return self._prepare(replace(self.snapshot(), state=state, next_producer_id=NO_PRODUCER_ID,
                                     txn_last_update_timestamp=now))

    def prepare_complete(self, now: int) -> TxnTransit:
        """PrepareCommit/PrepareAbort -> CompleteCommit/CompleteAbort (markers written)."""
        self.has_failed_epoch_fence = False
        state = S.COMPLETE_COMMIT if self.state is S.PREPARE_COMMIT else S.COMPLETE_ABORT
        return self._prepare(replace(self.snapshot(), state=state,
                                     next_producer_id=NO_PRODUCER_ID, partitions=frozenset(),
                                     txn_last_update_timestamp=now))

    def prepare_dead(self) -> TxnTransit:
        return self._prepare(replace(self.snapshot(), state=S.DEAD, partitions=frozenset()))

    # -- complete -----------------------------------------------------------------------

    def complete_transition(self, transit: TxnTransit) -> None:
        """Install a transit once it is persisted (Kafka's `completeTransitionTo` checks)."""
        to = self.pending_state
        if to is None or to is not transit.state:
            raise IllegalTransition(
                f"TransactionalId {self.transactional_id} completing transaction state "
                f"transition to {transit.state.display} while its pending state is "
                f"{to.display if to else None}")
        same_producer = (transit.producer_id == self.producer_id
                         and transit.producer_epoch == self.producer_epoch)
        ok = True
        if to is S.EMPTY:
            bumped = (transit.producer_epoch == self.producer_epoch + 1
                      or (transit.producer_epoch == 0 and transit.producer_id != self.producer_id))
            ok = ((transit.producer_epoch == self.producer_epoch or bumped)
                  and not transit.partitions and transit.txn_start_timestamp == -1)
        elif to is S.ONGOING:
            ok = (same_producer and transit.partitions >= self.partitions
                  and transit.txn_timeout_ms == self.txn_timeout_ms)
        elif to in (S.PREPARE_COMMIT, S.PREPARE_ABORT):
            ok = (same_producer and transit.partitions == frozenset(self.partitions)
                  and transit.txn_timeout_ms == self.txn_timeout_ms
                  and transit.txn_start_timestamp == self.txn_start_timestamp)
        elif to in (S.COMPLETE_COMMIT, S.COMPLETE_ABORT):
            ok = (same_producer and transit.txn_timeout_ms == self.txn_timeout_ms
                  and transit.txn_start_timestamp != -1)
        else:  # PrepareEpochFence and Dead are never completed
            ok = False
        if not ok:
            raise IllegalTransition(
                f"TransactionalId {self.transactional_id} failed transition to state "
                f"{transit} due to unexpected metadata")
        self.producer_id = transit.producer_id
        self.prev_producer_id = transit.prev_producer_id
        self.next_producer_id = transit.next_producer_id
        self.producer_epoch = transit.producer_epoch
        self.last_producer_epoch = transit.last_producer_epoch
        self.txn_timeout_ms = transit.txn_timeout_ms
        self.partitions = set(transit.partitions)
        self.txn_start_timestamp = transit.txn_start_timestamp
        self.txn_last_update_timestamp = transit.txn_last_update_timestamp
        self.pending_state = None
        self.state = to

    def abort_transition(self) -> None:
        """Forget the pending state after a failed write."""
        self.pending_state = None
