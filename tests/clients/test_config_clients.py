"""Configs and log dirs through real admin clients over a real socket: kafka-python's
KafkaAdminClient (DescribeConfigs, IncrementalAlterConfigs, AlterConfigs, DescribeLogDirs),
confluent-kafka's AdminClient (librdkafka: DescribeConfigs, AlterConfigs,
IncrementalAlterConfigs) and aiokafka's AIOKafkaAdminClient (DescribeConfigs, AlterConfigs).

What a fresh topic reports is compared with Apache Kafka 4.4's answer for one
(`tests/golden/kafka-configs/scenarios.json`, "describe-topic-plain-v4"). Wire-level
coverage of every version and error is in tests/broker/test_configs_api.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from protocol.records import build_batch
from tests.clients.conftest import in_asyncio, in_thread
from tests.conftest import RunningBroker

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")]

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "kafka-configs" / "scenarios.json"


SOURCES = {"DYNAMIC_TOPIC_CONFIG": 1, "DYNAMIC_BROKER_CONFIG": 2,
           "DYNAMIC_DEFAULT_BROKER_CONFIG": 3, "STATIC_BROKER_CONFIG": 4, "DEFAULT_CONFIG": 5}
#: confluent-kafka's ConfigSource ids are librdkafka's, which are Kafka's.
SOURCE_IDS = {i: i for i in range(7)}
BATCH = build_batch([(b"k", b"v" * 100)], base_timestamp=1_700_000_000_000)


def kafka_fresh_topic() -> dict[str, tuple[str | None, int]]:
    """Kafka 4.4's (value, source) for each config of a topic without overrides."""
    scenarios = json.loads(GOLDEN.read_text())["scenarios"]
    plain = next(s for s in scenarios if s["name"] == "describe-topic-plain-v4")
    return {c["name"]: (c["value"], c["config_source"])
            for c in plain["response"]["results"][0]["configs"]}


# -- kafka-python ---------------------------------------------------------------------------


def kafka_python_session(bootstrap: str) -> dict[str, Any]:
    from kafka import KafkaAdminClient
    from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType

    seen: dict[str, Any] = {}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        topic = ConfigResource(ConfigResourceType.TOPIC, "kp")
        seen["fresh"] = admin.describe_configs([topic], config_filter="all")
        seen["alter"] = admin.alter_configs([ConfigResource(
            ConfigResourceType.TOPIC, "kp",
            configs={"retention.ms": "60000",
                     "cleanup.policy": (AlterConfigOp.APPEND, "compact")})])
        seen["broker_alter"] = admin.alter_configs([ConfigResource(
            ConfigResourceType.BROKER, "1", configs={"log.retention.ms": "7200000"})])
        seen["after"] = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "kp"),
             ConfigResource(ConfigResourceType.BROKER, "1")],
            include_synonyms=True, config_filter="modified")
        seen["legacy"] = admin.alter_configs([ConfigResource(
            ConfigResourceType.TOPIC, "kp", configs={"segment.ms": "100000"})],
            incremental=False)
        seen["reset"] = admin.reset_configs([ConfigResource(
            ConfigResourceType.TOPIC, "kp", configs=["segment.ms"])])
        seen["log_dirs"] = admin.describe_log_dirs()
    finally:
        admin.close()
    return seen


async def test_kafka_python_configs_and_log_dirs(broker: RunningBroker, make_topic) -> None:
    make_topic("kp", 2)
    broker.broker.topics.log("kp", 1).append(BATCH)
    seen = await in_thread(kafka_python_session, broker.bootstrap)
    fresh = seen["fresh"]["topic"]["kp"]
    assert {name: (c["value"], SOURCES[c["config_source"]]) for name, c in fresh.items()} \
        == kafka_fresh_topic()
    assert seen["alter"] == {"topic": {"kp": "OK"}}
    assert seen["broker_alter"] == {"broker": {"1": "OK"}}
    after = seen["after"]
    retention = after["topic"]["kp"]["retention.ms"]
    assert [(s["name"], s["value"], s["source"]) for s in retention["synonyms"]] == [
        ("retention.ms", "60000", "DYNAMIC_TOPIC_CONFIG"),
        ("log.retention.ms", "7200000", "DYNAMIC_BROKER_CONFIG"),
        ("log.retention.hours", "168", "DEFAULT_CONFIG")]
    assert after["topic"]["kp"]["cleanup.policy"]["value"] == "delete,compact"
    assert after["broker"]["1"]["log.retention.ms"]["config_source"] == "DYNAMIC_BROKER_CONFIG"
    assert seen["legacy"] == seen["reset"] == {"topic": {"kp": "OK"}}
    # kafka-python's legacy AlterConfigs re-sends the other overrides it read (the request
    # replaces the whole set); the reset (an incremental DELETE) removed segment.ms again.
    assert broker.broker.topics.get("kp").configs == {"retention.ms": "60000",
                                                      "cleanup.policy": "delete,compact"}
    assert broker.broker.config.retention_ms == 7200000
    (node,) = seen["log_dirs"]
    (log_dir,) = node["log_dirs"]
    assert log_dir["log_dir"] == broker.broker.logs.log_dirs[0]
    assert [(p["partition_index"], p["partition_size"]) for t in log_dir["topics"]
            for p in t["partitions"]] == [(0, 0), (1, len(BATCH))]
    assert log_dir["total_bytes"] >= log_dir["usable_bytes"] > 0


