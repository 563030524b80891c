import json

import pytest

from broker.config import BrokerConfig, topic_defaults
from broker.metadata import (
    METADATA_FILE,
    TopicError,
    TopicRegistry,
    topic_id_from_base64,
    topic_id_to_base64,
)
from protocol.errors import ErrorCode
from storage import LogManager


@pytest.fixture
def registry_factory(tmp_path):
    managers = []

    def make() -> TopicRegistry:
        manager = LogManager([str(tmp_path / "a"), str(tmp_path / "b")])
        managers.append(manager)
        return TopicRegistry(manager, topic_defaults(BrokerConfig()))

    yield make
    for manager in managers:
        try:
            manager.shutdown()
        except Exception:
            pass


def test_create_persists_ids_partitions_and_configs(registry_factory, tmp_path) -> None:
    registry = registry_factory()
    topic = registry.create("orders", 3, {"retention.ms": "1000"})
    assert registry.log("orders", 2) is not None
    assert registry.log("orders", 3) is None
    assert registry.log_config("orders").retention_ms == 1000
    registry._logs.shutdown()

    again = registry_factory()
    loaded = again.get("orders")
    assert loaded is not None
    assert (loaded.topic_id, loaded.partitions, loaded.configs) == (
        topic.topic_id, 3, {"retention.ms": "1000"})
    assert again.by_id(topic.topic_id) is loaded


def test_partition_metadata_files_are_kafkas(registry_factory, tmp_path) -> None:
    registry = registry_factory()
    topic = registry.create("t", 2)
    for partition in range(2):
        log = registry.log("t", partition)
        assert log is not None
        text = (tmp_path / log.dir / "partition.metadata").read_text()
        assert text == f"version: 0\ntopic_id: {topic_id_to_base64(topic.topic_id)}\n"


def test_partitions_on_disk_without_registry_are_adopted(registry_factory, tmp_path) -> None:
    registry = registry_factory()
    topic = registry.create("t", 2)
    registry._logs.shutdown()
    (tmp_path / "a" / METADATA_FILE).unlink()
    again = registry_factory()
    adopted = again.get("t")
    assert adopted is not None
    assert (adopted.topic_id, adopted.partitions) == (topic.topic_id, 2)
    saved = json.loads((tmp_path / "a" / METADATA_FILE).read_text())
    assert saved["topics"]["t"]["partitions"] == 2


@pytest.mark.parametrize(
    ("name", "code"),
    [("", ErrorCode.INVALID_TOPIC_EXCEPTION),
     (".", ErrorCode.INVALID_TOPIC_EXCEPTION),
     ("a" * 250, ErrorCode.INVALID_TOPIC_EXCEPTION),
     ("bad/name", ErrorCode.INVALID_TOPIC_EXCEPTION),
     ("exists", ErrorCode.TOPIC_ALREADY_EXISTS),
     ("exi_sts", ErrorCode.INVALID_TOPIC_EXCEPTION)],
)
def test_invalid_creates(registry_factory, name, code) -> None:
    registry = registry_factory()
    registry.create("exists", 1)
    registry.create("exi.sts", 1)
    with pytest.raises(TopicError) as info:
        registry.create(name, 1)
    assert info.value.code == code


def test_bad_partition_count_and_config(registry_factory) -> None:
    registry = registry_factory()
    with pytest.raises(TopicError) as info:
        registry.create("t", 0)
    assert info.value.code == ErrorCode.INVALID_PARTITIONS
    with pytest.raises(TopicError) as info:
        registry.create("t", 1, {"retention.ms": "soon"})
    assert info.value.code == ErrorCode.INVALID_CONFIG
    with pytest.raises(TopicError) as info:
        registry.create("t", 1, {"no.such.config": "1"})
    assert info.value.code == ErrorCode.INVALID_CONFIG
    assert "t" not in registry


def test_add_partitions_and_delete(registry_factory) -> None:
    registry = registry_factory()
    registry.create("t", 1)
    registry.add_partitions("t", 4)
    assert registry.log("t", 3) is not None
    with pytest.raises(TopicError) as info:
        registry.add_partitions("t", 2)
    assert info.value.code == ErrorCode.INVALID_PARTITIONS
    registry.delete("t")
    assert registry.get("t") is None
    assert registry._logs.get_log("t", 0) is None


def test_topic_id_text_form_round_trips() -> None:
    import uuid
    value = uuid.uuid4()
    assert topic_id_from_base64(topic_id_to_base64(value)) == value
    assert len(topic_id_to_base64(value)) == 22
