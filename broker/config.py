"""Broker configuration: Kafka's config names, types and defaults.

Values come, lowest precedence first, from the defaults below, a `server.properties`-style
file (`--config`), environment variables and `--override key=value` arguments. Environment
variables use the Apache Kafka container image's mapping: `KAFKA_` + the name upper-cased,
with `.` -> `_`, `_` -> `__` and `-` -> `___` (`KAFKA_LOG_RETENTION_MS` is
`log.retention.ms`). Unknown names are kept (Kafka keeps them too) and reported by
`unknown_names()` so that the CLI can warn about typos.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


class ConfigType(Enum):
    BOOLEAN = "BOOLEAN"
    STRING = "STRING"
    INT = "INT"
    SHORT = "SHORT"
    LONG = "LONG"
    DOUBLE = "DOUBLE"
    LIST = "LIST"
    PASSWORD = "PASSWORD"


class ConfigError(ValueError):
    """A config value that does not parse as its type, or is out of its range."""


@dataclass(frozen=True, slots=True)
class ConfigDef:
    name: str
    type: ConfigType
    default: Any
    doc: str = ""
    minimum: float | None = None


def _parse(defn: ConfigDef, raw: Any) -> Any:
    """Parse a value the way Kafka's `ConfigDef.parseType` does."""
    if raw is None:
        return None
    t = defn.type
    try:
        if t is ConfigType.BOOLEAN:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in ("true", "false"):
                raise ConfigError(f"{defn.name}: expected true or false, got {raw!r}")
            return text == "true"
        value: int | float
        if t in (ConfigType.INT, ConfigType.SHORT, ConfigType.LONG):
            value = int(str(raw).strip())
            limit = {ConfigType.INT: 2**31, ConfigType.SHORT: 2**15, ConfigType.LONG: 2**63}[t]
            if not -limit <= value < limit:
                raise ConfigError(f"{defn.name}: {value} is out of range for {t.value}")
        elif t is ConfigType.DOUBLE:
            value = float(str(raw).strip())
        elif t is ConfigType.LIST:
            if isinstance(raw, list | tuple):
                return [str(v) for v in raw]
            text = str(raw).strip()
            return [v.strip() for v in text.split(",") if v.strip()] if text else []
        else:
            return str(raw).strip()
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{defn.name}: cannot parse {raw!r} as {t.value}") from exc
    if defn.minimum is not None and value < defn.minimum:
        raise ConfigError(f"{defn.name}: {value} is below the minimum {defn.minimum}")
    return value


B, S, INT, SH, L, D, LI = (
    ConfigType.BOOLEAN,
    ConfigType.STRING,
    ConfigType.INT,
    ConfigType.SHORT,
    ConfigType.LONG,
    ConfigType.DOUBLE,
    ConfigType.LIST,
)