# -- confluent-kafka ------------------------------------------------------------------------


def confluent_session(bootstrap: str) -> dict[str, Any]:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    def wait(futures: dict[Any, Any]) -> dict[str, Any]:
        out = {}
        for resource, future in futures.items():
            try:
                out[resource.name] = future.result(timeout=30)
            except KafkaException as exc:
                out[resource.name] = exc.args[0].code()
        return out

    admin = AdminClient({"bootstrap.servers": bootstrap})
    seen: dict[str, Any] = {}
    topic = ConfigResource(ResourceType.TOPIC, "ck")
    described = wait(admin.describe_configs([topic, ConfigResource(ResourceType.BROKER, "1"),
                                             ConfigResource(ResourceType.TOPIC, "nope")]))
    seen["fresh"] = {name: (e.value, int(e.source)) for name, e in described["ck"].items()}
    node = described["1"]
    seen["broker"] = {name: (node[name].value, int(node[name].source), node[name].is_read_only)
                      for name in ("message.max.bytes", "log.dirs", "process.roles")}
    seen["unknown"] = described["nope"]
    seen["incremental"] = wait(admin.incremental_alter_configs([ConfigResource(
        ResourceType.TOPIC, "ck", incremental_configs=[
            ConfigEntry("retention.ms", "120000",
                        incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("cleanup.policy", "compact",
                        incremental_operation=AlterConfigOpType.APPEND)])]))
    seen["after_incremental"] = {name: (e.value, int(e.source)) for name, e in wait(
        admin.describe_configs([topic]))["ck"].items() if int(e.source) == 1}
    seen["legacy"] = wait(admin.alter_configs([ConfigResource(
        ResourceType.TOPIC, "ck", set_config={"max.message.bytes": "200000"})]))
    seen["bad_value"] = wait(admin.alter_configs([ConfigResource(
        ResourceType.TOPIC, "ck", set_config={"retention.ms": "soon"})]))
    seen["read_only"] = wait(admin.incremental_alter_configs([ConfigResource(
        ResourceType.BROKER, "1", incremental_configs=[ConfigEntry(
            "num.partitions", "3", incremental_operation=AlterConfigOpType.SET)])]))
    return seen


async def test_confluent_kafka_configs(broker: RunningBroker, make_topic) -> None:
    make_topic("ck", 1)
    seen = await in_thread(confluent_session, broker.bootstrap)
    assert {name: (value, SOURCE_IDS[source]) for name, (value, source) in
            seen["fresh"].items()} == kafka_fresh_topic()
    assert seen["broker"] == {
        "message.max.bytes": ("1048588", 5, False),
        "log.dirs": (broker.broker.config["log.dirs"][0], 4, True),
        "process.roles": ("broker,controller", 5, True)}
    assert seen["unknown"] == 3  # UNKNOWN_TOPIC_OR_PARTITION
    assert seen["incremental"] == {"ck": None}
    assert seen["after_incremental"] == {"retention.ms": ("120000", 1),
                                         "cleanup.policy": ("delete,compact", 1)}
    assert seen["legacy"] == {"ck": None}
    assert broker.broker.topics.get("ck").configs == {"max.message.bytes": "200000"}
    assert broker.broker.topics.log("ck", 0).config.max_message_bytes == 200000
    assert seen["bad_value"] == {"ck": 40}  # INVALID_CONFIG
    assert seen["read_only"] == {"1": 42}  # INVALID_REQUEST


# -- aiokafka -------------------------------------------------------------------------------


async def aiokafka_session(bootstrap: str) -> dict[str, Any]:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    seen: dict[str, Any] = {}
    try:
        seen["alter"] = await admin.alter_configs([ConfigResource(
            ConfigResourceType.TOPIC, "ak", configs={"retention.bytes": "1048576"})])
        seen["described"] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "ak"),
             ConfigResource(ConfigResourceType.BROKER, "1")], include_synonyms=True)
    finally:
        await admin.close()
    return seen


async def test_aiokafka_configs(broker: RunningBroker, make_topic) -> None:
    make_topic("ak", 1)
    seen = await in_asyncio(aiokafka_session, broker.bootstrap)
    (alter,) = seen["alter"]
    assert [tuple(r[:2]) for r in alter.resources] == [(0, None)]
    configs = {}
    for response in seen["described"]:
        for result in response.resources:
            assert result[0] == 0, result
            configs[result[3]] = {entry[0]: entry for entry in result[4]}
    assert configs["ak"]["retention.bytes"][1] == "1048576"
    assert configs["ak"]["retention.bytes"][3] == 1  # DYNAMIC_TOPIC_CONFIG
    assert configs["1"]["message.max.bytes"][1] == "1048588"
    assert broker.broker.topics.log("ak", 0).config.retention_bytes == 1048576
