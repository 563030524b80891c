"""The timer heap both group coordinators share.

A state machine never sleeps: it schedules deadlines here, `next_deadline()` tells the
service when to call its `tick(now)`, and `wakeup` (set by the service) is called when a
new deadline is earlier than every one pending, so the sleeping service task re-plans.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator

#: (deadline, kind, group id, member id, token): a timer that fired.
TimerPayload = tuple[int, str, str, str, int]


class TimerHeap:
    def __init__(self) -> None:
        self.wakeup: Callable[[], None] | None = None
        self._timers: list[tuple[int, int, str, str, str, int]] = []
        self._seq = 0

    def _schedule(self, deadline: int, kind: str, group_id: str, member_id: str,
                  token: int) -> None:
        self._seq += 1
        earliest = self._timers[0][0] if self._timers else None
        heapq.heappush(self._timers, (deadline, self._seq, kind, group_id, member_id, token))
        if (earliest is None or deadline < earliest) and self.wakeup is not None:
            self.wakeup()

    def next_deadline(self) -> int | None:
        return self._timers[0][0] if self._timers else None

    def _due(self, now: int) -> Iterator[TimerPayload]:
        """Pop the timers due at `now`, earliest first (timers scheduled meanwhile that
        are already due are popped too)."""
        while self._timers and self._timers[0][0] <= now:
            deadline, _, kind, group_id, member_id, token = heapq.heappop(self._timers)
            yield deadline, kind, group_id, member_id, token
