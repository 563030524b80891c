"""Incremental fetch sessions (KIP-227): the broker side of Fetch v7+.

How this works
--------------
A consumer that sends a FULL fetch (session epoch 0) gets a session id back; the broker
remembers the partitions it asked for with their fetch parameters. Its next requests are
INCREMENTAL (the session id and the next epoch): they list only partitions that were added or
whose parameters changed, plus partitions to forget, and the broker answers only for
partitions with something new (records, a changed high watermark or log start offset, an
error). The rules follow Kafka's `FetchManager`, `FetchContext`, `FetchSession` and
`FetchSessionCacheShard`:

* Session metadata: epoch 0 = full request that may create a session; epoch -1 = full
  request that must not (sessionless, or closing `session_id`); any other epoch is
  incremental. A full request naming a session id closes that session first.
* Incremental request: unknown id -> FETCH_SESSION_ID_NOT_FOUND; epoch other than the
  session's -> INVALID_FETCH_SESSION_EPOCH; a v13+ request against a name-based session (or
  the reverse) -> FETCH_SESSION_TOPIC_ID_ERROR. Errors answer with session id 0 and no
  partitions, and leave the session as it was. Forgetting every partition closes the
  session and the request is answered sessionless. Otherwise the epoch advances
  (`next_epoch`) and the session's partitions, in their session order, are read.
* Responses to incremental requests list a partition only when it has records, a changed
  high watermark or log start offset, an error or a diverging epoch; a partition that
  returned records moves to the end of the session order, so that a later request with
  a byte limit serves the others first.
* The cache: `max.incremental.fetch.session.cache.slots` split over 8 shards (each holds
  slots // 8 sessions; a session id belongs to the shard `id // (2**31-1 // 8)`), new
  sessions assigned round-robin. A full shard evicts a session unused for more than two
  minutes, else the least valuable "evictable" session - (privileged, size, id) ordering,
  where follower sessions are privileged and a session only becomes evictable by
  unprivileged newcomers once it is more than two minutes old (as of its last use) - if
  the newcomer is worth more; otherwise no session is created (session id 0).

State changes are plain synchronous methods with an injected clock (milliseconds).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from protocol.errors import ErrorCode
from protocol.messages.fetch_response import PartitionData

if TYPE_CHECKING:
    from broker.config import BrokerConfig
    from storage.log import PartitionLog

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
NUM_SHARDS = 8
#: Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS.
EVICTION_MS = 120_000
_INT_MAX = 2**31 - 1
ZERO_UUID = uuid.UUID(int=0)


def next_epoch(epoch: int) -> int:
    """The epoch that follows `epoch` (Kafka's FetchMetadata.nextEpoch)."""
    if epoch < 0:
        return FINAL_EPOCH
    if epoch == _INT_MAX:
        return 1
    return epoch + 1


def partition_key(topic: str, topic_id: uuid.UUID, partition: int) -> tuple[Hashable, int]:
    """How a session names a partition: by topic id when the fetch uses ids (v13+), else
    by topic name (Kafka's CachedPartition equality). The id goes in as its 128-bit
    integer, which hashes and compares in C (a `uuid.UUID` does both in Python)."""
    id_int = topic_id.int
    if id_int:
        return (id_int, partition)
    return (topic, partition)


@dataclass(slots=True)
class FetchTarget:
    """One partition a fetch reads, with the parameters the fetcher sent for it.

    Sessions keep these between requests (Kafka's CachedPartition); `high_watermark` and
    `local_log_start_offset` are what the fetcher was last told (-1: nothing yet). `key`
    (`partition_key`) is computed once, at construction: every request looks it up.

    `log` is the partition's log as last resolved by the Fetch handler, so that a session's
    requests do not look it up again: it stays valid while it is open, since storage closes
    a log before it replaces or removes it (topic deletion, a move to another log dir).
    A closed one is looked up again.
    """

    topic: str
    topic_id: uuid.UUID
    partition: int
    fetch_offset: int
    log_start_offset: int
    max_bytes: int
    current_leader_epoch: int
    last_fetched_epoch: int
    high_watermark: int = -1
    local_log_start_offset: int = -1
    key: tuple[Hashable, int] = field(init=False, repr=False, compare=False)
    log: PartitionLog | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.key = partition_key(self.topic, self.topic_id, self.partition)

    def update_request(self, other: FetchTarget) -> None:
        self.fetch_offset = other.fetch_offset
        self.log_start_offset = other.log_start_offset
        self.max_bytes = other.max_bytes
        self.current_leader_epoch = other.current_leader_epoch
        self.last_fetched_epoch = other.last_fetched_epoch

    def must_respond(self, data: PartitionData, update: bool) -> bool:
        """Whether an incremental response must carry this partition (and, with `update`,
        remember what it tells the fetcher)."""
        respond = data.records is not None and len(data.records) > 0
        if self.high_watermark != data.high_watermark:
            respond = True
            if update:
                self.high_watermark = data.high_watermark
        if self.local_log_start_offset != data.log_start_offset:
            respond = True
            if update:
                self.local_log_start_offset = data.log_start_offset
        if data.preferred_read_replica != -1:
            respond = True
        if data.error_code != ErrorCode.NONE:
            # Re-send the partition once the error goes away.
            if update:
                self.high_watermark = -1
            respond = True
        if data.diverging_epoch.epoch != -1 or data.diverging_epoch.end_offset != -1:
            respond = True
        return respond


Key = tuple[Hashable, int]
Results = list[tuple[FetchTarget, PartitionData]]


class FetchSession:
    __slots__ = ("id", "privileged", "partitions", "uses_topic_ids", "creation_ms",
                 "last_used_ms", "epoch", "cached_size", "evictable_by_all",
                 "evictable_by_privileged")

    def __init__(self, session_id: int, privileged: bool, partitions: dict[Key, FetchTarget],
                 uses_topic_ids: bool, now: int) -> None:
        self.id = session_id
        self.privileged = privileged
        #: Insertion-ordered: the order in which the session's partitions are read.
        self.partitions = partitions
        self.uses_topic_ids = uses_topic_ids
        self.creation_ms = now
        self.last_used_ms = now
        self.epoch = next_epoch(INITIAL_EPOCH)
        self.cached_size = -1
        self.evictable_by_all = False
        self.evictable_by_privileged = False

    @property
    def evictable_key(self) -> tuple[bool, int, int]:
        return (self.privileged, self.cached_size, self.id)

    def update(self, targets: Iterable[FetchTarget], forget: Iterable[Key]) -> None:
        for target in targets:
            cached = self.partitions.get(target.key)
            if cached is None:
                self.partitions[target.key] = target
            else:
                cached.update_request(target)
        for key in forget:
            self.partitions.pop(key, None)


class FetchSessionCacheShard:
    def __init__(self, max_entries: int, eviction_ms: int, id_range: int, shard: int,
                 rng: random.Random) -> None:
        self.max_entries = max_entries
        self.eviction_ms = eviction_ms
        self.id_range = id_range
        self.shard = shard
        self.sessions: dict[int, FetchSession] = {}
        self.evictions = 0
        self._rng = rng

    def _new_session_id(self) -> int:
        low = max(1, self.shard * self.id_range)
        high = (self.shard + 1) * self.id_range
        while True:
            candidate = self._rng.randrange(low, high)
            if candidate not in self.sessions and candidate != INVALID_SESSION_ID:
                return candidate

    def maybe_create(self, now: int, privileged: bool, partitions: dict[Key, FetchTarget],
                     uses_topic_ids: bool) -> int:
        size = len(partitions)
        if len(self.sessions) < self.max_entries or self._try_evict(privileged, size, now):
            session = FetchSession(self._new_session_id(), privileged, partitions,
                                   uses_topic_ids, now)
            self.sessions[session.id] = session
            self.touch(session, now)
            return session.id
        return INVALID_SESSION_ID

    def _try_evict(self, privileged: bool, size: int, now: int) -> bool:
        if not self.sessions:
            return False
        stale = min(self.sessions.values(), key=lambda s: (s.last_used_ms, s.id))
        if now - stale.last_used_ms > self.eviction_ms:
            self.remove(stale.id)
            self.evictions += 1
            return True
        candidates = [s for s in self.sessions.values()
                      if (s.evictable_by_privileged if privileged else s.evictable_by_all)]
        if not candidates:
            return False
        victim = min(candidates, key=lambda s: s.evictable_key)
        # Kafka compares the newcomer's key (privileged, size, id 0) with the victim's.
        if (privileged, size, 0) < victim.evictable_key:
            return False
        self.remove(victim.id)
        self.evictions += 1
        return True

    def remove(self, session_id: int) -> FetchSession | None:
        return self.sessions.pop(session_id, None)

    def touch(self, session: FetchSession, now: int) -> None:
        """Note a use of `session`: its last-used time, size and evictability."""
        session.last_used_ms = now
        session.cached_size = len(session.partitions)
        old_enough = now - session.creation_ms > self.eviction_ms
        session.evictable_by_privileged = (not session.privileged) or old_enough
        session.evictable_by_all = old_enough


class FetchContext:
    """What one Fetch request reads and how its response is shaped (Kafka's FetchContext)."""

    error: ErrorCode = ErrorCode.NONE
    #: Whether `respond` leaves out a partition that has no records and whose high
    #: watermark and log start offset are what its target says the fetcher knows: the
    #: handler may then skip such a partition instead of building its answer.
    omits_unchanged = False

    def targets(self) -> list[FetchTarget]:
        """The partitions to read, in order."""
        return []

    def respond(self, results: Results) -> tuple[ErrorCode, int, Results]:
        """(top-level error, session id, partitions to send) for the read `results`."""
        return ErrorCode.NONE, INVALID_SESSION_ID, results


class SessionErrorContext(FetchContext):
    def __init__(self, error: ErrorCode) -> None:
        self.error = error

    def respond(self, results: Results) -> tuple[ErrorCode, int, Results]:
        return self.error, INVALID_SESSION_ID, []


class SessionlessFetchContext(FetchContext):
    def __init__(self, targets: dict[Key, FetchTarget]) -> None:
        self._targets = targets

    def targets(self) -> list[FetchTarget]:
        return list(self._targets.values())


class FullFetchContext(FetchContext):
    def __init__(self, cache: FetchSessionCache, targets: dict[Key, FetchTarget],
                 uses_topic_ids: bool, privileged: bool) -> None:
        self._cache = cache
        self._targets = targets
        self._uses_topic_ids = uses_topic_ids
        self._privileged = privileged

    def targets(self) -> list[FetchTarget]:
        return list(self._targets.values())

    def respond(self, results: Results) -> tuple[ErrorCode, int, Results]:
        partitions: dict[Key, FetchTarget] = {}
        for target, data in results:
            target.high_watermark = data.high_watermark
            target.local_log_start_offset = data.log_start_offset
            partitions[target.key] = target
        session_id = self._cache.maybe_create_session(
            self._privileged, partitions, self._uses_topic_ids)
        return ErrorCode.NONE, session_id, results


class IncrementalFetchContext(FetchContext):
    omits_unchanged = True

    def __init__(self, session: FetchSession, request_epoch: int) -> None:
        self.session = session
        self._request_epoch = request_epoch

    def targets(self) -> list[FetchTarget]:
        return list(self.session.partitions.values())

    def respond(self, results: Results) -> tuple[ErrorCode, int, Results]:
        session = self.session
        if session.epoch != next_epoch(self._request_epoch):
            # Another request moved the session on while this one waited.
            return ErrorCode.INVALID_FETCH_SESSION_EPOCH, session.id, []
        out: Results = []
        for target, data in results:
            cached = session.partitions.get(target.key)
            if cached is None or not cached.must_respond(data, update=True):
                continue
            out.append((target, data))
            if data.records is not None and len(data.records) > 0:
                del session.partitions[cached.key]
                session.partitions[cached.key] = cached
        return ErrorCode.NONE, session.id, out


class FetchSessionCache:
    """Every incremental fetch session of the broker (Kafka's FetchManager + cache shards)."""

    def __init__(self, max_slots: int, clock: Callable[[], int], *,
                 eviction_ms: int = EVICTION_MS, rng: random.Random | None = None) -> None:
        self._clock = clock
        rng = rng or random.Random()
        self.id_range = _INT_MAX // NUM_SHARDS
        self.shards = [
            FetchSessionCacheShard(max_slots // NUM_SHARDS, eviction_ms, self.id_range, n, rng)
            for n in range(NUM_SHARDS)
        ]
        self._next_shard = 0

    @classmethod
    def from_config(cls, config: BrokerConfig, clock: Callable[[], int]
                    ) -> FetchSessionCache:
        return cls(config["max.incremental.fetch.session.cache.slots"], clock)

    def __len__(self) -> int:
        return sum(len(s.sessions) for s in self.shards)

    def shard_of(self, session_id: int) -> FetchSessionCacheShard | None:
        index = session_id // self.id_range
        return self.shards[index] if 0 <= index < len(self.shards) else None

    def get(self, session_id: int) -> FetchSession | None:
        shard = self.shard_of(session_id)
        return shard.sessions.get(session_id) if shard is not None else None

    def remove(self, session_id: int) -> FetchSession | None:
        shard = self.shard_of(session_id)
        return shard.remove(session_id) if shard is not None else None

    def maybe_create_session(self, privileged: bool, partitions: dict[Key, FetchTarget],
                             uses_topic_ids: bool) -> int:
        shard = self.shards[self._next_shard]
        self._next_shard = (self._next_shard + 1) % len(self.shards)
        return shard.maybe_create(self._clock(), privileged, partitions, uses_topic_ids)

    def new_context(self, version: int, session_id: int, epoch: int, privileged: bool,
                    targets: dict[Key, FetchTarget], forget: list[Key]) -> FetchContext:
        """Kafka's FetchManager.newContext: which kind of fetch this request is."""
        uses_topic_ids = version >= 13
        if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            if session_id != INVALID_SESSION_ID:
                self.remove(session_id)
            if epoch == FINAL_EPOCH:
                return SessionlessFetchContext(targets)
            return FullFetchContext(self, targets, uses_topic_ids, privileged)
        session = self.get(session_id)
        if session is None:
            return SessionErrorContext(ErrorCode.FETCH_SESSION_ID_NOT_FOUND)
        if session.epoch != epoch:
            return SessionErrorContext(ErrorCode.INVALID_FETCH_SESSION_EPOCH)
        if session.uses_topic_ids != uses_topic_ids:
            return SessionErrorContext(ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR)
        session.update(targets.values(), forget)
        shard = self.shard_of(session_id)
        assert shard is not None
        if not session.partitions:
            shard.remove(session.id)
            return SessionlessFetchContext(targets)
        shard.touch(session, self._clock())
        session.epoch = next_epoch(session.epoch)
        return IncrementalFetchContext(session, epoch)
