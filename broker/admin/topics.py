"""Topic administration over the Kafka protocol: list, describe, create, delete, alter.

What Kafka's `kafka-topics` and `kafka-configs` do, as plain functions of an
`AdminClient` that return data or raise `KafkaError`:

- `list_topics`: Metadata for every topic (internal ones too unless excluded).
- `describe_topics`: Metadata + ListOffsets (earliest and latest of each partition, sent to
  each leader) + DescribeConfigs (the topic's own overrides, `DYNAMIC_TOPIC_CONFIG`).
- `create_topic`: CreateTopics; -1 partitions or replication factor means the broker's
  default (CreateTopics v4+). `if_not_exists` ignores TOPIC_ALREADY_EXISTS.
- `delete_topics`: DeleteTopics by name. `if_exists` ignores UNKNOWN_TOPIC_OR_PARTITION.
- `add_partitions`: CreatePartitions to a new total count.
- `alter_topic_configs`: IncrementalAlterConfigs SET/DELETE on the topic resource.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from uuid import UUID

from broker.admin.client import AdminClient
from broker.admin.errors import KafkaError, check
from protocol.messages.create_partitions_request import (
    CreatePartitionsRequest,
    CreatePartitionsTopic,
)
from protocol.messages.create_topics_request import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from protocol.messages.delete_topics_request import DeleteTopicsRequest, DeleteTopicState
from protocol.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from protocol.messages.incremental_alter_configs_request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from protocol.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)

__all__ = [
    "PartitionInfo",
    "TopicInfo",
    "add_partitions",
    "alter_topic_configs",
    "create_topic",
    "delete_topics",
    "describe_topics",
    "list_offsets",
    "list_topics",
    "topic_configs",
]

CREATE_TOPICS = 19
DELETE_TOPICS = 20
CREATE_PARTITIONS = 37
DESCRIBE_CONFIGS = 32
INCREMENTAL_ALTER_CONFIGS = 44
LIST_OFFSETS = 2
TOPIC_RESOURCE = 2
DYNAMIC_TOPIC_CONFIG = 1
SET, DELETE = 0, 1
EARLIEST, LATEST = -2, -1
TOPIC_ALREADY_EXISTS = 36
UNKNOWN_TOPIC_OR_PARTITION = 3
ZERO_UUID = UUID(int=0)


@dataclass
class PartitionInfo:
    partition: int
    leader: int
    leader_epoch: int
    replicas: list[int]
    isr: list[int]
    earliest: int | None = None
    latest: int | None = None


@dataclass
class TopicInfo:
    name: str
    topic_id: UUID
    internal: bool
    partitions: list[PartitionInfo]
    configs: dict[str, str | None] = field(default_factory=dict)

    @property
    def replication_factor(self) -> int:
        return len(self.partitions[0].replicas) if self.partitions else 0


def list_topics(client: AdminClient, *, exclude_internal: bool = False) -> list[str]:
    response = client.metadata(None)
    return sorted(t.name for t in response.topics
                  if t.error_code == 0 and not (exclude_internal and t.is_internal))


def describe_topics(client: AdminClient, names: list[str] | None = None, *,
                    offsets: bool = True, configs: bool = True) -> list[TopicInfo]:
    """Every named topic (all when `names` is None), sorted by name; `KafkaError` for a
    named topic that does not exist."""
    response = client.metadata(names)
    out = []
    for t in sorted(response.topics, key=lambda t: t.name or ""):
        check(t.error_code, context=f"topic {t.name}")
        parts = [PartitionInfo(p.partition_index, p.leader_id, p.leader_epoch,
                               list(p.replica_nodes), list(p.isr_nodes))
                 for p in sorted(t.partitions, key=lambda p: p.partition_index)]
        out.append(TopicInfo(t.name or "", t.topic_id, t.is_internal, parts))
    if offsets and out:
        wanted = {(t.name, p.partition): p.leader for t in out for p in t.partitions}
        earliest = list_offsets(client, wanted, EARLIEST)
        latest = list_offsets(client, wanted, LATEST)
        for t in out:
            for p in t.partitions:
                p.earliest = earliest.get((t.name, p.partition))
                p.latest = latest.get((t.name, p.partition))
    if configs and out:
        found = topic_configs(client, [t.name for t in out])
        for t in out:
            t.configs = {name: value for name, (value, source) in found.get(t.name, {}).items()
                         if source == DYNAMIC_TOPIC_CONFIG}
    return out


def list_offsets(client: AdminClient, leaders: Mapping[tuple[str, int], int],
                 timestamp: int) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the offset ListOffsets gives for `timestamp` (-2 earliest,
    -1 latest, else the first offset at or after that time; -1 when none is), asking
    each partition's leader. Partition errors raise `KafkaError`."""
    by_leader: dict[int, dict[str, list[int]]] = {}
    for (topic, partition), leader in leaders.items():
        by_leader.setdefault(leader, {}).setdefault(topic, []).append(partition)
    out: dict[tuple[str, int], int] = {}
    for leader, topics in by_leader.items():
        request = ListOffsetsRequest(replica_id=-1, topics=[
            ListOffsetsTopic(name=topic, partitions=[
                ListOffsetsPartition(partition_index=p, timestamp=timestamp)
                for p in sorted(parts)])
            for topic, parts in topics.items()])
        response = client.send(LIST_OFFSETS, request, node=leader, hi=10)
        for t in response.topics:
            for p in t.partitions:
                check(p.error_code, context=f"{t.name}-{p.partition_index}")
                out[(t.name, p.partition_index)] = p.offset
    return out


