"""Shared fixtures: a broker served in the test's own trio nursery on a free port."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from hypothesis import settings

from broker.config import BrokerConfig
from broker.server import Broker

# CI runs are reproducible: Hypothesis uses fixed seeds there, and explores freely elsewhere.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


class RunningBroker:
    def __init__(self, broker: Broker, port: int) -> None:
        self.broker = broker
        self.host = "127.0.0.1"
        self.port = port

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


@pytest.fixture
def broker_config(tmp_path) -> dict[str, Any]:
    """Config for the `broker` fixture; tests may change it before the broker starts."""
    return {
        "listeners": "PLAINTEXT://127.0.0.1:0",
        "log.dirs": str(tmp_path / "data"),
    }


@pytest.fixture
async def broker(nursery: trio.Nursery, broker_config: dict[str, Any]
                 ) -> AsyncIterator[RunningBroker]:
    instance = Broker(BrokerConfig(broker_config))
    ports = await nursery.start(instance.serve)
    yield RunningBroker(instance, ports[0])


@pytest.fixture
async def wire(broker: RunningBroker) -> AsyncIterator[Any]:
    """A `tests.wire.WireClient` connected to the `broker` fixture."""
    from tests.wire import WireClient

    client = await WireClient.connect(broker.host, broker.port)
    yield client
    await client.aclose()
