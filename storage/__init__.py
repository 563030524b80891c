"""The segment log engine: Kafka's on-disk format, no sockets, no protocol classes.

Layers: `Segment` (one `.log` + `.index` + `.timeindex`) -> `PartitionLog` (a partition's
segments, offsets, retention, recovery) -> `LogManager` (all partitions across log dirs,
checkpoints, clean-shutdown marker). Reads hand out `FileSlice`s for `sendfile`.
"""

from storage.config import LogConfig
from storage.errors import (
    CorruptIndex,
    CorruptRecord,
    InvalidConfig,
    InvalidRecord,
    OffsetOutOfRange,
    RecordTooLarge,
    StorageError,
)
from storage.log import AppendInfo, PartitionLog, ReadInfo, TimestampAndOffset
from storage.manager import LogManager, TopicPartition
from storage.slices import FileSlice

__all__ = [
    "AppendInfo",
    "CorruptIndex",
    "CorruptRecord",
    "FileSlice",
    "InvalidConfig",
    "InvalidRecord",
    "LogConfig",
    "LogManager",
    "OffsetOutOfRange",
    "PartitionLog",
    "ReadInfo",
    "RecordTooLarge",
    "StorageError",
    "TimestampAndOffset",
    "TopicPartition",
]
