"""Dynamic broker configs (KIP-226): cluster-wide defaults and this broker's overrides.

How this works
--------------
AlterConfigs and IncrementalAlterConfigs on a BROKER resource change one of two layers:
the cluster-wide defaults (resource name "") or this broker's own configs (resource name =
our node id). `DynamicConfigs` keeps both, persisted in `odradek-dynamic-configs.json` in
the first log dir (written atomically: temp file, fsync, rename, fsync of the dir), so they
survive restarts as Kafka's do (Kafka keeps them in its metadata log).

`update` validates a new set of configs for one layer the way Kafka's
`DynamicBrokerConfig.validate` does (read-only names, security configs that need a listener
prefix, types and ranges, per-broker configs at the cluster level), then installs the
layers in `BrokerConfig.set_dynamic` (every `config[...]` reader sees the new value at once)
and recomputes the topic defaults, so that topics without an override follow a changed
`log.retention.ms` and the like. Names Kafka does not know are accepted and stored, as
Kafka does.

A new data dir starts with the cluster-level `min.insync.replicas` that Kafka 4.x's
controller sets when eligible leader replicas (KIP-966) are enabled, which they are by
default: Kafka reports it as a DYNAMIC_DEFAULT_BROKER_CONFIG and refuses to remove it.

`Broker.__init__` should call `attach(broker)` once the topic registry exists; until it
does, the first config request attaches lazily.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from broker.config import (
    _DEFS,
    LISTENER_ONLY_SECURITY_CONFIGS,
    PER_BROKER_CONFIGS,
    ConfigError,
    KafkaType,
    kafka_broker_defs,
    topic_defaults,
)
from protocol.errors import ErrorCode

if TYPE_CHECKING:
    from broker.server import Broker

log = logging.getLogger("odradek.config")

DYNAMIC_CONFIG_FILE = "odradek-dynamic-configs.json"
ELR_MIN_ISR_MESSAGE = "Cluster-level min.insync.replicas cannot be removed while ELR is enabled."

_TYPE_NAMES = {KafkaType.INT: "INT", KafkaType.SHORT: "SHORT", KafkaType.LONG: "LONG",
               KafkaType.DOUBLE: "DOUBLE"}
_INT_BITS = {KafkaType.INT: 32, KafkaType.SHORT: 16, KafkaType.LONG: 64}
#: Kafka's `ValidString`/`ValidList` validators on the dynamic broker configs we check.
_ONE_OF: dict[str, tuple[str, ...]] = {
    "log.cleanup.policy": ("compact", "delete"),
    "log.message.timestamp.type": ("CreateTime", "LogAppendTime"),
    "compression.type": ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
}


class ConfigUpdateError(Exception):
    """A config change Kafka would refuse, with its error code and message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _java_set(names: set[str]) -> str:
    return "[" + ", ".join(sorted(names)) + "]"


def _check_value(name: str, value: str) -> None:
    """Kafka's `ConfigDef.parseType` and validators for one broker config value."""
    defn = kafka_broker_defs().get(name)
    if defn is None:
        return
    text = value.strip()
    prefix = f"Invalid value {value} for configuration {name}"
    if defn.type is KafkaType.BOOLEAN:
        if text.lower() not in ("true", "false"):
            raise ConfigError(f"{prefix}: Expected value to be either true or false")
        return
    number: float | None = None
    if defn.type in _INT_BITS:
        try:
            number = int(text)
        except ValueError:
            number = None
        bits = _INT_BITS[defn.type]
        if number is None or not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
            raise ConfigError(f"{prefix}: Not a number of type {_TYPE_NAMES[defn.type]}")
    elif defn.type is KafkaType.DOUBLE:
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(f"{prefix}: Not a number of type DOUBLE") from None
    ours = _DEFS.get(name)
    if number is not None and ours is not None and ours.minimum is not None:
        if number < ours.minimum:
            minimum = ours.minimum
            shown = int(minimum) if float(minimum).is_integer() else minimum
            raise ConfigError(f"{prefix}: Value must be at least {shown}")
    if name in _ONE_OF:
        allowed = _ONE_OF[name]
        items = [v.strip() for v in text.split(",")] if name == "log.cleanup.policy" else [text]
        if any(item not in allowed for item in items):
            raise ConfigError(f"{prefix}: String must be one of: {', '.join(allowed)}")


