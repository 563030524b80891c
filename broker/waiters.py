"""Waking fetches parked in long poll when data arrives.

A Fetch that has not gathered `min_bytes` parks on the partitions it reads; an append
calls `notify` (a sync call from the produce path) and every fetch parked on that
partition wakes up and reads again. One `trio.Event` per parked fetch: nothing is polled.
"""

from __future__ import annotations

from collections.abc import Iterable

import trio

TopicPartitionKey = tuple[str, int]


class AppendWaiters:
    def __init__(self) -> None:
        self._waiting: dict[TopicPartitionKey, set[trio.Event]] = {}

    def notify(self, topic: str, partition: int) -> None:
        events = self._waiting.pop((topic, partition), None)
        if events:
            for event in events:
                event.set()

    def notify_all(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for events in waiting.values():
            for event in events:
                event.set()

    @property
    def parked(self) -> int:
        return len({e for events in self._waiting.values() for e in events})

    async def wait(self, partitions: Iterable[TopicPartitionKey], timeout_s: float) -> bool:
        """Park until one of `partitions` gets an append or `timeout_s` passes.

        Returns True if woken by an append, False on timeout.
        """
        event = trio.Event()
        keys = list(partitions)
        for key in keys:
            self._waiting.setdefault(key, set()).add(event)
        try:
            with trio.move_on_after(max(timeout_s, 0.0)):
                await event.wait()
        finally:
            for key in keys:
                events = self._waiting.get(key)
                if events is not None:
                    events.discard(event)
                    if not events:
                        del self._waiting[key]
        return event.is_set()
