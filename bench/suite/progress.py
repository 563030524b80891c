"""One line per finished step, with elapsed time and an ETA.

The ETA scales what is left of the plan's estimate by how fast the run has gone so far
against that estimate (actual elapsed / estimated elapsed of the steps done).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total_steps: int, estimate_s: float, out: TextIO = sys.stdout) -> None:
        self.total_steps = total_steps
        self.estimate_s = max(estimate_s, 1.0)
        self.done_steps = 0
        self.done_estimate = 0.0
        self.started = time.monotonic()
        self.out = out

    def step(self, what: str, estimate_s: float, outcome: str) -> None:
        self.done_steps += 1
        self.done_estimate += estimate_s
        elapsed = time.monotonic() - self.started
        pace = elapsed / self.done_estimate if self.done_estimate else 1.0
        eta = (self.estimate_s - self.done_estimate) * pace
        print(f"[{self.done_steps}/{self.total_steps}] {what}: {outcome}  "
              f"(elapsed {clock(elapsed)}, ETA {clock(eta)})", file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(f"  {text}", file=self.out, flush=True)
