"""Shared helpers for tests that drive the broker with real Kafka clients over a real socket.

Fixtures (on top of tests/conftest.py's `broker`, `broker_config` and `wire`):
- `kcat`: the path of the `kcat` binary. Without one, the test FAILS under CI (`CI` set,
  as `.ci/run` does; `make sysdeps` installs it) and is skipped elsewhere.
- `make_topic`: `make_topic("name", partitions=1, **{"retention.ms": "1000"})` creates a
  topic through the registry (no client needed) and returns its `broker.metadata.Topic`.

Helpers:
- `await in_thread(fn, *args, **kwargs)`: run a blocking client call (kafka-python,
  confluent-kafka) in a worker thread, keeping the broker's trio loop serving.
- `await in_asyncio(async_fn, *args, **kwargs)`: run an asyncio client coroutine (aiokafka)
  in its own event loop in a worker thread.
- `await run_kcat(kcat, *args, stdin=b"")`: run kcat to completion (bounded by
  `KCAT_TIMEOUT_S`), returning the `subprocess.CompletedProcess` with stdout and stderr.

Give real clients generous but bounded timeouts (the test timeout is 120 s).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

import pytest
import trio

from broker.metadata import Topic
from protocol.records import build_batch

T = TypeVar("T")
KCAT_TIMEOUT_S = 60


@pytest.fixture
def kcat() -> str:
    path = shutil.which("kcat")
    if path is None:
        message = "kcat is not installed (run `make sysdeps`, or apt-get install kcat)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def make_topic(broker: Any) -> Callable[..., Topic]:
    def make(name: str, partitions: int = 1, **configs: str) -> Topic:
        return broker.broker.topics.create(name, partitions, configs)

    return make


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await trio.to_thread.run_sync(partial(fn, *args, **kwargs))


async def in_asyncio(async_fn: Callable[..., Coroutine[Any, Any, T]], *args: Any,
                     **kwargs: Any) -> T:
    return await trio.to_thread.run_sync(lambda: asyncio.run(async_fn(*args, **kwargs)))


async def run_kcat(kcat: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(KCAT_TIMEOUT_S):
        return await trio.run_process([kcat, *args], stdin=stdin, capture_stdout=True,
                                      capture_stderr=True, check=False)


def produce(running: Any, topic: str, partitions: int, per_partition: int,
            tag: str = "r") -> set[bytes]:
    """Append `per_partition` records to each partition of `topic` straight into the logs
    (values `<tag>-<partition>-<i>`), wake long polls, and return the values."""
    values = set()
    for p in range(partitions):
        batch = [(None, f"{tag}-{p}-{i}".encode()) for i in range(per_partition)]
        running.broker.topics.log(topic, p).append(build_batch(batch))
        running.broker.waiters.notify(topic, p)
        values.update(v for _, v in batch)
    return values


def wait_for(condition: Callable[[], bool], step: Callable[[], None], what: str,
             timeout_s: float = 40) -> None:
    """Call `step` until `condition` holds; fail (not hang) after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        step()