#: Broker configs Odradek understands, with Apache Kafka 4.x's defaults.
BROKER_CONFIGS: tuple[ConfigDef, ...] = (
    ConfigDef("node.id", INT, 1, "The node id of this broker.", 0),
    ConfigDef("listeners", LI, ["PLAINTEXT://:9092"], "Listeners as NAME://host:port."),
    ConfigDef("advertised.listeners", LI, None,
              "Listeners given to clients; defaults to listeners."),
    ConfigDef("listener.security.protocol.map", LI, [
        "PLAINTEXT:PLAINTEXT", "SSL:SSL", "SASL_PLAINTEXT:SASL_PLAINTEXT", "SASL_SSL:SASL_SSL",
    ]),
    ConfigDef("log.dirs", LI, None, "Directories holding the partition logs."),
    ConfigDef("log.dir", S, "/tmp/kafka-logs", "Used when log.dirs is not set."),
    ConfigDef("socket.request.max.bytes", INT, 104857600, "Largest request frame accepted.", 1),
    ConfigDef("connections.max.idle.ms", L, 600000, "Idle connections are closed after this."),
    ConfigDef("num.partitions", INT, 1, "Partitions of an auto-created topic.", 1),
    ConfigDef("default.replication.factor", INT, 1),
    ConfigDef("auto.create.topics.enable", B, True),
    ConfigDef("delete.topic.enable", B, True),
    ConfigDef("min.insync.replicas", INT, 1, minimum=1),
    ConfigDef("message.max.bytes", INT, 1048588, "Largest record batch accepted.", 0),
    ConfigDef("compression.type", S, "producer"),
    ConfigDef("log.segment.bytes", INT, 1073741824, minimum=1024 * 1024),
    ConfigDef("log.roll.ms", L, None),
    ConfigDef("log.roll.hours", INT, 168, minimum=1),
    ConfigDef("log.roll.jitter.ms", L, None),
    ConfigDef("log.roll.jitter.hours", INT, 0, minimum=0),
    ConfigDef("log.retention.ms", L, None),
    ConfigDef("log.retention.minutes", INT, None),
    ConfigDef("log.retention.hours", INT, 168),
    ConfigDef("log.retention.bytes", L, -1),
    ConfigDef("log.retention.check.interval.ms", L, 300000, minimum=1),
    ConfigDef("log.index.size.max.bytes", INT, 10485760, minimum=4),
    ConfigDef("log.index.interval.bytes", INT, 4096, minimum=0),
    ConfigDef("log.flush.interval.messages", L, LONG_MAX, minimum=1),
    ConfigDef("log.flush.interval.ms", L, None),
    ConfigDef("log.flush.scheduler.interval.ms", L, LONG_MAX),
    ConfigDef("log.flush.offset.checkpoint.interval.ms", INT, 60000, minimum=0),
    ConfigDef("log.cleanup.policy", LI, ["delete"]),
    ConfigDef("log.cleaner.enable", B, True),
    ConfigDef("log.cleaner.delete.retention.ms", L, 86400000, minimum=0),
    ConfigDef("log.cleaner.min.cleanable.ratio", D, 0.5),
    ConfigDef("log.cleaner.min.compaction.lag.ms", L, 0, minimum=0),
    ConfigDef("log.cleaner.max.compaction.lag.ms", L, LONG_MAX, minimum=1),
    ConfigDef("log.cleaner.backoff.ms", L, 15000, minimum=0),
    ConfigDef("log.message.timestamp.type", S, "CreateTime"),
    ConfigDef("log.message.timestamp.before.max.ms", L, LONG_MAX, minimum=0),
    ConfigDef("log.message.timestamp.after.max.ms", L, 3600000, minimum=0),
    ConfigDef("log.preallocate", B, False),
    ConfigDef("log.segment.delete.delay.ms", L, 60000, minimum=0),
    ConfigDef("offsets.topic.num.partitions", INT, 50, minimum=1),
    ConfigDef("offsets.topic.replication.factor", SH, 3, minimum=1),
    ConfigDef("offsets.topic.segment.bytes", INT, 104857600, minimum=1),
    ConfigDef("offsets.retention.minutes", INT, 10080, minimum=1),
    ConfigDef("offsets.retention.check.interval.ms", L, 600000, minimum=1),
    ConfigDef("offset.metadata.max.bytes", INT, 4096),
    ConfigDef("group.min.session.timeout.ms", INT, 6000),
    ConfigDef("group.max.session.timeout.ms", INT, 1800000),
    ConfigDef("group.initial.rebalance.delay.ms", INT, 3000),
    ConfigDef("group.max.size", INT, INT_MAX, minimum=1),
    ConfigDef("transaction.max.timeout.ms", INT, 900000, minimum=1),
    ConfigDef("transactional.id.expiration.ms", INT, 604800000, minimum=1),
    ConfigDef("transaction.state.log.num.partitions", INT, 50, minimum=1),
    ConfigDef("producer.id.expiration.ms", INT, 86400000, minimum=1),
    ConfigDef("fetch.max.bytes", INT, 57671680, minimum=1024),
    ConfigDef("max.incremental.fetch.session.cache.slots", INT, 1000, minimum=0),
)

_DEFS: dict[str, ConfigDef] = {d.name: d for d in BROKER_CONFIGS}


def env_name(config_name: str) -> str:
    """The environment variable that sets `config_name` (the Apache Kafka image's rule)."""
    mangled = "".join({".": "_", "_": "__", "-": "___"}.get(c, c) for c in config_name)
    return "KAFKA_" + mangled.upper()


def config_name_from_env(variable: str) -> str | None:
    """Inverse of `env_name`, or None if `variable` does not start with `KAFKA_`."""
    if not variable.startswith("KAFKA_"):
        return None
    body = variable[len("KAFKA_"):].lower()
    out = re.sub(r"___|__|_", lambda m: {"___": "-", "__": "_", "_": "."}[m.group(0)], body)
    return out


def read_properties(path: str | Path) -> dict[str, str]:
    """Parse a Java `.properties` file (the subset Kafka's config files use)."""
    values: dict[str, str] = {}
    pending = ""
    for raw_line in Path(path).read_text(encoding="utf-8").splitlines():
        line = pending + raw_line.strip() if pending else raw_line.strip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        match = re.match(r"((?:\\.|[^=:\s])+)\s*[=:\s]\s*(.*)$", line)
        if match:
            key, value = match.group(1), match.group(2)
        else:
            key, value = line, ""
        values[key.replace("\\", "")] = value
    return values


