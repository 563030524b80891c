"""Exceptions raised by the storage layer.

Each carries `error_code`, the number of the Kafka error a broker answers with when the
exception reaches a request (see `org.apache.kafka.common.protocol.Errors`). Storage does
not import protocol classes; the numbers are the wire contract, not a dependency.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of everything storage raises on purpose. KAFKA_STORAGE_ERROR."""

    error_code = 56


class OffsetOutOfRange(StorageError):
    """An offset outside [log_start_offset, log_end_offset]. OFFSET_OUT_OF_RANGE."""

    error_code = 1

    def __init__(
        self, offset: int, log_start_offset: int, log_end_offset: int, what: str = ""
    ) -> None:
        super().__init__(
            what or f"offset {offset} is out of range [{log_start_offset}, {log_end_offset}]"
        )
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class CorruptRecord(StorageError):
    """A batch whose CRC does not match its bytes. CORRUPT_MESSAGE."""

    error_code = 2


class InvalidRecord(StorageError):
    """Bytes that are not whole v2 record batches (bad length, magic, torn tail). INVALID_RECORD."""

    error_code = 87


class RecordTooLarge(StorageError):
    """A batch larger than `max.message.bytes`. MESSAGE_TOO_LARGE."""

    error_code = 10


class CorruptIndex(StorageError):
    """An index file that fails its sanity check; the segment's indexes are rebuilt."""


class IndexOffsetOverflow(StorageError):
    """An offset whose distance from a segment's base offset does not fit in an int32."""


class InvalidConfig(StorageError, ValueError):
    """A topic config name or value that Kafka would reject. INVALID_CONFIG."""

    error_code = 40


class InconsistentClusterId(StorageError):
    """A log dir whose meta.properties names another cluster. INCONSISTENT_CLUSTER_ID."""

    error_code = 104
