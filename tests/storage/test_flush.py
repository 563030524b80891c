"""Flush policy: topic `flush.ms` / `flush.messages` (broker `log.flush.interval.*`), Kafka's
`flushDirtyLogs`, and fsync kept off the event loop (`inline_flush=False`)."""

from __future__ import annotations

import trio

from storage.config import LONG_MAX, LogConfig
from storage.manager import LogManager, TopicPartition
from tests.storage.helpers import FakeClock, batch


def test_flush_dirty_logs_honours_each_logs_flush_ms(tmp_path):
    clock = FakeClock()
    mgr = LogManager([tmp_path / "d"], LogConfig(flush_ms=LONG_MAX), clock=clock)
    fast = mgr.get_or_create_log("fast", 0, LogConfig(flush_ms=1000))
    slow = mgr.get_or_create_log("slow", 0, LogConfig(flush_ms=5000))
    never = mgr.get_or_create_log("never", 0)
    for lg in (fast, slow, never):
        lg.append(batch(3))
    start = clock.now
    assert mgr.flush_dirty_logs(start + 999) == []
    assert mgr.flush_dirty_logs(start + 1000) == [TopicPartition("fast", 0)]
    assert fast.recovery_point == 3 and slow.recovery_point == 0
    clock.now = start + 5000
    flushed = mgr.flush_dirty_logs(start + 5000)
    assert TopicPartition("slow", 0) in flushed and TopicPartition("never", 0) not in flushed
    assert slow.recovery_point == 3 and never.recovery_point == 0
    mgr.shutdown()


def test_rolled_segments_are_flushed_whatever_flush_ms(tmp_path):
    clock = FakeClock()
    mgr = LogManager([tmp_path / "d"], LogConfig(), clock=clock)
    lg = mgr.get_or_create_log("t", 0)
    lg.append(batch(2))
    lg.roll()
    lg.append(batch(1))
    assert mgr.flush_dirty_logs(clock.now) == [TopicPartition("t", 0)]
    assert lg.recovery_point == 2, "up to the active segment, as Kafka's flush on roll"
    mgr.shutdown()


def test_flush_messages_inline_and_deferred(tmp_path):
    clock = FakeClock()
    inline = LogManager([tmp_path / "a"], LogConfig(flush_messages=3), clock=clock)
    lg = inline.get_or_create_log("t", 0)
    lg.append(batch(2))
    assert lg.recovery_point == 0 and not lg.flush_due()
    lg.append(batch(1))
    assert lg.recovery_point == 3, "the append that reaches flush.messages fsyncs"
    inline.shutdown()

    deferred = LogManager(
        [tmp_path / "b"], LogConfig(flush_messages=3), clock=clock, inline_flush=False
    )
    lg = deferred.get_or_create_log("t", 0)
    assert lg.inline_flush is False
    lg.append(batch(3))
    assert lg.recovery_point == 0 and lg.flush_due()
    lg.flush()
    assert lg.recovery_point == 3 and not lg.flush_due()
    deferred.shutdown()
    reopened = LogManager([tmp_path / "b"], LogConfig(), clock=clock, inline_flush=False)
    assert reopened.get_log("t", 0).inline_flush is False  # type: ignore[union-attr]
    reopened.shutdown()


async def test_flushing_in_a_worker_thread_while_appending(tmp_path):
    clock = FakeClock()
    mgr = LogManager(
        [tmp_path / "d"],
        LogConfig(flush_ms=0, segment_bytes=2000),
        clock=clock,
        inline_flush=False,
    )
    lg = mgr.get_or_create_log("t", 0)
    async with trio.open_nursery() as nursery:

        async def flusher():
            for _ in range(20):
                await trio.to_thread.run_sync(mgr.flush_dirty_logs, clock.now)

        nursery.start_soon(flusher)
        for _ in range(200):
            lg.append(batch(1, value_size=50))
            await trio.sleep(0)
    await trio.to_thread.run_sync(mgr.flush_dirty_logs, clock.now)
    assert lg.recovery_point == lg.log_end_offset == 200
    assert len(lg.read_bytes(0, 1 << 20)) == lg.size_in_bytes()
    mgr.shutdown()
