"""The transaction coordinator inside the broker: its log, its markers and its timers.

`TransactionService` owns the `TransactionCoordinator` state machine and gives it the
broker's clock, producer ids (`broker.producer_ids`), a `TransactionLogStore` on
`__transaction_state` and a marker sink writing COMMIT/ABORT markers straight into the
partition logs (`PartitionLog.append_marker`). It is created after the group coordinator
(markers on `__consumer_offsets` settle pending transactional offsets there), loads every
transactional id back from `__transaction_state`, and at once finishes the transactions a
stop left in PrepareCommit/PrepareAbort by (re)writing their markers. An Ongoing
transaction left open is aborted by the timeout timer like any other.

`run()` is the background task: every
`transaction.abort.timed.out.transaction.cleanup.interval.ms` it aborts timed-out
transactions and retries unfinished markers; every
`transaction.remove.expired.transaction.cleanup.interval.ms` it expires idle transactional
ids. `verify_partitions` is the produce path's KIP-890 check (see the contract in
`broker.handlers.produce`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import trio

from broker.groups.records import OFFSETS_TOPIC
from broker.transactions import log as txn_log
from broker.transactions.coordinator import TransactionCoordinator, TxnConfig
from broker.transactions.log import TRANSACTION_STATE_TOPIC, TransactionLogStore
from protocol.errors import ErrorCode
from storage.errors import StorageError
from storage.producer_state import InvalidProducerEpoch, InvalidTxnState

if TYPE_CHECKING:
    from broker.server import Broker
    from broker.transactions.state import TopicPartition

log = logging.getLogger("odradek.transactions")


class TransactionService:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        started = time.monotonic()
        self.store = TransactionLogStore(broker.topics, broker.clock)
        self.coordinator = TransactionCoordinator(
            TxnConfig.from_broker(broker.config), broker.clock, broker.producer_ids.generate,
            self.store, self)
        if self.store.available():
            loaded, count = txn_log.load(self.store.logs())
            self.coordinator.load(loaded.items())
            unfinished = self.coordinator.complete_pending()
            log.info("loaded transactions transactional_ids=%d records=%d unfinished=%d "
                     "seconds=%.3f", len(loaded), count, unfinished, time.monotonic() - started)

    # -- the transaction state topic ---------------------------------------------------

    def ensure_state_topic(self) -> int:
        """Create `__transaction_state` if missing (Kafka's enforced configs); its
        partition count."""
        topic = self.broker.topics.get(TRANSACTION_STATE_TOPIC)
        if topic is None:
            config = self.broker.config
            topic = self.broker.topics.create(
                TRANSACTION_STATE_TOPIC, config["transaction.state.log.num.partitions"], {
                    "cleanup.policy": "compact",
                    "compression.type": "uncompressed",
                    "unclean.leader.election.enable": "false",
                    "min.insync.replicas": str(config["transaction.state.log.min.isr"]),
                    "segment.bytes": str(config["transaction.state.log.segment.bytes"]),
                })
            log.info("created %s partitions=%d", TRANSACTION_STATE_TOPIC, topic.partitions)
        return topic.partitions

    # -- markers (the coordinator's MarkerSink) ------------------------------------------

    def write_marker(self, tp: TopicPartition, producer_id: int, producer_epoch: int,
                     coordinator_epoch: int, commit: bool) -> bool:
        topic, partition = tp
        plog = self.broker.topics.log(topic, partition)
        if plog is None:
            # Deleted since it joined the transaction: nothing to mark (Kafka skips it too).
            log.info("skipping marker for missing partition topic=%s partition=%d", topic,
                     partition)
            return True
        try:
            plog.append_marker(producer_id, producer_epoch, coordinator_epoch, commit,
                               timestamp_ms=self.broker.clock())
        except (InvalidProducerEpoch, InvalidTxnState) as exc:
            # Kafka drops the marker when the partition has seen a newer producer epoch or
            # coordinator epoch: the transaction there is settled already.
            log.warning("marker refused topic=%s partition=%d producer_id=%d error=%s", topic,
                        partition, producer_id, exc)
            return True
        except StorageError as exc:
            log.warning("marker write failed topic=%s partition=%d producer_id=%d error=%s",
                        topic, partition, producer_id, exc)
            return False
        self.broker.waiters.notify(topic, partition)
        if topic == OFFSETS_TOPIC:
            self.broker.groups.on_txn_marker(partition, producer_id, commit)
        return True

    # -- the produce path's check ---------------------------------------------------------

    def verify_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                          partitions: list[tuple[str, int]]
                          ) -> dict[tuple[str, int], ErrorCode]:
        """Whether each partition joined the transaction (Kafka's
        `handleVerifyPartitionsInTransaction`): NONE, TRANSACTION_ABORTABLE (not added),
        or for all of them INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED,
        CONCURRENT_TRANSACTIONS, NOT_COORDINATOR, INVALID_REQUEST."""
        return self.coordinator.verify_partitions(transactional_id, producer_id,
                                                  producer_epoch, partitions)

    # -- timers ---------------------------------------------------------------------------

    def tick(self, now: int, *, expire: bool = False) -> None:
        self.coordinator.abort_timed_out(now)
        self.coordinator.complete_pending()
        if expire:
            self.coordinator.expire_transactional_ids(now)

    async def run(self) -> None:
        """Abort timed-out transactions and retry markers every abort interval; expire
        idle transactional ids every removal interval. Forever."""
        config = self.coordinator.config
        clock = self.broker.clock
        abort_every = config.abort_timed_out_interval_ms
        expire_every = config.remove_expired_interval_ms
        next_abort = clock() + abort_every
        next_expire = clock() + expire_every
        while True:
            deadline = min(next_abort, next_expire)
            await trio.sleep(max(deadline - clock(), 0) / 1000)
            now = clock()
            expire = now >= next_expire
            if expire:
                next_expire = now + expire_every
            if now >= next_abort or expire:
                next_abort = now + abort_every
                self.tick(now, expire=expire)
