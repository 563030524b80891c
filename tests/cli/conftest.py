"""Helpers for the `odradek` command line tests.

- `await cli(broker, "topics", "list")`: run one command in-process with typer's
  `CliRunner`, in a worker thread so that the `broker` fixture (served by the test's own
  trio loop) keeps answering; `--bootstrap-server` is added for commands that take it.
  Returns the `typer.testing.Result` (exit_code, stdout, stderr).
- `await odradek(*args, stdin=b"")`: run `python -m broker ARGS` as a real subprocess.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from typer.testing import CliRunner, Result

from broker.cli import app
from tests.conftest import RunningBroker

REPO = Path(__file__).resolve().parents[2]
CLIENT_COMMANDS = {"topics", "groups", "produce", "consume", "check"}
PROCESS_TIMEOUT_S = 60


def with_bootstrap(broker: RunningBroker | None, args: tuple[str, ...]) -> list[str]:
    out = list(args)
    if broker is not None and args and args[0] in CLIENT_COMMANDS:
        out += ["--bootstrap-server", broker.bootstrap]
    return out


async def cli(broker: RunningBroker | None, *args: str, input: bytes | str | None = None,
              env: dict[str, Any] | None = None) -> Result:
    runner = CliRunner()
    argv = with_bootstrap(broker, args)
    return await trio.to_thread.run_sync(
        lambda: runner.invoke(app, argv, input=input, env=env, catch_exceptions=False))


async def odradek(*args: str, stdin: bytes = b"") -> Any:
    with trio.fail_after(PROCESS_TIMEOUT_S):
        return await trio.run_process([sys.executable, "-m", "broker", *args], stdin=stdin,
                                      capture_stdout=True, capture_stderr=True, check=False,
                                      cwd=str(REPO))


@pytest.fixture
def make_topic(broker: RunningBroker) -> Callable[..., Any]:
    """`make_topic("t", 3)`: create a topic through the broker's registry (no client)."""
    def make(name: str, partitions: int = 1, **configs: str) -> Any:
        return broker.broker.topics.create(name, partitions, configs)

    return make
