"""Each listener's clients are told the advertised address of that listener."""

from __future__ import annotations

import pytest
import trio

from protocol.messages.metadata_request import MetadataRequest
from tests.wire import WireClient


@pytest.fixture
def broker_config(tmp_path):
    return {
        "listeners": "INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0",
        "advertised.listeners": "INTERNAL://broker.internal:19092,EXTERNAL://127.0.0.1:0",
        "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
        "log.dirs": str(tmp_path / "data"),
    }


async def _brokers_seen(port: int) -> list[tuple[str, int]]:
    client = await WireClient.connect("127.0.0.1", port)
    try:
        response = await client.request(3, 12, MetadataRequest(topics=[]))
    finally:
        await client.aclose()
    return [(b.host, b.port) for b in response.brokers]


async def test_metadata_answers_with_the_listener_the_request_came_in_on(broker) -> None:
    bound = {listener.name: port for listener, port in broker.broker.bound}
    assert await _brokers_seen(bound["INTERNAL"]) == [("broker.internal", 19092)]
    assert await _brokers_seen(bound["EXTERNAL"]) == [("127.0.0.1", bound["EXTERNAL"])]


async def test_a_real_client_on_the_external_listener_works(broker) -> None:
    from confluent_kafka.admin import AdminClient

    bound = {listener.name: port for listener, port in broker.broker.bound}

    def list_brokers() -> list[str]:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{bound['EXTERNAL']}"})
        metadata = admin.list_topics(timeout=10)
        return [f"{b.host}:{b.port}" for b in metadata.brokers.values()]

    assert await trio.to_thread.run_sync(list_brokers) == [f"127.0.0.1:{bound['EXTERNAL']}"]
