"""Producer ids: allocated once, never reused, even across restarts.

How this works
--------------
Kafka's controller hands brokers producer ids in blocks of 1000 and records each block in
the metadata log, so an id is never given out twice (`ProducerIdControlManager`). We do the
same with a file: `odradek-producer-ids` in the first log dir holds the end of the last
block handed out (JSON, written atomically: temp file, fsync, rename). Ids come from the
current block; when it runs out the next block is recorded *before* any of its ids is
used. A restart starts at the recorded end, so at most the unused rest of a block is
skipped - as with Kafka, where a restarted broker asks for a fresh block. The first id is
0, as on a fresh Kafka cluster.

`ProducerIds` also paces the expiry of idle producer state (`producer.id.expiration.ms`,
checked every `producer.id.expiration.check.interval.ms`, Kafka's
`PeriodicProducerExpirationCheck`): the produce path calls `maybe_expire`, which sweeps all
partition logs when a check is due.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.log import fsync_dir

if TYPE_CHECKING:
    from storage import PartitionLog

log = logging.getLogger("odradek.producer_ids")

PRODUCER_IDS_FILE = "odradek-producer-ids"
BLOCK_SIZE = 1000  # Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE
LONG_MAX = 2**63 - 1
DEFAULT_EXPIRATION_CHECK_INTERVAL_MS = 600_000  # producer.id.expiration.check.interval.ms


class ProducerIdsExhausted(Exception):
    """No producer id is left below 2**63 - 1 (Kafka: UNKNOWN_SERVER_ERROR)."""


class ProducerIds:
    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        *,
        expiration_ms: int = 86_400_000,
        expiration_check_interval_ms: int = DEFAULT_EXPIRATION_CHECK_INTERVAL_MS,
    ) -> None:
        self._path = Path(log_dir) / PRODUCER_IDS_FILE
        self._next = self._load()
        self._block_end = self._next  # nothing reserved yet in this run
        self.expiration_ms = expiration_ms
        self.expiration_check_interval_ms = expiration_check_interval_ms
        self._next_expiration_check: int | None = None

    @classmethod
    def from_config(cls, log_dir: str | os.PathLike[str], config: Mapping[str, Any] | Any
                    ) -> ProducerIds:
        """From the broker's `producer.id.expiration.ms` and
        `producer.id.expiration.check.interval.ms` (Kafka's defaults when unset)."""
        interval = config.get("producer.id.expiration.check.interval.ms")
        return cls(
            log_dir,
            expiration_ms=int(config.get("producer.id.expiration.ms") or 86_400_000),
            expiration_check_interval_ms=int(interval or DEFAULT_EXPIRATION_CHECK_INTERVAL_MS),
        )

    @property
    def next_id(self) -> int:
        """The id `generate` would return next."""
        return self._next

    def generate(self) -> int:
        """A producer id never handed out before (`ProducerIdsExhausted` when none is left)."""
        if self._next >= self._block_end:
            if self._next > LONG_MAX - BLOCK_SIZE:
                raise ProducerIdsExhausted(
                    "Exhausted all producerIds as the next block's end producerId has exceeded "
                    "the int64 type limit")
            self._save(self._next + BLOCK_SIZE)
            self._block_end = self._next + BLOCK_SIZE
        producer_id = self._next
        self._next += 1
        return producer_id

    def _load(self) -> int:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0
        return int(data["next_block_start"])

    def _save(self, next_block_start: int) -> None:
        tmp = self._path.with_name(self._path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps({"version": 0, "next_block_start": next_block_start}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        fsync_dir(str(self._path.parent))

    # -- producer state expiry --------------------------------------------------------

    def maybe_expire(self, logs: Iterable[PartitionLog], now_ms: int) -> int:
        """Drop idle producers from every log when a check is due; returns how many."""
        if self._next_expiration_check is None:
            self._next_expiration_check = now_ms + self.expiration_check_interval_ms
            return 0
        if now_ms < self._next_expiration_check:
            return 0
        self._next_expiration_check = now_ms + self.expiration_check_interval_ms
        removed = sum(p.remove_expired_producers(now_ms, self.expiration_ms) for p in logs)
        if removed:
            log.info("expired idle producers count=%d", removed)
        return removed
