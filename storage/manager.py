"""All partition logs of a broker, across its log dirs, in Kafka's directory layout.

How this works
--------------
Each log dir looks like a Kafka (KRaft) log dir, so Kafka's tools can read ours and we can
read theirs (`storage/.../internals/log/LogManager.java`, `checkpoint/*`):

    meta.properties                      version=1, cluster.id, node.id, directory.id
    .lock                                flock'd while we own the dir
    .kafka_cleanshutdown                 written last on a clean shutdown
    recovery-point-offset-checkpoint     "0\\n<n>\\n<topic> <partition> <offset>\\n..."
    log-start-offset-checkpoint          same format
    <topic>-<partition>/                 one PartitionLog per partition
    <topic>-<partition>.<uuid>-delete/   a deleted partition awaiting removal

Startup: lock each dir, read/create meta.properties, note whether the clean-shutdown marker
is there, load every partition (recovering those of dirs without the marker from their
recovery points), then remove the marker: from now on a crash means recovery.

Shutdown: flush and close every log, write both checkpoint files, write the marker.

A partition's log moves to another of the dirs (AlterReplicaLogDirs) through a
`<topic>-<partition>.<uuid>-future` copy: `begin_move` / `finish_move`, `storage.log_move`.

New partitions go to the dir with the fewest partitions. Deleting a partition renames its
dir to `<topic>-<partition>.<uuid>-delete` (Kafka's `logDeleteDirName`) and removes it
once `file.delete.delay.ms` has passed, from `cleanup_logs` / `delete_pending`.
Periodic work is the broker's to schedule, each call blocking and so run in a worker
thread (`trio.to_thread.run_sync`): `cleanup_logs(now_ms)` every
`log.retention.check.interval.ms`; `flush_dirty_logs(now_ms)` every
`log.flush.scheduler.interval.ms` (Kafka's default never comes; any shorter period is
harmless, as each log's own `flush.ms` decides, and it also flushes rolled segments);
`cleaner.clean_once(now_ms)` (`storage.cleaner`) when `log.cleaner.enable`, again at
once when it cleaned something, else after `log.cleaner.backoff.ms`; and the checkpoint
writers every `log.flush.offset.checkpoint.interval.ms`. With `inline_flush=False` an
append never fsyncs: the produce path checks `log.flush_due()` (`flush.messages`) and
awaits `log.flush()` in a worker thread before answering.

Open descriptors and mapped address space are bounded by one `HandleCache` shared by all
logs: the least recently used segments give their handles back and reopen on demand.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import random
import resource
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from storage.config import LogConfig
from storage.errors import InconsistentClusterId, StorageError
from storage.log import PartitionLog, fsync_dir, wall_clock_ms
from storage.log_move import FUTURE_DIR_SUFFIX, LogMove, log_future_dir_name
from storage.segment import HandleCache

if TYPE_CHECKING:
    from storage.cleaner import LogCleaner

__all__ = [
    "CLEAN_SHUTDOWN_FILE_NAME",
    "LOG_START_OFFSET_CHECKPOINT_FILE",
    "META_PROPERTIES_FILE",
    "RECOVERY_POINT_CHECKPOINT_FILE",
    "LogManager",
    "MetaProperties",
    "TopicPartition",
    "read_offset_checkpoint",
    "write_offset_checkpoint",
]

RECOVERY_POINT_CHECKPOINT_FILE = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT_FILE = "log-start-offset-checkpoint"
CLEAN_SHUTDOWN_FILE_NAME = ".kafka_cleanshutdown"
META_PROPERTIES_FILE = "meta.properties"
LOCK_FILE_NAME = ".lock"
DELETE_DIR_SUFFIX = "-delete"
STRAY_DIR_SUFFIX = "-stray"
_CHECKPOINT_VERSION = 0


class TopicPartition(NamedTuple):
    """A partition's name. A tuple, so that a plain `(topic, partition)` finds the same
    dict entry: the lookups on every request build no object."""

    topic: str
    partition: int

    def dir_name(self) -> str:
        return f"{self.topic}-{self.partition}"


def parse_topic_partition_name(name: str) -> TopicPartition | None:
    """`<topic>-<partition>` -> TopicPartition; None for anything else."""
    topic, sep, part = name.rpartition("-")
    if not sep or not topic or not part.isdigit():
        return None
    return TopicPartition(topic, int(part))


def log_delete_dir_name(tp: TopicPartition) -> str:
    """Kafka's `logDeleteDirName`: `<topic>-<partition>.<uuid hex>-delete`, topic cut so
    the name fits 255 characters."""
    suffix = f"-{tp.partition}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}"
    return tp.topic[: max(0, 255 - len(suffix))] + suffix


# ---------------------------------------------------------------------- checkpoints


def write_offset_checkpoint(path: str, offsets: dict[TopicPartition, int]) -> None:
    """Kafka's `CheckpointFile.write`: version, count, `topic partition offset` lines;
    written to `<path>.tmp`, fsync'd, renamed over `path`, directory fsync'd."""
    lines = [str(_CHECKPOINT_VERSION), str(len(offsets))]
    lines += [f"{tp.topic} {tp.partition} {off}" for tp, off in sorted(offsets.items())]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path) or ".")


def read_offset_checkpoint(path: str) -> dict[TopicPartition, int]:
    """Parse a checkpoint file; {} if it does not exist. `StorageError` if malformed."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return {}
    try:
        version = int(lines[0])
        if version != _CHECKPOINT_VERSION:
            raise StorageError(f"unrecognized version {version} of checkpoint file {path}")
        count = int(lines[1])
        entries = [ln for ln in lines[2:] if ln.strip()]
        if len(entries) != count:
            raise StorageError(f"expected {count} entries in {path} but found {len(entries)}")
        out: dict[TopicPartition, int] = {}
        for line in entries:
            topic, part, off = line.split(" ")
            out[TopicPartition(topic, int(part))] = int(off)
        return out
    except (IndexError, ValueError) as e:
        raise StorageError(f"malformed line in checkpoint file {path}: {e}") from e