class BrokerConfig:
    """Parsed broker configuration. Read values with `config["name"]`."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._raw: dict[str, Any] = dict(values or {})
        self._values: dict[str, Any] = {}
        for defn in BROKER_CONFIGS:
            if defn.name in self._raw:
                self._values[defn.name] = _parse(defn, self._raw[defn.name])
            else:
                self._values[defn.name] = defn.default

    @classmethod
    def load(
        cls,
        config_file: str | Path | None = None,
        overrides: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> BrokerConfig:
        values: dict[str, Any] = {}
        if config_file is not None:
            values.update(read_properties(config_file))
        for variable, value in (os.environ if environ is None else environ).items():
            name = config_name_from_env(variable)
            if name is not None and name in _DEFS:
                values[name] = value
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--override expects key=value, got {item!r}")
            values[key.strip()] = value
        return cls(values)

    def __getitem__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        return self._raw[name]

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def is_set(self, name: str) -> bool:
        """Whether `name` was given explicitly (file, environment or override)."""
        return name in self._raw

    def unknown_names(self) -> list[str]:
        return sorted(k for k in self._raw if k not in _DEFS)

    @property
    def log_dirs(self) -> list[str]:
        dirs = self["log.dirs"]
        return list(dirs) if dirs else [self["log.dir"]]

    @property
    def retention_ms(self) -> int:
        """`log.retention.ms`, else minutes, else hours, as Kafka resolves them."""
        if self["log.retention.ms"] is not None:
            return int(self["log.retention.ms"])
        if self["log.retention.minutes"] is not None:
            return int(self["log.retention.minutes"]) * 60_000
        return int(self["log.retention.hours"]) * 3_600_000

    @property
    def roll_ms(self) -> int:
        if self["log.roll.ms"] is not None:
            return int(self["log.roll.ms"])
        return int(self["log.roll.hours"]) * 3_600_000

    @property
    def roll_jitter_ms(self) -> int:
        if self["log.roll.jitter.ms"] is not None:
            return int(self["log.roll.jitter.ms"])
        return int(self["log.roll.jitter.hours"]) * 3_600_000

    @property
    def listeners(self) -> list[Listener]:
        return [Listener.parse(item) for item in self["listeners"]]

    @property
    def advertised_listeners(self) -> list[Listener]:
        items = self["advertised.listeners"]
        return [Listener.parse(item) for item in items] if items else self.listeners


#: Topic configs and the broker configs that give their defaults (Kafka's
#: `ServerTopicConfigSynonyms`); the first broker name that is set wins.
TOPIC_CONFIG_SYNONYMS: dict[str, tuple[str, ...]] = {
    "segment.bytes": ("log.segment.bytes",),
    "segment.ms": ("log.roll.ms", "log.roll.hours"),
    "segment.jitter.ms": ("log.roll.jitter.ms", "log.roll.jitter.hours"),
    "segment.index.bytes": ("log.index.size.max.bytes",),
    "flush.messages": ("log.flush.interval.messages",),
    "flush.ms": ("log.flush.interval.ms", "log.flush.scheduler.interval.ms"),
    "retention.bytes": ("log.retention.bytes",),
    "retention.ms": ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
    "max.message.bytes": ("message.max.bytes",),
    "index.interval.bytes": ("log.index.interval.bytes",),
    "delete.retention.ms": ("log.cleaner.delete.retention.ms",),
    "min.compaction.lag.ms": ("log.cleaner.min.compaction.lag.ms",),
    "max.compaction.lag.ms": ("log.cleaner.max.compaction.lag.ms",),
    "file.delete.delay.ms": ("log.segment.delete.delay.ms",),
    "min.cleanable.dirty.ratio": ("log.cleaner.min.cleanable.ratio",),
    "cleanup.policy": ("log.cleanup.policy",),
    "min.insync.replicas": ("min.insync.replicas",),
    "compression.type": ("compression.type",),
    "preallocate": ("log.preallocate",),
    "message.timestamp.type": ("log.message.timestamp.type",),
    "message.timestamp.before.max.ms": ("log.message.timestamp.before.max.ms",),
    "message.timestamp.after.max.ms": ("log.message.timestamp.after.max.ms",),
}

_UNIT_MS = {"hours": 3_600_000, "minutes": 60_000}


def topic_defaults(config: BrokerConfig) -> dict[str, str]:
    """Topic config defaults as this broker's configuration sets them."""
    out: dict[str, str] = {}
    for topic_name, broker_names in TOPIC_CONFIG_SYNONYMS.items():
        for name in broker_names:
            value = config[name]
            if value is None:
                continue
            unit = name.rsplit(".", 1)[-1]
            if unit in _UNIT_MS:
                value = int(value) * _UNIT_MS[unit]
            if isinstance(value, list):
                out[topic_name] = ",".join(value)
            elif isinstance(value, bool):
                out[topic_name] = "true" if value else "false"
            else:
                out[topic_name] = str(value)
            break
    return out


@dataclass(frozen=True, slots=True)
class Listener:
    """One `NAME://host:port` entry of `listeners` or `advertised.listeners`."""

    name: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listener:
        match = re.fullmatch(r"([A-Za-z0-9_\-]+)://(\[[^\]]*\]|[^:]*):(-?\d+)", text.strip())
        if not match:
            raise ConfigError(f"listener {text!r} is not of the form NAME://host:port")
        host = match.group(2)
        if host.startswith("["):
            host = host[1:-1]
        return cls(match.group(1).upper(), host, int(match.group(3)))
