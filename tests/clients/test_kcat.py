"""kcat (librdkafka's command-line client) against the broker: `kcat -L` lists the broker,
its topics and partitions, and asking for an unknown topic auto-creates it.

kcat is a system package (`make sysdeps` installs it); under CI a missing kcat fails."""

from __future__ import annotations

import json

import pytest

from tests.clients.conftest import run_kcat
from tests.conftest import RunningBroker

pytestmark = pytest.mark.timeout(120)


async def test_kcat_lists_broker_and_topics(broker: RunningBroker, kcat: str) -> None:
    broker.broker.topics.create("orders", 3)
    broker.broker.topics.create("__consumer_offsets", 1)
    done = await run_kcat(kcat, "-L", "-J", "-b", broker.bootstrap, "-m", "30")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    b = broker.broker
    assert listing["controllerid"] == b.node_id
    assert listing["brokers"] == [{"id": b.node_id, "name": f"127.0.0.1:{broker.port}"}]
    topics = {t["topic"]: t for t in listing["topics"]}
    assert sorted(topics) == ["__consumer_offsets", "orders"]
    assert [(p["partition"], p["leader"], p["replicas"], p["isrs"])
            for p in topics["orders"]["partitions"]] == [
        (i, b.node_id, [{"id": b.node_id}], [{"id": b.node_id}]) for i in range(3)]


async def test_kcat_plain_listing(broker: RunningBroker, kcat: str) -> None:
    done = await run_kcat(kcat, "-L", "-b", broker.bootstrap, "-m", "30")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert f"  broker {broker.broker.node_id} at 127.0.0.1:{broker.port} (controller)" in lines
    assert " 0 topics:" in lines


@pytest.mark.parametrize("broker_config", [{"num.partitions": "2"}], indirect=True)
async def test_kcat_auto_creates_unknown_topic(broker: RunningBroker, kcat: str) -> None:
    done = await run_kcat(kcat, "-L", "-J", "-b", broker.bootstrap, "-t", "fresh", "-m", "30")
    assert done.returncode == 0, done.stderr
    topic = broker.broker.topics.get("fresh")
    assert topic is not None and topic.partitions == 2
    [listed] = json.loads(done.stdout)["topics"]
    assert listed["topic"] == "fresh"
    # librdkafka asks again after the first UNKNOWN_TOPIC_OR_PARTITION; whichever answer it
    # printed, it is one Kafka would give.
    assert (listed.get("error"), len(listed["partitions"])) in (
        (None, 2), ("Broker: Unknown topic or partition", 0))


@pytest.fixture
def broker_config(tmp_path, request) -> dict[str, str]:
    return {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(tmp_path / "data"),
            **getattr(request, "param", {})}