# ---------------------------------------------------------------------- meta.properties


def random_directory_id() -> str:
    """Kafka's `DirectoryId.random()`: a base64url (no padding) UUID that does not start
    with '-' and is not one of the 100 reserved ids."""
    while True:
        raw = os.urandom(16)
        most, least = int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")
        if most == 0 and least < 100:
            continue
        text = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass(frozen=True, slots=True)
class MetaProperties:
    version: int
    cluster_id: str | None
    node_id: int | None
    directory_id: str | None

    def to_lines(self) -> list[str]:
        props = {"version": str(self.version)}
        if self.cluster_id is not None:
            props["cluster.id"] = self.cluster_id
        if self.node_id is not None:
            props["node.id"] = str(self.node_id)
        if self.directory_id is not None:
            props["directory.id"] = self.directory_id
        stamp = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime())
        return ["#", f"#{stamp}"] + [f"{k}={v}" for k, v in sorted(props.items())]

    @classmethod
    def read(cls, path: str) -> MetaProperties | None:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        props: dict[str, str] = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line[0] in "#!":
                continue
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
        node = props.get("node.id", props.get("broker.id"))
        return cls(
            version=int(props.get("version", "0")),
            cluster_id=props.get("cluster.id"),
            node_id=int(node) if node is not None else None,
            directory_id=props.get("directory.id"),
        )

    def write(self, path: str) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(self.to_lines()) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(os.path.dirname(path) or ".")


# ---------------------------------------------------------------------- the manager


