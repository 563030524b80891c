"""Topics: names, ids, partition counts and topic-level config overrides.

How this works
--------------
A one-node cluster's metadata is small: the topics. `TopicRegistry` is its one owner. It
keeps each topic's id (a random UUID, as Kafka assigns), partition count and config
overrides, and persists them in `odradek-metadata.json` in the first log dir, written
atomically (temp file, fsync, rename). Each partition folder also gets Kafka's own
`partition.metadata` file (`version: 0` / `topic_id: <base64>`), so a data dir stays
readable by Kafka's tools and partitions found on disk without a registry entry (a data dir
copied from elsewhere) are adopted with their topic id.

Validation follows Kafka's: topic names (`Topic.validate`: 1-249 characters of
`[a-zA-Z0-9._-]`, not `.` or `..`), collisions between names that differ only in `.` and
`_`, partition counts, replication factors on a one-broker cluster, and topic configs
(through `storage.LogConfig.from_dict`). Failures raise `TopicError` with the Kafka error
code and message a handler puts in its response.

State changes are plain synchronous methods; the broker calls them from handlers.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from protocol.errors import ErrorCode
from storage import LogConfig
from storage.errors import InvalidConfig

if TYPE_CHECKING:
    from storage import LogManager, PartitionLog

METADATA_FILE = "odradek-metadata.json"
PARTITION_METADATA_FILE = "partition.metadata"
MAX_TOPIC_NAME_LENGTH = 249
_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]+")
#: Kafka's internal topics (`Topic.isInternal`).
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})
#: KRaft's metadata log; no client may create it (`ControllerApis.createTopics`).
CLUSTER_METADATA_TOPIC = "__cluster_metadata"
#: Kafka's `ReplicationControlManager.MAX_PARTITIONS_PER_BATCH`: the most partitions one
#: CreateTopics request, or one topic of a CreatePartitions request, may add.
MAX_PARTITIONS_PER_REQUEST = 10_000


class TopicError(Exception):
    """A topic operation Kafka would refuse, with the error code it would answer."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def validate_topic_name(name: str) -> None:
    """Kafka's `Topic.validate`, with its 4.x messages."""
    prefix = "Topic name is invalid: "
    if not name:
        raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION,
                         prefix + "the empty string is not allowed")
    if name in (".", ".."):
        raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"{prefix}'{name}' is not allowed")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise TopicError(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"{prefix}the length of '{name}' is longer than the max allowed length "
            f"{MAX_TOPIC_NAME_LENGTH}")
    if not _LEGAL_TOPIC.fullmatch(name):
        raise TopicError(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"{prefix}'{name}' contains one or more characters other than ASCII alphanumerics, "
            "'.', '_' and '-'")


def is_valid_topic_name(name: str) -> bool:
    try:
        validate_topic_name(name)
    except TopicError:
        return False
    return True


def _collision_key(name: str) -> str:
    return name.replace(".", "_")


def topic_id_to_base64(topic_id: uuid.UUID) -> str:
    """Kafka's text form of a UUID: URL-safe base64 of its 16 bytes, unpadded."""
    return base64.urlsafe_b64encode(topic_id.bytes).decode("ascii").rstrip("=")


def topic_id_from_base64(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def new_topic_id() -> uuid.UUID:
    """A random topic id that is neither the zero UUID nor Kafka's reserved ids."""
    while True:
        candidate = uuid.uuid4()
        # Kafka reserves ids whose first 8 bytes are zero (Uuid.ZERO_UUID, METADATA_TOPIC_ID)
        # and rejects ids whose base64 form starts with '-'.
        if candidate.bytes[:8] != bytes(8) and not topic_id_to_base64(candidate).startswith("-"):
            return candidate


@dataclass(slots=True)
class Topic:
    name: str
    topic_id: uuid.UUID
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)

    @property
    def internal(self) -> bool:
        return self.name in INTERNAL_TOPICS


