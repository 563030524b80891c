"""Start-up time with a large log: after SIGKILL and after a clean stop.

How this works
--------------
On a fresh broker, ``startup_bytes`` (10 GB in a full run) of 10-KB records are produced
through the broker to a 6-partition topic with rdkafka_performance (the next driver that
can talk to the broker where it cannot); that write is itself a produce figure. The
partitions' end offsets are read (ListOffsets). Then:

1. SIGKILL, start again, and time from exec until the broker answers ListOffsets with those
   same end offsets on every partition (it has loaded, and if needed recovered, its logs).
   Measured once: the next kill would find a log the restart already recovered.
2. SIGTERM (clean stop), start again, time the same way; repeated ``repeat`` times.

The page cache is warm (the log was just written), as after a process restart on a
machine that stayed up. Brokers with memory storage have nothing to load and skip this.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

from . import wire
from .workloads import Context, Step, Unit, create_topic, measure, produce

PARTITIONS = 6
RECORD = 10_000


def _ready(ctx: Context, topic: str, offsets: list[int], limit: float = 1800.0) -> float:
    """Start the broker; seconds from exec until it serves ``offsets`` for ``topic``."""
    started = time.monotonic()
    ctx.broker.start()
    broker = ctx.broker
    while wire.end_offsets(broker.host, broker.port, topic, PARTITIONS, timeout=5) != offsets:
        if time.monotonic() - started > limit:
            raise RuntimeError(f"end offsets not back to {offsets} after {limit:.0f} s")
        time.sleep(0.02)
    return time.monotonic() - started


def startup_unit(total_bytes: int, repeat: int) -> Unit:
    records = max(1, total_bytes // RECORD)
    write_s = 3 + total_bytes / 60e6
    steps = [Step("startup/write", "produce", records, RECORD, write_s),
             Step("startup/after SIGKILL", "startup", records, RECORD, 10 + total_bytes / 1e9)]
    steps += [Step("startup/after clean stop", "startup", records, RECORD, 10)
              for _ in range(repeat)]

    def run(ctx: Context) -> Generator[dict[str, Any], None, None]:
        topic = f"startup-{ctx.tag}"
        create_topic(ctx, topic, PARTITIONS)

        yield measure(ctx, RECORD, lambda: produce(ctx, topic, records, RECORD))
        offsets = wire.end_offsets(ctx.broker.host, ctx.broker.port, topic, PARTITIONS)
        if offsets is None or sum(offsets) < records:
            raise RuntimeError(f"after the write the end offsets are {offsets}")
        log_gb = records * RECORD / 1e9
        ctx.broker.kill()
        yield {"seconds": _ready(ctx, topic, offsets), "log_gb": log_gb, "records": 0}
        for _ in range(repeat):
            ctx.broker.stop()
            yield {"seconds": _ready(ctx, topic, offsets), "log_gb": log_gb, "records": 0}

    return Unit("startup", steps, run)
