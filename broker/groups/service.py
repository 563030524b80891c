"""The group coordinator inside the broker: its log, its timers, and async waiting.

`GroupService` owns the `GroupCoordinator` state machine, gives it the broker's clock and a
`LogGroupStore` on `__consumer_offsets` (created on first need with Kafka's internal topic
configs), and loads every group back from that topic when the broker starts. The KIP-848
`ConsumerGroupCoordinator` (`broker.groups.consumer`) shares the store, the clock and the
timer task. `run()` is the background task that fires the state machines' timers: it
sleeps until the next deadline or until a state machine reports an earlier one.
`join`/`sync` are the only async calls: they park on a `trio.Event` until the state machine
calls back.
`on_txn_marker` is how the transaction coordinator's markers reach the pending
transactional offsets.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import trio

from broker.groups import records
from broker.groups.consumer import ConsumerGroupConfig, ConsumerGroupCoordinator
from broker.groups.coordinator import (
    GroupConfig,
    GroupCoordinator,
    JoinResult,
    SyncResult,
)
from broker.groups.records import OFFSETS_TOPIC, LogGroupStore, partition_for

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterable

    from broker.server import Broker
    from storage import PartitionLog

log = logging.getLogger("odradek.groups")


class GroupService:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        started = time.monotonic()
        store = LogGroupStore(self._log_for, broker.clock, self._notify)
        self.coordinator = GroupCoordinator(GroupConfig.from_broker(broker.config),
                                            broker.clock, store)
        self.consumer = ConsumerGroupCoordinator(
            ConsumerGroupConfig.from_broker(broker.config), broker.clock, _Catalog(broker),
            store=store, classic=self.coordinator)
        self.coordinator.consumer = self.consumer
        self._wake = trio.Event()
        self.coordinator.wakeup = self._wake.set
        self.consumer.wakeup = self._wake.set
        topic = broker.topics.get(OFFSETS_TOPIC)
        if topic is not None:
            logs = [plog for p in range(topic.partitions)
                    if (plog := broker.topics.log(OFFSETS_TOPIC, p)) is not None]
            count = records.load(self.coordinator, logs, broker.clock())
            log.info("loaded groups groups=%d records=%d seconds=%.3f",
                     len(self.coordinator.groups), count, time.monotonic() - started)

    # -- the offsets topic -------------------------------------------------------------------

    def ensure_offsets_topic(self) -> int:
        """Create `__consumer_offsets` if missing; its partition count."""
        topic = self.broker.topics.get(OFFSETS_TOPIC)
        if topic is None:
            config = self.broker.config
            partitions = config["offsets.topic.num.partitions"]
            topic = self.broker.topics.create(OFFSETS_TOPIC, partitions, {
                "cleanup.policy": "compact",
                "segment.bytes": str(config["offsets.topic.segment.bytes"]),
                "compression.type": "producer",
            })
            log.info("created %s partitions=%d", OFFSETS_TOPIC, topic.partitions)
        return topic.partitions

    def _log_for(self, group_id: str) -> tuple[PartitionLog, int] | None:
        partitions = self.ensure_offsets_topic()
        partition = partition_for(group_id, partitions)
        plog = self.broker.topics.log(OFFSETS_TOPIC, partition)
        return None if plog is None else (plog, partition)

    def _notify(self, partition: int) -> None:
        self.broker.waiters.notify(OFFSETS_TOPIC, partition)

    def on_txn_marker(self, partition: int, producer_id: int, commit: bool) -> None:
        """The transaction coordinator wrote a marker of `producer_id` to `__consumer_offsets`
        partition `partition`: its groups' pending transactional offsets are materialised
        (COMMIT) or dropped (ABORT)."""
        topic = self.broker.topics.get(OFFSETS_TOPIC)
        if topic is None:
            return
        count = topic.partitions
        self.coordinator.complete_txn_offsets(
            producer_id, commit, lambda group_id: partition_for(group_id, count) == partition)

    # -- async waiting -----------------------------------------------------------------------

    async def join(self, **kwargs: Any) -> JoinResult:
        event = trio.Event()
        box: list[JoinResult] = []

        def done(result: JoinResult) -> None:
            box.append(result)
            event.set()

        self.coordinator.join_group(callback=done, **kwargs)
        await event.wait()
        return box[0]

    async def sync(self, **kwargs: Any) -> SyncResult:
        event = trio.Event()
        box: list[SyncResult] = []

        def done(result: SyncResult) -> None:
            box.append(result)
            event.set()

        self.coordinator.sync_group(callback=done, **kwargs)
        await event.wait()
        return box[0]

    # -- timers --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Fire the coordinator's timers, forever."""
        clock = self.broker.clock
        while True:
            self._wake = trio.Event()
            self.coordinator.wakeup = self._wake.set
            self.consumer.wakeup = self._wake.set
            deadlines = [d for d in (self.coordinator.next_deadline(),
                                     self.consumer.next_deadline()) if d is not None]
            deadline = min(deadlines) if deadlines else None
            timeout = float("inf") if deadline is None else max(deadline - clock(), 0) / 1000
            with trio.move_on_after(timeout):
                await self._wake.wait()
            self.coordinator.tick(clock())
            self.consumer.tick(clock())


class _Catalog:
    """The broker's topics as the KIP-848 state machine sees them."""

    def __init__(self, broker: Broker) -> None:
        self._topics = broker.topics

    def topic(self, name: str) -> tuple[uuid.UUID, int] | None:
        found = self._topics.get(name)
        return None if found is None else (found.topic_id, found.partitions)

    def names(self) -> Iterable[str]:
        return [t.name for t in self._topics]

    def name_of(self, topic_id: uuid.UUID) -> str | None:
        found = self._topics.by_id(topic_id)
        return None if found is None else found.name