def validate_broker_configs(props: Mapping[str, str], per_broker: bool) -> None:
    """Kafka's `DynamicBrokerConfig.validate(props, perBrokerConfig)`; INVALID_REQUEST."""
    defs = kafka_broker_defs()
    read_only = {n for n in props if n in defs and not defs[n].dynamic}
    if read_only:
        raise ConfigUpdateError(ErrorCode.INVALID_REQUEST,
                                f"Cannot update these configs dynamically: {_java_set(read_only)}")
    security = {n for n in props if n in LISTENER_ONLY_SECURITY_CONFIGS}
    if security:
        raise ConfigUpdateError(
            ErrorCode.INVALID_REQUEST,
            "These security configs can be dynamically updated only per-listener using the "
            f"listener prefix: {_java_set(security)}")
    try:
        for name, value in props.items():
            _check_value(name, value)
    except ConfigError as exc:
        raise ConfigUpdateError(ErrorCode.INVALID_REQUEST, str(exc)) from None
    if not per_broker:
        only_per_broker = {n for n in props if n in PER_BROKER_CONFIGS}
        if only_per_broker:
            raise ConfigUpdateError(
                ErrorCode.INVALID_REQUEST,
                "Cannot update these configs at default cluster level, broker id must be "
                f"specified: {_java_set(only_per_broker)}")


@dataclasses.dataclass
class DynamicConfigs:
    path: Path
    cluster_default: dict[str, str]
    per_broker: dict[str, str]

    @classmethod
    def load(cls, log_dir: str | os.PathLike[str], static_min_isr: str) -> DynamicConfigs:
        path = Path(log_dir) / DYNAMIC_CONFIG_FILE
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, dict(data.get("cluster_default", {})),
                       dict(data.get("per_broker", {})))
        store = cls(path, {"min.insync.replicas": static_min_isr}, {})
        store.save()
        return store

    def layer(self, resource_name: str) -> dict[str, str]:
        return self.cluster_default if resource_name == "" else self.per_broker

    def save(self) -> None:
        data = {"version": 1, "cluster_default": self.cluster_default,
                "per_broker": self.per_broker}
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_ATTACHED: weakref.WeakKeyDictionary[Broker, DynamicConfigs] = weakref.WeakKeyDictionary()


def attach(broker: Broker) -> DynamicConfigs:
    """Load the persisted dynamic configs and put them into effect (once per broker)."""
    store = _ATTACHED.get(broker)
    if store is None:
        store = DynamicConfigs.load(broker.logs.log_dirs[0],
                                    str(broker.config.static_configs().get(
                                        "min.insync.replicas", "1")).strip())
        _ATTACHED[broker] = store
        try:
            _apply(broker, store.cluster_default, store.per_broker)
        except ConfigError as exc:  # a value a newer/older version accepted
            log.warning("ignoring stored dynamic configs: %s", exc)
    return store



def update(broker: Broker, resource_name: str, new_layer: Mapping[str, str],
           validate_only: bool) -> None:
    """Replace one layer ("" = cluster default, else this broker) after Kafka's checks."""
    store = attach(broker)
    validate_broker_configs(new_layer, per_broker=resource_name != "")
    if resource_name == "" and "min.insync.replicas" in store.cluster_default \
            and "min.insync.replicas" not in new_layer:
        raise ConfigUpdateError(ErrorCode.INVALID_CONFIG, ELR_MIN_ISR_MESSAGE)
    cluster_default = dict(new_layer) if resource_name == "" else store.cluster_default
    per_broker = store.per_broker if resource_name == "" else dict(new_layer)
    if validate_only:
        return
    try:
        _apply(broker, cluster_default, per_broker)
    except ConfigError as exc:
        raise ConfigUpdateError(ErrorCode.INVALID_REQUEST, str(exc)) from None
    store.cluster_default, store.per_broker = dict(cluster_default), dict(per_broker)
    store.save()
    log.info("dynamic broker configs resource=%r configs=%s", resource_name, sorted(new_layer))


def _apply(broker: Broker, cluster_default: Mapping[str, str],
           per_broker: Mapping[str, str]) -> None:
    broker.config.set_dynamic(cluster_default, per_broker)
    _apply_topic_defaults(broker)


def _apply_topic_defaults(broker: Broker) -> None:
    """New topic defaults for the registry and the logs of topics that follow them."""
    broker.topics.set_defaults(topic_defaults(broker.config))
