"""LogConfig: Kafka's names, defaults, parsing and validation."""

from __future__ import annotations

import random

import pytest

from storage.config import LONG_MAX, LogConfig
from storage.errors import InvalidConfig


def test_defaults_are_kafkas():
    c = LogConfig()
    d = c.to_dict()
    assert d["segment.bytes"] == "1073741824"
    assert d["segment.ms"] == "604800000"
    assert d["segment.jitter.ms"] == "0"
    assert d["segment.index.bytes"] == "10485760"
    assert d["index.interval.bytes"] == "4096"
    assert d["retention.ms"] == "604800000"
    assert d["retention.bytes"] == "-1"
    assert d["flush.messages"] == str(LONG_MAX)
    assert d["flush.ms"] == str(LONG_MAX)
    assert d["cleanup.policy"] == "delete"
    assert d["message.timestamp.type"] == "CreateTime"
    assert d["max.message.bytes"] == "1048588"
    assert d["file.delete.delay.ms"] == "60000"
    assert d["delete.retention.ms"] == "86400000"
    assert d["min.cleanable.dirty.ratio"] == "0.5"
    assert d["min.compaction.lag.ms"] == "0"
    assert d["max.compaction.lag.ms"] == str(LONG_MAX)
    assert d["preallocate"] == "false"
    assert d["compression.type"] == "producer"
    assert c.delete and not c.compact


def test_from_dict_parses_kafka_strings():
    c = LogConfig.from_dict(
        {
            "retention.ms": " 1000 ",
            "segment.bytes": "1048576",
            "cleanup.policy": "compact, delete",
            "preallocate": "TRUE",
            "min.cleanable.dirty.ratio": "0.25",
            "message.timestamp.type": "LogAppendTime",
        }
    )
    assert c.retention_ms == 1000 and c.segment_bytes == 1048576
    assert c.compact and c.delete and c.preallocate and c.log_append_time
    assert c.min_cleanable_dirty_ratio == 0.25
    assert c.overridden == {
        "retention.ms",
        "segment.bytes",
        "cleanup.policy",
        "preallocate",
        "min.cleanable.dirty.ratio",
        "message.timestamp.type",
    }
    again = LogConfig.from_dict(c.to_dict())
    assert again == c


@pytest.mark.parametrize(
    "props",
    [
        {"no.such.config": "1"},
        {"segment.bytes": "1024"},  # at least 1 MiB
        {"segment.bytes": "abc"},
        {"segment.bytes": str(2**31)},  # INT
        {"retention.ms": "-2"},
        {"segment.ms": "0"},
        {"cleanup.policy": "forever"},
        {"message.timestamp.type": "Now"},
        {"preallocate": "yes"},
        {"min.cleanable.dirty.ratio": "1.5"},
        {"compression.type": "brotli"},
        {"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"},
    ],
)
def test_invalid_values_are_rejected(props):
    with pytest.raises(InvalidConfig):
        LogConfig.from_dict(props)


def test_defaults_layering_and_internal_segment_bytes():
    broker = LogConfig.from_dict({"retention.ms": "5000"})
    topic = LogConfig.from_dict({"segment.ms": "100", "internal.segment.bytes": "1000"}, broker)
    assert topic.retention_ms == 5000 and topic.segment_ms == 100
    assert topic.segment_size == 1000
    assert LogConfig().segment_size == 1024**3


def test_max_segment_ms_and_jitter():
    c = LogConfig(segment_ms=1000, cleanup_policy=("compact",), max_compaction_lag_ms=300)
    assert c.max_segment_ms == 300
    assert LogConfig(segment_ms=1000, max_compaction_lag_ms=300).max_segment_ms == 1000
    assert LogConfig().random_segment_jitter(random.Random(1)) == 0
    j = LogConfig(segment_ms=1000, segment_jitter_ms=5000)
    values = {j.random_segment_jitter(random.Random(s)) for s in range(50)}
    assert all(0 <= v < 1000 for v in values) and len(values) > 1


def test_names():
    names = LogConfig.names()
    assert "retention.ms" in names and "internal.segment.bytes" not in names


def test_minimum_is_named_as_kafka_prints_it():
    with pytest.raises(InvalidConfig) as raised:
        LogConfig.from_dict({"segment.bytes": "10"})
    assert str(raised.value) == ("Invalid value 10 for configuration segment.bytes: "
                                 "Value must be at least 1048576")
