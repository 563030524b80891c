"""Per-topic log configuration with Kafka's names, types, defaults and valid ranges.

Source: `storage/.../internals/log/LogConfig.java` and `server-common/.../ServerLogConfigs.java`
(Kafka 4.x). `LogConfig.from_dict` parses Kafka-style values (strings such as "604800000",
"true", "compact,delete") or already-typed Python values, rejects unknown names and
out-of-range values with `InvalidConfig`, and fills the rest with Kafka's defaults.

Constructing `LogConfig(...)` directly skips validation on purpose: tests use tiny segments
(Kafka has the internal `internal.segment.bytes` for the same reason, which we accept too).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from storage.errors import InvalidConfig

__all__ = ["LONG_MAX", "LogConfig"]

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1

DEFAULT_SEGMENT_BYTES = 1024 * 1024 * 1024
DEFAULT_SEGMENT_MS = 24 * 7 * 60 * 60 * 1000
DEFAULT_RETENTION_MS = 24 * 7 * 60 * 60 * 1000
DEFAULT_DELETE_RETENTION_MS = 24 * 60 * 60 * 1000
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024 + 12  # 1 MiB + Records.LOG_OVERHEAD
DEFAULT_INDEX_BYTES = 10 * 1024 * 1024

_COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")


def _parse_long(name: str, value: Any, bits: int = 64) -> int:
    if isinstance(value, bool):
        raise InvalidConfig(f"Invalid value {value!r} for configuration {name}: Not a number")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str):
        try:
            result = int(value.strip(), 10)
        except ValueError:
            raise InvalidConfig(
                f"Invalid value {value} for configuration {name}: Not a number of type "
                f"{'INT' if bits == 32 else 'LONG'}"
            ) from None
    else:
        raise InvalidConfig(f"Invalid value {value!r} for configuration {name}")
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if not lo <= result <= hi:
        raise InvalidConfig(f"Invalid value {value} for configuration {name}: out of range")
    return result


def _parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidConfig(
        f"Invalid value {value} for configuration {name}: Expected value to be either true or false"
    )


def _parse_double(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidConfig(f"Invalid value {value!r} for configuration {name}")
    try:
        return float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise InvalidConfig(
            f"Invalid value {value} for configuration {name}: Not a number of type DOUBLE"
        ) from None


def _parse_list(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")] if value.strip() else []
    elif isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    else:
        raise InvalidConfig(f"Invalid value {value!r} for configuration {name}")
    return tuple(items)


def _parse_string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidConfig(f"Invalid value {value!r} for configuration {name}")
    return value.strip()


# Kafka name -> (attribute, parser, minimum or None)
_SPEC: dict[str, tuple[str, str, float | None]] = {
    "segment.bytes": ("segment_bytes", "int", 1024 * 1024),
    "internal.segment.bytes": ("internal_segment_bytes", "int?", None),
    "segment.ms": ("segment_ms", "long", 1),
    "segment.jitter.ms": ("segment_jitter_ms", "long", 0),
    "segment.index.bytes": ("segment_index_bytes", "int", 4),
    "index.interval.bytes": ("index_interval_bytes", "int", 0),
    "flush.messages": ("flush_messages", "long", 1),
    "flush.ms": ("flush_ms", "long", 0),
    "retention.bytes": ("retention_bytes", "long", None),
    "retention.ms": ("retention_ms", "long", -1),
    "max.message.bytes": ("max_message_bytes", "int", 0),
    "file.delete.delay.ms": ("file_delete_delay_ms", "long", 0),
    "delete.retention.ms": ("delete_retention_ms", "long", 0),
    "min.compaction.lag.ms": ("min_compaction_lag_ms", "long", 0),
    "max.compaction.lag.ms": ("max_compaction_lag_ms", "long", 1),
    "min.cleanable.dirty.ratio": ("min_cleanable_dirty_ratio", "double", 0),
    "cleanup.policy": ("cleanup_policy", "list", None),
    "compression.type": ("compression_type", "string", None),
    "compression.gzip.level": ("compression_gzip_level", "int", None),
    "compression.lz4.level": ("compression_lz4_level", "int", None),
    "compression.zstd.level": ("compression_zstd_level", "int", None),
    "preallocate": ("preallocate", "bool", None),
    "message.timestamp.type": ("message_timestamp_type", "string", None),
    "message.timestamp.before.max.ms": ("message_timestamp_before_max_ms", "long", 0),
    "message.timestamp.after.max.ms": ("message_timestamp_after_max_ms", "long", 0),
    "min.insync.replicas": ("min_insync_replicas", "int", 1),
    "unclean.leader.election.enable": ("unclean_leader_election_enable", "bool", None),
    "remote.storage.enable": ("remote_storage_enable", "bool", None),
    "local.retention.ms": ("local_retention_ms", "long", -2),
    "local.retention.bytes": ("local_retention_bytes", "long", -2),
    "leader.replication.throttled.replicas": (
        "leader_replication_throttled_replicas",
        "list",
        None,
    ),
    "follower.replication.throttled.replicas": (
        "follower_replication_throttled_replicas",
        "list",
        None,
    ),
}


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Topic-level log settings. Attribute = Kafka name with dots as underscores."""

    segment_bytes: int = DEFAULT_SEGMENT_BYTES
    internal_segment_bytes: int | None = None
    segment_ms: int = DEFAULT_SEGMENT_MS
    segment_jitter_ms: int = 0
    segment_index_bytes: int = DEFAULT_INDEX_BYTES
    index_interval_bytes: int = 4096
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX
    retention_bytes: int = -1
    retention_ms: int = DEFAULT_RETENTION_MS
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    file_delete_delay_ms: int = 60000
    delete_retention_ms: int = DEFAULT_DELETE_RETENTION_MS
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = LONG_MAX
    min_cleanable_dirty_ratio: float = 0.5
    cleanup_policy: tuple[str, ...] = ("delete",)
    compression_type: str = "producer"
    compression_gzip_level: int = -1
    compression_lz4_level: int = 9
    compression_zstd_level: int = 3
    preallocate: bool = False
    message_timestamp_type: str = "CreateTime"
    message_timestamp_before_max_ms: int = LONG_MAX
    message_timestamp_after_max_ms: int = LONG_MAX
    min_insync_replicas: int = 1
    unclean_leader_election_enable: bool = False
    remote_storage_enable: bool = False
    local_retention_ms: int = -2
    local_retention_bytes: int = -2
    leader_replication_throttled_replicas: tuple[str, ...] = ()
    follower_replication_throttled_replicas: tuple[str, ...] = ()
    #: Names explicitly set (topic overrides), as Kafka's `overriddenConfigs`.
    overridden: frozenset[str] = field(default=frozenset(), compare=False)

    # -- derived values, as Kafka's LogConfig methods ------------------------------------

    @property
    def segment_size(self) -> int:
        """`segment.bytes`, or `internal.segment.bytes` when set (Kafka's `segmentSize()`)."""
        return (
            self.segment_bytes
            if self.internal_segment_bytes is None
            else self.internal_segment_bytes
        )

    @property
    def compact(self) -> bool:
        return "compact" in (p.lower() for p in self.cleanup_policy)

    @property
    def delete(self) -> bool:
        return "delete" in (p.lower() for p in self.cleanup_policy)

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @property
    def max_segment_ms(self) -> int:
        """Kafka's `maxSegmentMs()`: compacted topics also roll by `max.compaction.lag.ms`."""
        if self.compact and self.max_compaction_lag_ms > 0:
            return min(self.max_compaction_lag_ms, self.segment_ms)
        return self.segment_ms

    def random_segment_jitter(self, rng: random.Random | None = None) -> int:
        """Kafka's `randomSegmentJitter()`: |random int| % min(segment.jitter.ms, segment.ms)."""
        if self.segment_jitter_ms == 0:
            return 0
        r = (rng or random).randrange(0, INT_MAX + 1)
        return r % min(self.segment_jitter_ms, self.segment_ms)

    # -- parsing --------------------------------------------------------------------------

    @classmethod
    def from_dict(
        cls, props: Mapping[str, Any], defaults: LogConfig | Mapping[str, Any] | None = None
    ) -> LogConfig:
        """Parse Kafka topic configs (`{"retention.ms": "1000", ...}`) over `defaults`.

        Raises `InvalidConfig` for unknown names, unparsable or out-of-range values, as
        Kafka's `LogConfig.validate` does.
        """
        if isinstance(defaults, LogConfig):
            base = defaults
        elif defaults:
            base = cls.from_dict(defaults)
        else:
            base = cls()
        changes: dict[str, Any] = {}
        for name, raw in props.items():
            spec = _SPEC.get(name)
            if spec is None:
                raise InvalidConfig(f"Unknown topic config name: {name}")
            attr, kind, minimum = spec
            value: Any
            if kind == "int":
                value = _parse_long(name, raw, 32)
            elif kind == "int?":
                value = None if raw is None else _parse_long(name, raw, 32)
            elif kind == "long":
                value = _parse_long(name, raw)
            elif kind == "double":
                value = _parse_double(name, raw)
            elif kind == "bool":
                value = _parse_bool(name, raw)
            elif kind == "list":
                value = _parse_list(name, raw)
            else:
                value = _parse_string(name, raw)
            if minimum is not None and value is not None and value < minimum:
                raise InvalidConfig(
                    f"Invalid value {raw} for configuration {name}: "
                    f"Value must be at least {minimum!r}"  # as Java prints an Integer/Double
                )
            changes[attr] = value
        cfg = dataclasses.replace(base, **changes, overridden=base.overridden | frozenset(props))
        cfg._validate()
        return cfg

    def _validate(self) -> None:
        for policy in self.cleanup_policy:
            if policy.lower() not in ("compact", "delete"):
                raise InvalidConfig(
                    f"Invalid value {','.join(self.cleanup_policy)} for configuration "
                    "cleanup.policy: "
                    f"String must be one of: compact, delete"
                )
        if self.message_timestamp_type not in ("CreateTime", "LogAppendTime"):
            raise InvalidConfig(
                f"Invalid value {self.message_timestamp_type} for configuration "
                f"message.timestamp.type: String must be one of: CreateTime, LogAppendTime"
            )
        if self.compression_type not in _COMPRESSION_TYPES:
            raise InvalidConfig(
                f"Invalid value {self.compression_type} for configuration compression.type: "
                f"String must be one of: {', '.join(_COMPRESSION_TYPES)}"
            )
        if not 0 <= self.min_cleanable_dirty_ratio <= 1:
            raise InvalidConfig(
                f"Invalid value {self.min_cleanable_dirty_ratio} for configuration "
                f"min.cleanable.dirty.ratio: Value must be no more than 1"
            )
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms:
            raise InvalidConfig(
                "conflict topic config setting "
                f"min.compaction.lag.ms ({self.min_compaction_lag_ms}) "
                f"> max.compaction.lag.ms ({self.max_compaction_lag_ms})"
            )

    def to_dict(self) -> dict[str, str]:
        """Every config as Kafka names and Kafka-style string values (DescribeConfigs)."""
        out: dict[str, str] = {}
        for name, (attr, kind, _) in _SPEC.items():
            value = getattr(self, attr)
            if kind == "int?":
                if value is None:
                    continue
            if kind == "bool":
                out[name] = "true" if value else "false"
            elif kind == "list":
                out[name] = ",".join(value)
            else:
                out[name] = str(value)
        return out

    @staticmethod
    def names() -> list[str]:
        """The topic config names we know, sorted (internal ones excluded)."""
        return sorted(n for n in _SPEC if not n.startswith("internal."))
