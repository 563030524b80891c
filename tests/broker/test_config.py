import pytest

from broker.config import BrokerConfig, ConfigError, Listener, config_name_from_env, env_name


def test_defaults_are_kafkas() -> None:
    config = BrokerConfig()
    assert config["socket.request.max.bytes"] == 104857600
    assert config["num.partitions"] == 1
    assert config["auto.create.topics.enable"] is True
    assert config["message.max.bytes"] == 1048588
    assert config.retention_ms == 168 * 3_600_000
    assert config.log_dirs == ["/tmp/kafka-logs"]
    assert config.listeners == [Listener("PLAINTEXT", "", 9092)]
    assert config.advertised_listeners == config.listeners


def test_file_then_environment_then_overrides(tmp_path) -> None:
    props = tmp_path / "server.properties"
    props.write_text(
        "# comment\nnum.partitions=3\nlog.dirs = /a,/b\nlog.retention.minutes: 5\n"
        "listeners=PLAINTEXT://127.0.0.1:19092,\\\n  OTHER://[::1]:19093\n"
    )
    config = BrokerConfig.load(
        props,
        overrides=["num.partitions=7"],
        environ={"KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false", "KAFKA_NUM_PARTITIONS": "5",
                 "KAFKA_HOME": "/opt/kafka"},
    )
    assert config["num.partitions"] == 7
    assert config["auto.create.topics.enable"] is False
    assert config.log_dirs == ["/a", "/b"]
    assert config.retention_ms == 5 * 60_000
    assert config.listeners == [Listener("PLAINTEXT", "127.0.0.1", 19092),
                                Listener("OTHER", "::1", 19093)]
    assert config.unknown_names() == []


def test_retention_ms_wins_over_minutes_and_hours() -> None:
    config = BrokerConfig({"log.retention.ms": "10", "log.retention.minutes": "5"})
    assert config.retention_ms == 10


@pytest.mark.parametrize(
    "values",
    [{"num.partitions": "zero"}, {"num.partitions": "0"}, {"auto.create.topics.enable": "yes"},
     {"socket.request.max.bytes": str(2**31)}],
)
def test_bad_values_are_rejected(values) -> None:
    with pytest.raises(ConfigError):
        BrokerConfig(values)


def test_override_without_equals_is_rejected() -> None:
    with pytest.raises(ConfigError):
        BrokerConfig.load(None, overrides=["num.partitions"], environ={})


def test_unknown_names_are_kept_and_reported() -> None:
    config = BrokerConfig({"no.such.config": "1"})
    assert config["no.such.config"] == "1"
    assert config.unknown_names() == ["no.such.config"]


@pytest.mark.parametrize(
    ("name", "variable"),
    [("log.retention.ms", "KAFKA_LOG_RETENTION_MS"),
     ("listener.security.protocol.map", "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"),
     ("a_b.c-d", "KAFKA_A__B_C___D")],
)
def test_environment_names_follow_the_kafka_image(name, variable) -> None:
    assert env_name(name) == variable
    assert config_name_from_env(variable) == name


def test_bad_listener() -> None:
    with pytest.raises(ConfigError):
        Listener.parse("localhost:9092")
