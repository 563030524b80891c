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


# -- Kafka's config table, layers and formatting ----------------------------------------------

from broker.config import (  # noqa: E402
    BROKER_CONFIGS,
    ConfigSource,
    KafkaType,
    broker_synonyms,
    default_values,
    java_double,
    kafka_broker_defs,
    kafka_topic_defs,
    normalize,
    topic_defaults,
)
from broker.dynamic_config import ConfigUpdateError, validate_broker_configs  # noqa: E402


def test_our_defaults_are_kafkas_except_where_we_say_so() -> None:
    kafka = kafka_broker_defs()
    ours = default_values()
    differ = {name for name in kafka if ours.get(name) != kafka[name].default}
    # One combined node, id 1 unless configured (Kafka requires node.id and process.roles).
    assert differ == {"node.id", "broker.id", "process.roles"}
    assert all(d.name in kafka for d in BROKER_CONFIGS)


def test_topic_defaults_follow_kafkas_synonyms() -> None:
    defaults = topic_defaults(BrokerConfig(), kafka_topic_defs())
    for name, defn in kafka_topic_defs().items():
        assert defaults.get(name, defn.default) == defn.default, name


@pytest.mark.parametrize(("value", "text"), [
    (0.5, "0.5"), (1.7976931348623157e308, "1.7976931348623157E308"), (1e7, "1.0E7"),
    (1e-4, "1.0E-4"), (0.001, "0.001"), (5.0, "5.0"), (-2.5e10, "-2.5E10")])
def test_doubles_print_as_java_does(value, text) -> None:
    assert java_double(value) == text


def test_normalize_parses_then_prints() -> None:
    assert normalize(" compact , delete ", KafkaType.LIST) == "compact,delete"
    assert normalize(" 0100 ", KafkaType.LONG) == "100"
    assert normalize("TRUE", KafkaType.BOOLEAN) == "true"
    assert normalize("0.50", KafkaType.DOUBLE) == "0.5"
    assert normalize("not a number", KafkaType.INT) == "not a number"


def test_broker_synonyms_are_kafkas() -> None:
    assert broker_synonyms("log.retention.minutes") == [
        "log.retention.ms", "log.retention.minutes", "log.retention.hours"]
    assert broker_synonyms("log.flush.interval.ms") == [
        "log.flush.interval.ms", "log.flush.scheduler.interval.ms"]
    assert broker_synonyms("listener.name.internal.ssl.keystore.type") == [
        "listener.name.internal.ssl.keystore.type", "ssl.keystore.type"]
    assert broker_synonyms("listener.name.x.plain.sasl.jaas.config") == [
        "listener.name.x.plain.sasl.jaas.config", "sasl.jaas.config"]
    assert broker_synonyms("num.partitions") == ["num.partitions"]


def test_dynamic_layers_win_and_can_be_replaced() -> None:
    config = BrokerConfig({"message.max.bytes": "1000", "log.retention.hours": "1"})
    config.set_dynamic({"message.max.bytes": "2000"}, {})
    assert config["message.max.bytes"] == 2000
    config.set_dynamic({"message.max.bytes": "2000"}, {"message.max.bytes": "3000"})
    assert config["message.max.bytes"] == 3000
    assert [source for source, layer in config.layers() if "message.max.bytes" in layer] == [
        ConfigSource.DYNAMIC_BROKER_CONFIG, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
        ConfigSource.STATIC_BROKER_CONFIG, ConfigSource.DEFAULT_CONFIG]
    with pytest.raises(ConfigError):
        config.set_dynamic({}, {"message.max.bytes": "lots"})
    assert config["message.max.bytes"] == 3000  # unchanged by the failed update
    config.set_dynamic({}, {})
    assert config["message.max.bytes"] == 1000
    assert config["num.io.threads"] == "8"  # Kafka's default, a name we do not use


@pytest.mark.parametrize(("props", "per_broker", "message"), [
    ({"listeners": "PLAINTEXT://:1"}, False,
     "Cannot update these configs at default cluster level, broker id must be specified: "
     "[listeners]"),
    ({"node.id": "2", "num.partitions": "2"}, True,
     "Cannot update these configs dynamically: [node.id, num.partitions]"),
    ({"ssl.truststore.type": "PKCS12"}, True,
     "These security configs can be dynamically updated only per-listener using the listener "
     "prefix: [ssl.truststore.type]"),
    ({"log.cleaner.min.cleanable.ratio": "x"}, True,
     "Invalid value x for configuration log.cleaner.min.cleanable.ratio: Not a number of type "
     "DOUBLE"),
    ({"log.preallocate": "yes"}, True,
     "Invalid value yes for configuration log.preallocate: Expected value to be either true "
     "or false"),
    ({"log.cleanup.policy": "delete,zap"}, False,
     "Invalid value delete,zap for configuration log.cleanup.policy: String must be one of: "
     "compact, delete"),
    ({"message.max.bytes": str(2**31)}, True,
     f"Invalid value {2**31} for configuration message.max.bytes: Not a number of type INT"),
])
def test_dynamic_broker_config_validation(props, per_broker, message) -> None:
    with pytest.raises(ConfigUpdateError) as info:
        validate_broker_configs(props, per_broker)
    assert (info.value.code, info.value.message) == (42, message)


def test_unknown_and_dynamic_names_validate() -> None:
    validate_broker_configs({"no.such.config": "x", "log.retention.ms": "5",
                             "listeners": "PLAINTEXT://:1"}, per_broker=True)