class TopicRegistry:
    def __init__(self, log_manager: LogManager, topic_defaults: Mapping[str, str]) -> None:
        self._logs = log_manager
        self._defaults = topic_log_defaults(topic_defaults)
        self._path = Path(log_manager.log_dirs[0]) / METADATA_FILE
        self._topics: dict[str, Topic] = {}
        self._by_id: dict[uuid.UUID, Topic] = {}
        #: Names by their `.`/`_`-unified form, to refuse colliding names.
        self._by_collision_key: dict[str, str] = {}
        self._load()

    # -- queries ---------------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return name in self._topics

    def __iter__(self) -> Iterator[Topic]:
        return iter(sorted(self._topics.values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._topics)

    def get(self, name: str) -> Topic | None:
        return self._topics.get(name)

    def by_id(self, topic_id: uuid.UUID) -> Topic | None:
        return self._by_id.get(topic_id)

    @property
    def defaults(self) -> LogConfig:
        return self._defaults

    def log_config(self, name: str) -> LogConfig:
        topic = self._topics.get(name)
        if topic is None or not topic.configs:
            return self._defaults
        return LogConfig.from_dict(topic.configs, self._defaults)

    def log(self, name: str, partition: int) -> PartitionLog | None:
        """The partition's log, or None if the topic or partition does not exist."""
        topic = self._topics.get(name)
        if topic is None or not 0 <= partition < topic.partitions:
            return None
        log = self._logs.get_log(name, partition)
        if log is None:
            log = self._create_log(topic, partition)
        return log

    # -- changes ---------------------------------------------------------------------------

    def check_new_topic(self, name: str, partitions: int,
                        configs: Mapping[str, str | None]) -> LogConfig:
        """Raise `TopicError` if `create` would refuse these arguments; else the topic's
        config. Checks run in Kafka's order: name, existence, collision, configs, partitions."""
        validate_topic_name(name)
        if name in self._topics:
            raise TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        other = self._by_collision_key.get(_collision_key(name))
        if other is not None:
            raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION,
                             f"Topic '{name}' collides with existing topic: {other}")
        config = self.check_configs(configs)
        if partitions <= 0:
            raise TopicError(ErrorCode.INVALID_PARTITIONS,
                             "Number of partitions was set to an invalid non-positive value.")
        return config

    def check_configs(self, configs: Mapping[str, str | None]) -> LogConfig:
        """Topic config overrides as Kafka validates them on creation (INVALID_CONFIG)."""
        for key, value in configs.items():
            if value is None:
                raise TopicError(ErrorCode.INVALID_CONFIG,
                                 f"Null value not supported for topic configs: {key}")
        try:
            return LogConfig.from_dict(dict(configs), self._defaults)
        except InvalidConfig as exc:
            raise TopicError(ErrorCode.INVALID_CONFIG, str(exc)) from exc

    def create(self, name: str, partitions: int, configs: Mapping[str, str] | None = None,
               topic_id: uuid.UUID | None = None) -> Topic:
        configs = dict(configs or {})
        self.check_new_topic(name, partitions, configs)
        topic = Topic(name, topic_id or new_topic_id(), partitions, configs)
        self._add(topic)
        self._save()
        for partition in range(partitions):
            self._create_log(topic, partition)
        return topic

    def check_add_partitions(self, name: str, total: int) -> Topic:
        """Raise `TopicError` if `add_partitions(name, total)` would refuse; else the topic.
        Kafka's messages (`ReplicationControlManager.createPartitions`)."""
        topic = self._require(name)
        if total == topic.partitions:
            raise TopicError(ErrorCode.INVALID_PARTITIONS,
                             f"Topic already has {topic.partitions} partition(s).")
        if total < topic.partitions:
            raise TopicError(
                ErrorCode.INVALID_PARTITIONS,
                f"The topic {name} currently has {topic.partitions} partition(s); {total} would "
                "not be an increase.")
        return topic

    def add_partitions(self, name: str, total: int) -> Topic:
        topic = self.check_add_partitions(name, total)
        old = topic.partitions
        topic.partitions = total
        self._save()
        for partition in range(old, total):
            self._create_log(topic, partition)
        return topic

    def set_defaults(self, topic_defaults: Mapping[str, str]) -> None:
        """New broker-level topic defaults (dynamic broker configs): every topic's logs
        follow them, except for the configs the topic overrides."""
        self._defaults = dataclasses.replace(
            LogConfig.from_dict(dict(topic_defaults)), overridden=frozenset())
        for topic in self._topics.values():
            self._logs.update_config(topic.name, self.log_config(topic.name))

    def set_configs(self, name: str, configs: Mapping[str, str]) -> Topic:
        """Replace the topic's config overrides (validated first)."""
        topic = self._require(name)
        try:
            config = LogConfig.from_dict(dict(configs), self._defaults)
        except InvalidConfig as exc:
            raise TopicError(ErrorCode.INVALID_CONFIG, str(exc)) from exc
        topic.configs = dict(configs)
        self._save()
        self._logs.update_config(name, config)
        return topic

    def delete(self, name: str) -> Topic:
        topic = self._require(name)
        del self._topics[name]
        del self._by_id[topic.topic_id]
        key = _collision_key(name)
        if self._by_collision_key.get(key) == name:
            del self._by_collision_key[key]
            for other in self._topics:  # another name may share the key (data dir adoption)
                if _collision_key(other) == key:
                    self._by_collision_key[key] = other
                    break
        self._save()
        for partition in range(topic.partitions):
            self._logs.delete_log(name, partition)
        return topic

    def _add(self, topic: Topic) -> None:
        self._topics[topic.name] = topic
        self._by_id[topic.topic_id] = topic
        self._by_collision_key.setdefault(_collision_key(topic.name), topic.name)

    def _require(self, name: str) -> Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                             "This server does not host this topic-partition.")
        return topic

    # -- persistence -----------------------------------------------------------------------

    def _create_log(self, topic: Topic, partition: int) -> PartitionLog:
        log = self._logs.get_or_create_log(topic.name, partition, self.log_config(topic.name))
        meta = Path(log.dir) / PARTITION_METADATA_FILE
        if not meta.exists():
            _write_atomically(
                meta, f"version: 0\ntopic_id: {topic_id_to_base64(topic.topic_id)}\n")
        return log

    def _save(self) -> None:
        data = {
            "version": 1,
            "topics": {
                t.name: {"id": topic_id_to_base64(t.topic_id), "partitions": t.partitions,
                         "configs": t.configs}
                for t in self._topics.values()
            },
        }
        _write_atomically(self._path, json.dumps(data, indent=1, sort_keys=True) + "\n")

    def _load(self) -> None:
        if self._path.exists():
            data = json.loads(self._path.read_text(encoding="utf-8"))
            for name, entry in data.get("topics", {}).items():
                self._add(Topic(name, topic_id_from_base64(entry["id"]),
                                int(entry["partitions"]), dict(entry.get("configs", {}))))
        adopted = False
        for tp, log in self._logs.all_logs():
            found = self._topics.get(tp.topic)
            if found is not None:
                topic = found
            else:
                topic_id = _read_partition_metadata(Path(log.dir)) or new_topic_id()
                topic = Topic(tp.topic, topic_id, 0)
                self._add(topic)
                adopted = True
            if tp.partition >= topic.partitions:
                topic.partitions = tp.partition + 1
                adopted = True
        if adopted:
            self._save()


def topic_log_defaults(topic_defaults: Mapping[str, str]) -> LogConfig:
    """The broker's topic defaults as a LogConfig (they are not overrides: `overridden`
    stays empty)."""
    return dataclasses.replace(LogConfig.from_dict(dict(topic_defaults)),
                               overridden=frozenset())


def stored_topic_configs(log_dir: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """Topic config overrides as persisted in `log_dir`, read before the logs are opened
    (so that each log is loaded and recovered with its own settings)."""
    path = Path(log_dir) / METADATA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {name: dict(entry.get("configs", {}))
            for name, entry in data.get("topics", {}).items() if entry.get("configs")}


def log_config_with(defaults: LogConfig, overrides: Mapping[str, str]) -> LogConfig:
    """`defaults` with a topic's overrides; the defaults alone if the overrides are bad."""
    if not overrides:
        return defaults
    try:
        return LogConfig.from_dict(dict(overrides), defaults)
    except InvalidConfig:
        return defaults


def _read_partition_metadata(directory: Path) -> uuid.UUID | None:
    try:
        text = (directory / PARTITION_METADATA_FILE).read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "topic_id" and value.strip():
            try:
                return topic_id_from_base64(value.strip())
            except ValueError:
                return None
    return None


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