def _default_handle_capacity() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    # a cached segment holds up to 4 descriptors (log file, log map, two index maps)
    return max(16, min(4096, (soft - 256) // 4))


class LogManager:
    """Owns every `PartitionLog` in `log_dirs`. Sync and thread-safe; no threads inside."""

    def __init__(
        self,
        log_dirs: list[str | os.PathLike[str]],
        config: LogConfig | None = None,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        cluster_id: str | None = None,
        node_id: int = 1,
        topic_config: Callable[[str], LogConfig | None] | None = None,
        handle_cache_capacity: int | None = None,
        rng: random.Random | None = None,
        inline_flush: bool = True,
    ) -> None:
        """Lock and load the log dirs. `topic_config(topic)` supplies per-topic configs for
        partitions found on disk (None = `config`). `inline_flush=False`: appends never
        fsync themselves (`flush.messages`); the caller checks `log.flush_due()` and runs
        `log.flush()` in a worker thread, so the event loop never blocks on fsync."""
        if not log_dirs:
            raise ValueError("at least one log dir is required")
        self.log_dirs = [os.path.abspath(os.fspath(d)) for d in log_dirs]
        if len(set(self.log_dirs)) != len(self.log_dirs):
            raise StorageError(f"duplicate log dirs in {self.log_dirs}")
        self.default_config = config or LogConfig()
        self._clock = clock
        self._rng = rng or random.Random()
        self._topic_config = topic_config
        self._lock = threading.RLock()
        self.handle_cache = HandleCache(handle_cache_capacity or _default_handle_capacity())
        self._logs: dict[TopicPartition, PartitionLog] = {}
        self._log_dir_of: dict[TopicPartition, str] = {}
        self._pending_dir_deletes: list[tuple[int, str]] = []
        self._future_dirs: list[str] = []
        self._moves: dict[TopicPartition, LogMove] = {}
        self._lock_files: list[int] = []
        self.directory_ids: dict[str, str] = {}
        self.had_clean_shutdown: dict[str, bool] = {}
        self.cluster_id = cluster_id
        self.node_id = node_id
        self._closed = False
        self.inline_flush = inline_flush
        self._cleaner: LogCleaner | None = None
        try:
            for d in self.log_dirs:
                os.makedirs(d, exist_ok=True)
                self._lock_dir(d)
                self._load_meta(d)
            for d in self.log_dirs:
                self._load_logs(d)
            self._resolve_future_dirs()
        except BaseException:
            self._unlock_dirs()
            raise

    # -- startup ----------------------------------------------------------------------

    def _lock_dir(self, d: str) -> None:
        fd = os.open(os.path.join(d, LOCK_FILE_NAME), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StorageError(
                f"failed to acquire lock on file .lock in {d}: a broker is using this directory"
            ) from None
        self._lock_files.append(fd)

    def _unlock_dirs(self) -> None:
        for fd in self._lock_files:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._lock_files.clear()

    def _load_meta(self, d: str) -> None:
        path = os.path.join(d, META_PROPERTIES_FILE)
        meta = MetaProperties.read(path)
        if meta is None:
            if self.cluster_id is None:
                self.cluster_id = _random_cluster_id()
            meta = MetaProperties(1, self.cluster_id, self.node_id, random_directory_id())
            meta.write(path)
        else:
            if self.cluster_id is None:
                self.cluster_id = meta.cluster_id
            elif meta.cluster_id is not None and meta.cluster_id != self.cluster_id:
                raise InconsistentClusterId(
                    f"the cluster ID {self.cluster_id} doesn't match stored clusterId "
                    f"{meta.cluster_id} in {path}"
                )
            if meta.node_id is not None and meta.node_id != self.node_id:
                raise StorageError(
                    f"stored node id {meta.node_id} in {path} "
                    f"doesn't match configured {self.node_id}"
                )
            if meta.directory_id is None or meta.cluster_id is None or meta.node_id is None:
                meta = MetaProperties(
                    1,
                    meta.cluster_id or self.cluster_id,
                    self.node_id,
                    meta.directory_id or random_directory_id(),
                )
                meta.write(path)
        assert meta.directory_id is not None
        self.directory_ids[d] = meta.directory_id

    def _config_for(self, topic: str) -> LogConfig:
        if self._topic_config is not None:
            cfg = self._topic_config(topic)
            if cfg is not None:
                return cfg
        return self.default_config

    def _load_logs(self, d: str) -> None:
        marker = os.path.join(d, CLEAN_SHUTDOWN_FILE_NAME)
        clean = os.path.exists(marker)
        self.had_clean_shutdown[d] = clean
        recovery_points = read_offset_checkpoint(os.path.join(d, RECOVERY_POINT_CHECKPOINT_FILE))
        start_offsets = read_offset_checkpoint(os.path.join(d, LOG_START_OFFSET_CHECKPOINT_FILE))
        now = self._clock()
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if not os.path.isdir(path):
                continue
            if name.endswith(DELETE_DIR_SUFFIX):
                self._pending_dir_deletes.append(
                    (now + self.default_config.file_delete_delay_ms, path)
                )
                continue
            if name.endswith(FUTURE_DIR_SUFFIX):
                self._future_dirs.append(path)
                continue
            if name.endswith(STRAY_DIR_SUFFIX):
                continue
            tp = parse_topic_partition_name(name)
            if tp is None:
                continue
            if tp in self._logs:
                raise StorageError(
                    f"duplicate log directories for {tp.dir_name()} are found in both "
                    f"{self._log_dir_of[tp]} and {d}"
                )
            log = PartitionLog.open(
                path,
                self._config_for(tp.topic),
                clock=self._clock,
                recovery_point=recovery_points.get(tp, 0),
                log_start_offset=start_offsets.get(tp, 0),
                had_clean_shutdown=clean,
                handle_cache=self.handle_cache,
                rng=self._rng,
                topic=tp.topic,
                partition=tp.partition,
            )
            log.inline_flush = self.inline_flush
            self._logs[tp] = log
            self._log_dir_of[tp] = d
        if clean:
            os.unlink(marker)
            fsync_dir(d)

    def _resolve_future_dirs(self) -> None:
        """`-future` dirs left by a move that a crash interrupted (`storage.log_move`): a
        partial copy beside its partition's log is removed; a complete one whose partition
        has no log (the crash came between the two renames) becomes the log, recovered."""
        for path in self._future_dirs:
            d, name = os.path.split(path)
            tp = parse_topic_partition_name(name.split(".", 1)[0])
            if tp is None or tp in self._logs:
                shutil.rmtree(path, ignore_errors=True)
                fsync_dir(d)
                continue
            final = os.path.join(d, tp.dir_name())
            os.rename(path, final)
            fsync_dir(d)
            log = PartitionLog.open(
                final, self._config_for(tp.topic), clock=self._clock,
                had_clean_shutdown=False, handle_cache=self.handle_cache, rng=self._rng,
                topic=tp.topic, partition=tp.partition)
            log.inline_flush = self.inline_flush
            self._logs[tp] = log
            self._log_dir_of[tp] = d
        self._future_dirs.clear()

    # -- access -----------------------------------------------------------------------

    def get_log(self, topic: str, partition: int) -> PartitionLog | None:
        return self._logs.get((topic, partition))  # type: ignore[call-overload]

    def get_or_create_log(
        self, topic: str, partition: int, config: LogConfig | None = None
    ) -> PartitionLog:
        """The partition's log, created (in the dir with the fewest partitions) if new."""
        tp = TopicPartition(topic, partition)
        with self._lock:
            self._check_open()
            log = self._logs.get(tp)
            if log is not None:
                return log
            if not topic or "/" in topic or topic in (".", ".."):
                raise StorageError(f"invalid topic name {topic!r}")
            if partition < 0:
                raise StorageError(f"invalid partition {partition}")
            d = self._next_log_dir()
            log = PartitionLog.open(
                os.path.join(d, tp.dir_name()),
                config or self._config_for(topic),
                clock=self._clock,
                handle_cache=self.handle_cache,
                rng=self._rng,
                topic=topic,
                partition=partition,
            )
            log.inline_flush = self.inline_flush
            self._logs[tp] = log
            self._log_dir_of[tp] = d
            return log

    def _next_log_dir(self) -> str:
        counts = dict.fromkeys(self.log_dirs, 0)
        for d in self._log_dir_of.values():
            counts[d] += 1
        return min(self.log_dirs, key=lambda d: counts[d])

    @property
    def clock(self) -> Callable[[], int]:
        return self._clock

    @property
    def cleaner(self) -> LogCleaner:
        """The log cleaner of these logs (created on first use; reads the
        `cleaner-offset-checkpoint` files). See `storage.cleaner`."""
        with self._lock:
            if self._cleaner is None:
                from storage.cleaner import LogCleaner

                self._cleaner = LogCleaner(self)
            return self._cleaner

    def log_dir_of(self, topic: str, partition: int) -> str | None:
        return self._log_dir_of.get((topic, partition))  # type: ignore[call-overload]

    def all_logs(self) -> Iterator[tuple[TopicPartition, PartitionLog]]:
        with self._lock:
            items = list(self._logs.items())
        return iter(items)

    def __len__(self) -> int:
        return len(self._logs)

    def update_config(self, topic: str, config: LogConfig) -> None:
        """Apply new configs to every partition of `topic`."""
        with self._lock:
            for tp, log in self._logs.items():
                if tp.topic == topic:
                    log.update_config(config)

    # -- moving a log to another log dir (storage.log_move) ----------------------------

    def begin_move(self, topic: str, partition: int, dest_dir: str) -> LogMove | None:
        """Start moving the partition's log to `dest_dir`: roll it and reserve the future
        dir. None when the log is already in `dest_dir`. Raises ValueError when `dest_dir`
        is not one of `log_dirs`, KeyError when there is no such log, StorageError when
        the log is being moved already. Then: `move.copy_bulk()` in a worker thread, and
        `finish_move(move)` (or `abort_move(move)` if the copy failed)."""
        if dest_dir not in self.log_dirs:
            raise ValueError(f"{dest_dir} is not a log dir")
        tp = TopicPartition(topic, partition)
        with self._lock:
            self._check_open()
            log = self._logs[tp]
            source = self._log_dir_of[tp]
            if source == dest_dir:
                return None
            if tp in self._moves:
                raise StorageError(f"{tp.dir_name()} is being moved already")
            log.roll()
            move = LogMove(topic, partition, log, source, dest_dir,
                           os.path.join(dest_dir, log_future_dir_name(topic, partition)),
                           immutable_below=log.active_segment.base_offset)
            self._moves[tp] = move
            return move

    def finish_move(self, move: LogMove) -> PartitionLog | None:
        """Copy the rest with the log closed, swap the dirs and reopen the log in its new
        dir (see `storage.log_move`). Blocks appends to the partition meanwhile. None (and
        the copy discarded) when the log was deleted or replaced during the bulk copy.
        `OSError` from the copy leaves the old log closed: the caller must not go on."""
        tp = TopicPartition(move.topic, move.partition)
        with self._lock:
            self._moves.pop(tp, None)
            log = self._logs.get(tp)
            if log is not move.log or self._closed:
                move.discard()
                return None
            log.close(flush=True)
            doomed = os.path.join(move.source_dir, log_delete_dir_name(tp))
            try:
                move.copy_rest()
                os.rename(log.dir, doomed)
            except OSError:
                move.discard()
                self._reopen(tp, log, move.source_dir, log.dir)
                raise
            fsync_dir(move.source_dir)
            final = os.path.join(move.dest_dir, tp.dir_name())
            os.rename(move.future_path, final)
            fsync_dir(move.dest_dir)
            moved = self._reopen(tp, log, move.dest_dir, final)
            self._pending_dir_deletes.append(
                (self._clock() + log.config.file_delete_delay_ms, doomed))
            if self._cleaner is not None:
                self._cleaner.forget(move.topic, move.partition, move.source_dir)
            self._write_checkpoints(move.source_dir)
            self._write_checkpoints(move.dest_dir)
            return moved

    def _reopen(self, tp: TopicPartition, old: PartitionLog, d: str, path: str
                ) -> PartitionLog:
        log = PartitionLog.open(
            path, old.config, clock=self._clock, recovery_point=old.recovery_point,
            log_start_offset=old.log_start_offset, had_clean_shutdown=True,
            handle_cache=self.handle_cache, rng=self._rng, topic=tp.topic,
            partition=tp.partition)
        log.inline_flush = self.inline_flush
        self._logs[tp] = log
        self._log_dir_of[tp] = d
        return log

    def abort_move(self, move: LogMove) -> None:
        """Give up a move before `finish_move` (its bulk copy failed): drop the copy."""
        with self._lock:
            if self._moves.get(TopicPartition(move.topic, move.partition)) is move:
                del self._moves[TopicPartition(move.topic, move.partition)]
        move.discard()

    def moves(self) -> list[LogMove]:
        """The moves under way (DescribeLogDirs lists them as future replicas)."""
        with self._lock:
            return list(self._moves.values())

    # -- deletion ---------------------------------------------------------------------

    def delete_log(self, topic: str, partition: int) -> bool:
        """Kafka's `asyncDelete`: close the log, rename its dir to
        `<topic>-<partition>.<uuid>-delete`, remove it after `file.delete.delay.ms`."""
        tp = TopicPartition(topic, partition)
        with self._lock:
            log = self._logs.pop(tp, None)
            if log is None:
                return False
            d = self._log_dir_of.pop(tp)
            delay = log.config.file_delete_delay_ms
            log.close(flush=False)
            target = os.path.join(d, log_delete_dir_name(tp))
            os.rename(log.dir, target)
            fsync_dir(d)
            self._pending_dir_deletes.append((self._clock() + delay, target))
            self._write_checkpoints(d)
            if self._cleaner is not None:
                self._cleaner.forget(topic, partition, d)
            if delay <= 0:
                self.delete_pending(self._clock())
            return True

    def delete_pending(self, now_ms: int | None = None) -> int:
        """Remove `-delete` dirs (and `*.deleted` segment files) whose delay has passed."""
        now = self._clock() if now_ms is None else now_ms
        with self._lock:
            due = [p for t, p in self._pending_dir_deletes if t <= now]
            self._pending_dir_deletes = [(t, p) for t, p in self._pending_dir_deletes if t > now]
            logs = list(self._logs.values())
        for path in due:
            shutil.rmtree(path, ignore_errors=True)
        for log in logs:
            log.delete_pending_files(now)
        return len(due)

    def pending_deletes(self) -> list[str]:
        return [p for _, p in self._pending_dir_deletes]

    # -- periodic work ----------------------------------------------------------------

    def cleanup_logs(self, now_ms: int | None = None) -> int:
        """Retention for every log (Kafka's `cleanupLogs`, run every
        `log.retention.check.interval.ms`), then due file deletions. Returns the number
        of segments deleted."""
        now = self._clock() if now_ms is None else now_ms
        total = 0
        for _, log in self.all_logs():
            total += log.delete_old_segments(now)
        self.delete_pending(now)
        return total

    def flush_dirty_logs(self, now_ms: int | None = None) -> list[TopicPartition]:
        """Kafka's `flushDirtyLogs`: flush every log whose last flush is at least its own
        `flush.ms` ago, and the rolled segments of any log (Kafka schedules that flush on
        roll). Blocking (fsync): run it in a worker thread; appends go on meanwhile, since
        `PartitionLog.flush` holds the log's lock only to pick the files."""
        now = self._clock() if now_ms is None else now_ms
        flushed = []
        for tp, log in self.all_logs():
            if now - log.last_flush_ms >= log.config.flush_ms:
                log.flush()
                flushed.append(tp)
            elif log.recovery_point < log.active_segment.base_offset:
                log.flush(log.active_segment.base_offset)
                flushed.append(tp)
        return flushed

    def checkpoint_recovery_points(self) -> None:
        for d in self.log_dirs:
            self._write_recovery_points(d)

    def checkpoint_log_start_offsets(self) -> None:
        for d in self.log_dirs:
            self._write_log_start_offsets(d)

    def _logs_in(self, d: str) -> dict[TopicPartition, PartitionLog]:
        with self._lock:
            return {tp: log for tp, log in self._logs.items() if self._log_dir_of[tp] == d}

    def _write_recovery_points(self, d: str) -> None:
        logs = self._logs_in(d)
        write_offset_checkpoint(
            os.path.join(d, RECOVERY_POINT_CHECKPOINT_FILE),
            {tp: log.recovery_point for tp, log in logs.items()},
        )

    def _write_log_start_offsets(self, d: str) -> None:
        # Kafka writes only logs whose start offset is past their first segment's base.
        logs = self._logs_in(d)
        write_offset_checkpoint(
            os.path.join(d, LOG_START_OFFSET_CHECKPOINT_FILE),
            {
                tp: log.log_start_offset
                for tp, log in logs.items()
                if log.log_start_offset > log.segments[0].base_offset
            },
        )

    def _write_checkpoints(self, d: str) -> None:
        self._write_recovery_points(d)
        self._write_log_start_offsets(d)

    # -- shutdown ---------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("log manager is shut down")

    def shutdown(self) -> None:
        """Flush and close every log, write checkpoints, then the clean-shutdown marker."""
        with self._lock:
            if self._closed:
                return
            for _, log in self.all_logs():
                log.close(flush=True)
            for d in self.log_dirs:
                self._write_checkpoints(d)
                _write_clean_shutdown_file(d)
            self._closed = True
            self._unlock_dirs()

    def close_without_shutdown(self) -> None:
        """Release descriptors and dir locks without flushing, checkpointing or writing the
        marker: what a crash leaves behind (for tests)."""
        with self._lock:
            for _, log in self.all_logs():
                log.release_handles()
            self._closed = True
            self._unlock_dirs()

    def __enter__(self) -> LogManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _write_clean_shutdown_file(d: str) -> None:
    """Kafka's `CleanShutdownFileHandler.write`: {"version":"0","broker_epoch":"-1"}."""
    path = os.path.join(d, CLEAN_SHUTDOWN_FILE_NAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps({"version": "0", "broker_epoch": "-1"}, separators=(",", ":")))
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(d)


def _random_cluster_id() -> str:
    return random_directory_id()

