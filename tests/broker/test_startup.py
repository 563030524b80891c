"""Start-up: logs are loaded with their topics' settings and the log says how the last
stop went."""

from __future__ import annotations

import logging

from broker.config import BrokerConfig
from broker.server import Broker
from protocol.records import build_batch


def test_logs_load_with_their_topic_configs_and_last_stop_is_logged(tmp_path, caplog) -> None:
    config = BrokerConfig({"log.dirs": str(tmp_path / "data"), "log.segment.bytes": "2097152"})
    first = Broker(config)
    first.topics.create("small", 1, {"segment.bytes": "1048576", "retention.ms": "12345"})
    log = first.topics.log("small", 0)
    assert log is not None
    log.append(build_batch([(b"k", b"v")]))
    first.close()

    with caplog.at_level(logging.INFO, logger="odradek.server"):
        second = Broker(config)
    reloaded = second.logs.get_log("small", 0)
    assert reloaded is not None
    assert reloaded.config.segment_bytes == 1048576
    assert reloaded.config.retention_ms == 12345
    assert any("last_stop=clean" in r.getMessage() for r in caplog.records)
    second.logs.close_without_shutdown()  # a crash

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="odradek.server"):
        third = Broker(config)
    try:
        assert any("last_stop=unclean" in r.getMessage() for r in caplog.records)
        assert third.logs.get_log("small", 0).config.segment_bytes == 1048576
    finally:
        third.close()