def topic_configs(client: AdminClient, names: Iterable[str]
                  ) -> dict[str, dict[str, tuple[str | None, int]]]:
    """topic -> config name -> (value, config source) from DescribeConfigs."""
    request = DescribeConfigsRequest(resources=[
        DescribeConfigsResource(resource_type=TOPIC_RESOURCE, resource_name=name,
                                configuration_keys=None)
        for name in names])
    response = client.send(DESCRIBE_CONFIGS, request)
    out: dict[str, dict[str, tuple[str | None, int]]] = {}
    for result in response.results:
        check(result.error_code, result.error_message, f"topic {result.resource_name}")
        out[result.resource_name] = {c.name: (c.value, c.config_source) for c in result.configs}
    return out


def create_topic(client: AdminClient, name: str, *, partitions: int = -1,
                 replication_factor: int = -1, configs: Mapping[str, str] | None = None,
                 if_not_exists: bool = False, validate_only: bool = False,
                 timeout_ms: int = 30_000) -> bool:
    """Create `name`; True if created, False if it existed and `if_not_exists`."""
    request = CreateTopicsRequest(topics=[CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=replication_factor,
        configs=[CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items()])],
        timeout_ms=timeout_ms, validate_only=validate_only)
    uses_defaults = partitions == -1 or replication_factor == -1
    response = client.send(CREATE_TOPICS, request, lo=4 if uses_defaults else None)
    for result in response.topics:
        if result.error_code == TOPIC_ALREADY_EXISTS and if_not_exists:
            return False
        check(result.error_code, result.error_message, f"topic {name}")
    return True


def delete_topics(client: AdminClient, names: list[str], *, if_exists: bool = False,
                  timeout_ms: int = 30_000) -> list[tuple[str, KafkaError | None]]:
    """Delete `names`: (name, None) for each topic deleted, (name, error) for each that
    was not; with `if_exists`, topics that do not exist are left out."""
    def build(version: int) -> DeleteTopicsRequest:
        if version >= 6:
            return DeleteTopicsRequest(topics=[DeleteTopicState(name=n) for n in names],
                                       timeout_ms=timeout_ms)
        return DeleteTopicsRequest(topic_names=list(names), timeout_ms=timeout_ms)

    response = client.send(DELETE_TOPICS, build)
    results: list[tuple[str, KafkaError | None]] = []
    for result in response.responses:
        if result.error_code == UNKNOWN_TOPIC_OR_PARTITION and if_exists:
            continue
        error = KafkaError(result.error_code, result.error_message, f"topic {result.name}") \
            if result.error_code else None
        results.append((result.name or "", error))
    return results


def add_partitions(client: AdminClient, name: str, count: int, *,
                   validate_only: bool = False, timeout_ms: int = 30_000) -> None:
    """Grow `name` to `count` partitions in all (CreatePartitions)."""
    request = CreatePartitionsRequest(
        topics=[CreatePartitionsTopic(name=name, count=count, assignments=None)],
        timeout_ms=timeout_ms, validate_only=validate_only)
    response = client.send(CREATE_PARTITIONS, request)
    for result in response.results:
        check(result.error_code, result.error_message, f"topic {name}")


def alter_topic_configs(client: AdminClient, name: str, *,
                        set_configs: Mapping[str, str] | None = None,
                        delete_configs: Iterable[str] = (),
                        validate_only: bool = False) -> None:
    """Set and delete topic overrides (IncrementalAlterConfigs)."""
    ops = [AlterableConfig(name=k, config_operation=SET, value=v)
           for k, v in (set_configs or {}).items()]
    ops += [AlterableConfig(name=k, config_operation=DELETE, value=None)
            for k in delete_configs]
    request = IncrementalAlterConfigsRequest(resources=[AlterConfigsResource(
        resource_type=TOPIC_RESOURCE, resource_name=name, configs=ops)],
        validate_only=validate_only)
    response = client.send(INCREMENTAL_ALTER_CONFIGS, request)
    for result in response.responses:
        check(result.error_code, result.error_message, f"topic {name}")
