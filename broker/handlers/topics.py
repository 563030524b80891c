"""Metadata (3) v0-13, CreateTopics (19) v2-7, DeleteTopics (20) v1-6, CreatePartitions (37) v0-3.

One broker is the whole cluster: it leads every partition at leader epoch 0, with itself as
the only replica and in-sync replica, and it is the controller. Its address is the first
advertised listener (Kafka answers with the listener the request came in on; we have one).

Metadata follows Kafka 4.x (`KafkaApis.handleTopicMetadataRequest`):
- all topics for a null topic list (and for an empty list in v0); none for an empty list v1+;
- v10/v11 requests must name topics by name (INVALID_REQUEST otherwise); v12+ may name them
  by id, and unknown ids answer UNKNOWN_TOPIC_ID with a null name;
- a missing topic is auto-created when `auto.create.topics.enable` and the request allow it
  (always allowed before v4), with `num.partitions` partitions. Like KRaft Kafka, whose
  controller creates the topic after the answer is sent, the creating request itself is
  answered UNKNOWN_TOPIC_OR_PARTITION; the client's retry finds the topic. Internal topics
  are never auto-created here (their coordinators create them), and a name that would be
  refused (collision) is answered UNKNOWN_TOPIC_OR_PARTITION without creating anything.
  Invalid names answer INVALID_TOPIC_EXCEPTION;
- authorized operations (v8+) are Kafka's "no authorizer" answers: every operation the
  resource type supports, when asked for; cluster operations only exist up to v10.

CreateTopics/DeleteTopics/CreatePartitions follow `ControllerApis` and `ReplicationControlManager`
(see each handler). Changes are synchronous: a topic exists once its response is sent.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from broker.config import TOPIC_CONFIG_SYNONYMS
from broker.context import RequestContext
from broker.handlers import handles
from broker.metadata import (
    CLUSTER_METADATA_TOPIC,
    INTERNAL_TOPICS,
    MAX_PARTITIONS_PER_REQUEST,
    Topic,
    TopicError,
    new_topic_id,
    validate_topic_name,
)
from protocol.errors import ErrorCode
from protocol.messages.create_partitions_request import (
    CreatePartitionsRequest,
    CreatePartitionsTopic,
)
from protocol.messages.create_partitions_response import (
    CreatePartitionsResponse,
    CreatePartitionsTopicResult,
)
from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from protocol.messages.create_topics_response import (
    CreatableTopicConfigs,
    CreatableTopicResult,
    CreateTopicsResponse,
)
from protocol.messages.delete_topics_request import DeleteTopicsRequest, DeleteTopicState
from protocol.messages.delete_topics_response import DeletableTopicResult, DeleteTopicsResponse
from protocol.messages.metadata_request import MetadataRequest
from protocol.messages.metadata_response import (
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)
from storage import LogConfig

ZERO_UUID = uuid.UUID(int=0)
#: The schema default of the authorized-operations fields: "not requested".
AUTHORIZED_OPERATIONS_OMITTED = -2147483648

# AclOperation codes (org.apache.kafka.common.acl.AclOperation).
_READ, _WRITE, _CREATE, _DELETE, _ALTER, _DESCRIBE = 3, 4, 5, 6, 7, 8
_CLUSTER_ACTION, _DESCRIBE_CONFIGS, _ALTER_CONFIGS, _IDEMPOTENT_WRITE = 9, 10, 11, 12


def _bits(operations: Iterable[int]) -> int:
    value = 0
    for op in operations:
        value |= 1 << op
    return value


#: Without an authorizer Kafka grants every operation a resource type supports
#: (`AuthHelper.authorizedOperations` over `AclEntry.supportedOperations`).
TOPIC_AUTHORIZED_OPERATIONS = _bits(
    (_READ, _WRITE, _CREATE, _DELETE, _ALTER, _DESCRIBE, _DESCRIBE_CONFIGS, _ALTER_CONFIGS))
CLUSTER_AUTHORIZED_OPERATIONS = _bits(
    (_CREATE, _CLUSTER_ACTION, _DESCRIBE_CONFIGS, _ALTER_CONFIGS, _IDEMPOTENT_WRITE, _ALTER,
     _DESCRIBE))


def broker_endpoint(ctx: RequestContext) -> tuple[str, int]:
    """The host and port clients should use: the advertised listener with the name of the
    listener the request came in on, as Kafka answers (else the first advertised one)."""
    advertised = ctx.broker.advertised()
    for name, host, port in advertised:
        if name == ctx.listener:
            return host, port
    _, host, port = advertised[0]
    return host, port


# -- Metadata ------------------------------------------------------------------------------


def _topic_metadata(ctx: RequestContext, topic: Topic) -> MetadataResponseTopic:
    node = ctx.broker.node_id
    return MetadataResponseTopic(
        error_code=ErrorCode.NONE,
        name=topic.name,
        topic_id=topic.topic_id,
        is_internal=topic.internal,
        partitions=[
            MetadataResponsePartition(
                error_code=ErrorCode.NONE, partition_index=p, leader_id=node, leader_epoch=0,
                replica_nodes=[node], isr_nodes=[node], offline_replicas=[])
            for p in range(topic.partitions)
        ],
    )


def _missing_topic(ctx: RequestContext, name: str, auto_create: bool) -> MetadataResponseTopic:
    """The answer for a topic that does not exist, creating it when allowed."""
    try:
        validate_topic_name(name)
    except TopicError:
        code = ErrorCode.INVALID_TOPIC_EXCEPTION
    else:
        code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        if auto_create and name not in INTERNAL_TOPICS:
            try:
                ctx.broker.topics.create(name, ctx.broker.config["num.partitions"])
            except TopicError:
                pass  # e.g. a collision: Kafka's controller refuses it after the answer.
    return MetadataResponseTopic(error_code=code, name=name, topic_id=ZERO_UUID,
                                 is_internal=name in INTERNAL_TOPICS, partitions=[])


def _metadata_error(request: MetadataRequest, code: ErrorCode) -> MetadataResponse:
    """Kafka's `MetadataRequest.getErrorResponse`: every requested topic gets the error."""
    return MetadataResponse(topics=[
        MetadataResponseTopic(error_code=code, name=t.name if t.name is not None else "",
                              topic_id=t.topic_id, is_internal=False, partitions=[])
        for t in request.topics or []
    ])


@handles(3, 0, 13)
def handle_metadata(ctx: RequestContext, request: MetadataRequest) -> MetadataResponse:
    version = ctx.api_version
    registry = ctx.broker.topics
    all_topics = request.topics is None or (version == 0 and not request.topics)
    requested = [] if all_topics else list(request.topics or [])
    if version < 12 and any(t.name is None or t.topic_id != ZERO_UUID for t in requested):
        return _metadata_error(request, ErrorCode.INVALID_REQUEST)

    topics: list[MetadataResponseTopic] = []
    if all_topics:
        topics = [_topic_metadata(ctx, t) for t in registry]
    elif any(t.topic_id != ZERO_UUID for t in requested):
        # By id (v12+): names are ignored; unknown ids first, as Kafka lists them.
        ids = list(dict.fromkeys(t.topic_id for t in requested if t.topic_id != ZERO_UUID))
        known = [registry.by_id(i) for i in ids]
        topics = [MetadataResponseTopic(error_code=ErrorCode.UNKNOWN_TOPIC_ID, name=None,
                                        topic_id=i, partitions=[])
                  for i, t in zip(ids, known, strict=True) if t is None]
        topics += [_topic_metadata(ctx, t) for t in known if t is not None]
    else:
        auto_create = (ctx.broker.config["auto.create.topics.enable"]
                       and request.allow_auto_topic_creation)
        for name in dict.fromkeys(t.name or "" for t in requested):
            topic = registry.get(name)
            topics.append(_topic_metadata(ctx, topic) if topic is not None
                          else _missing_topic(ctx, name, auto_create))

    cluster_operations = AUTHORIZED_OPERATIONS_OMITTED
    if version >= 8:
        if version <= 10 and request.include_cluster_authorized_operations:
            cluster_operations = CLUSTER_AUTHORIZED_OPERATIONS
        if request.include_topic_authorized_operations:
            for entry in topics:
                if entry.error_code != ErrorCode.UNKNOWN_TOPIC_ID:
                    entry.topic_authorized_operations = TOPIC_AUTHORIZED_OPERATIONS

    host, port = broker_endpoint(ctx)
    return MetadataResponse(
        brokers=[MetadataResponseBroker(node_id=ctx.broker.node_id, host=host, port=port,
                                        rack=None)],
        cluster_id=ctx.broker.cluster_id,
        controller_id=ctx.broker.node_id,
        topics=topics,
        cluster_authorized_operations=cluster_operations,
    )


# -- CreateTopics --------------------------------------------------------------------------

#: DescribeConfigs' ConfigSource codes, as CreateTopics v5+ reports them.
SOURCE_TOPIC_CONFIG = 1
SOURCE_STATIC_BROKER_CONFIG = 4
SOURCE_DEFAULT_CONFIG = 5


def topic_config_entries(ctx: RequestContext, overrides: dict[str, str]
                         ) -> list[CreatableTopicConfigs]:
    """Every topic config of a topic with these overrides, as CreateTopics v5+ returns them:
    the value, and where it comes from (the topic, the broker's config file, the default)."""
    registry = ctx.broker.topics
    config = ctx.broker.config
    values = registry.check_configs(overrides).to_dict()
    # Dynamic broker configs (when the config has layers) come before the static ones.
    layers: list[tuple[int, Any]] = list(getattr(config, "layers", lambda: [])())
    out = []
    for name in LogConfig.names():
        if name not in values:
            continue
        synonyms = TOPIC_CONFIG_SYNONYMS.get(name, ())
        if name in overrides:
            source = SOURCE_TOPIC_CONFIG
        elif layers:
            source = next((int(kind) for kind, layer in layers[:-1]
                           if any(b in layer for b in synonyms)), SOURCE_DEFAULT_CONFIG)
        elif any(config.is_set(b) for b in synonyms):
            source = SOURCE_STATIC_BROKER_CONFIG
        else:
            source = SOURCE_DEFAULT_CONFIG
        out.append(CreatableTopicConfigs(name=name, value=values[name], read_only=False,
                                         config_source=source, is_sensitive=False))
    return out


def _check_assignments(node: int, assignments: list[list[int]],
                       replication_factor: int | None) -> None:
    """Kafka's `validateManualPartitionAssignment` for each partition's replica list."""
    for replicas in assignments:
        if not replicas:
            raise TopicError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             "The manual partition assignment includes an empty replica list.")
        previous = None
        for broker_id in sorted(replicas):
            if broker_id != node:
                raise TopicError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"The manual partition assignment includes broker {broker_id}, but no such "
                    "broker is registered.")
            if broker_id == previous:
                raise TopicError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"The manual partition assignment includes the broker {broker_id} more "
                    "than once.")
            previous = broker_id
        if replication_factor is not None and len(replicas) != replication_factor:
            raise TopicError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"The manual partition assignment includes a partition with {len(replicas)} "
                "replica(s), but this is not consistent with previous partitions, which have "
                f"{replication_factor} replica(s).")


def _partitions_of(ctx: RequestContext, topic: CreatableTopic) -> int:
    """The partition count of a new topic, checking counts, factors and assignments."""
    config = ctx.broker.config
    if topic.assignments:
        if topic.num_partitions != -1:
            raise TopicError(ErrorCode.INVALID_REQUEST,
                             "A manual partition assignment was specified, but numPartitions "
                             "was not set to -1.")
        if topic.replication_factor != -1:
            raise TopicError(ErrorCode.INVALID_REQUEST,
                             "A manual partition assignment was specified, but replication "
                             "factor was not set to -1.")
        seen: set[int] = set()
        for assignment in topic.assignments:
            if assignment.partition_index in seen:
                raise TopicError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                                 "Found multiple manual partition assignments for partition "
                                 f"{assignment.partition_index}")
            _check_assignments(ctx.broker.node_id, [assignment.broker_ids], None)
            seen.add(assignment.partition_index)
        if seen != set(range(len(seen))):
            raise TopicError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             "partitions should be a consecutive 0-based integer sequence")
        return len(seen)
    if topic.num_partitions < -1 or topic.num_partitions == 0:
        raise TopicError(ErrorCode.INVALID_PARTITIONS,
                         "Number of partitions was set to an invalid non-positive value.")
    if topic.replication_factor < -1 or topic.replication_factor == 0:
        raise TopicError(ErrorCode.INVALID_REPLICATION_FACTOR,
                         "Replication factor must be larger than 0, or -1 to use the default "
                         "value.")
    partitions = (config["num.partitions"] if topic.num_partitions == -1
                  else topic.num_partitions)
    factor = (config["default.replication.factor"] if topic.replication_factor == -1
              else topic.replication_factor)
    if factor > 1:
        raise TopicError(
            ErrorCode.INVALID_REPLICATION_FACTOR,
            f"Unable to replicate the partition {factor} time(s): The target replication "
            f"factor of {factor} cannot be reached because only 1 broker(s) are registered or "
            "some brokers have all their log directories cordoned.")
    return int(partitions)


def _requested_partitions(ctx: RequestContext, topics: list[CreatableTopic]) -> int:
    """Kafka's `validateTotalNumberOfPartitions` count."""
    total = 0
    for topic in topics:
        if topic.assignments:
            total += len(topic.assignments)
        elif topic.num_partitions == -1:
            total += ctx.broker.config["num.partitions"]
        elif topic.num_partitions > 0:
            total += topic.num_partitions
    return total


def _create_one(ctx: RequestContext, topic: CreatableTopic, validate_only: bool
                ) -> CreatableTopicResult:
    registry = ctx.broker.topics
    version = ctx.api_version
    configs = {c.name: c.value for c in topic.configs}  # a repeated name: the last one wins
    try:
        if topic.name == CLUSTER_METADATA_TOPIC:
            raise TopicError(ErrorCode.INVALID_REQUEST,
                             f"Creation of internal topic {CLUSTER_METADATA_TOPIC} is "
                             "prohibited.")
        # Name, existence, collision and configs come first, then counts and assignments.
        registry.check_new_topic(topic.name, 1, configs)
        partitions = _partitions_of(ctx, topic)
        checked = {k: v for k, v in configs.items() if v is not None}
        created = (Topic(topic.name, new_topic_id(), partitions, checked) if validate_only
                   else registry.create(topic.name, partitions, checked))
    except TopicError as exc:
        return CreatableTopicResult(name=topic.name, error_code=exc.code,
                                    error_message=exc.message, num_partitions=-1,
                                    replication_factor=-1, configs=[])
    result = CreatableTopicResult(name=topic.name, error_code=ErrorCode.NONE, error_message=None)
    if version >= 5:
        result.num_partitions = created.partitions
        result.replication_factor = 1
        result.configs = topic_config_entries(ctx, created.configs)
    if version >= 7:
        result.topic_id = created.topic_id
    return result


@handles(19, 2, 7)
def handle_create_topics(ctx: RequestContext, request: CreateTopicsRequest
                         ) -> CreateTopicsResponse:
    """CreateTopics as KRaft Kafka answers it (`ControllerApis.createTopics`,
    `ReplicationControlManager.createTopics`).

    - A request whose deadline has passed (`timeout_ms <= 0`) answers REQUEST_TIMED_OUT for
      every topic, creating nothing; so does one adding more than 10,000 partitions in all
      (POLICY_VIOLATION, "Excessively large number of partitions per request.").
    - A name given more than once answers INVALID_REQUEST once, after the other results.
    - Then per topic: the name (INVALID_TOPIC_EXCEPTION), existence (TOPIC_ALREADY_EXISTS),
      collisions on `.`/`_`, configs (INVALID_CONFIG), counts and replication factor
      (-1 = broker default; only 1 replica is possible here), manual assignments (only
      `[node_id]` is a valid replica list). Internal topics may be created (Kafka allows it),
      `__cluster_metadata` may not.
    - `validate_only` runs every check and answers as if created (with a fresh topic id),
      creating nothing. v5+ answers the partition count, replication factor and every
      topic config with its source; v7+ the topic id.
    """
    if request.timeout_ms <= 0:
        return _create_topics_error(request, ErrorCode.REQUEST_TIMED_OUT, None)
    counts = Counter(t.name for t in request.topics)
    unique = [t for t in request.topics if counts[t.name] == 1]
    if _requested_partitions(ctx, unique) > MAX_PARTITIONS_PER_REQUEST:
        return _create_topics_error(request, ErrorCode.POLICY_VIOLATION,
                                    "Excessively large number of partitions per request.")
    results = [_create_one(ctx, t, request.validate_only) for t in unique]
    results += [CreatableTopicResult(name=name, error_code=ErrorCode.INVALID_REQUEST,
                                     error_message="Duplicate topic name.")
                for name, n in counts.items() if n > 1]
    return CreateTopicsResponse(topics=results)


def _create_topics_error(request: CreateTopicsRequest, code: ErrorCode, message: str | None
                         ) -> CreateTopicsResponse:
    """Kafka's `CreateTopicsRequest.getErrorResponse`: every topic of the request."""
    return CreateTopicsResponse(topics=[
        CreatableTopicResult(name=t.name, error_code=code, error_message=message)
        for t in request.topics
    ])


# -- DeleteTopics --------------------------------------------------------------------------


@handles(20, 1, 6)
def handle_delete_topics(ctx: RequestContext, request: DeleteTopicsRequest
                         ) -> DeleteTopicsResponse:
    """DeleteTopics as KRaft Kafka answers it (`ControllerApis.deleteTopics`).

    v1-5 name topics in `topic_names`; v6 in `topics`, each by name or by id (both or
    neither: INVALID_REQUEST). `delete.topic.enable=false` answers every topic
    TOPIC_DELETION_DISABLED (INVALID_REQUEST before v3); `timeout_ms <= 0` answers
    REQUEST_TIMED_OUT. A name or id given twice answers INVALID_REQUEST once. Unknown
    (or invalid) names answer UNKNOWN_TOPIC_OR_PARTITION, unknown ids UNKNOWN_TOPIC_ID.
    Internal topics can be deleted, as in Kafka 4.x. The logs are renamed at once and
    removed after `file.delete.delay.ms`; fetches parked on the topic wake up.
    """
    version = ctx.api_version
    states = (request.topics if version >= 6 else
              [DeleteTopicState(name=name, topic_id=ZERO_UUID) for name in request.topic_names])
    if not ctx.broker.config["delete.topic.enable"]:
        code = ErrorCode.TOPIC_DELETION_DISABLED if version >= 3 else ErrorCode.INVALID_REQUEST
        return _delete_topics_error(states, code)
    if request.timeout_ms <= 0:
        return _delete_topics_error(states, ErrorCode.REQUEST_TIMED_OUT)

    registry = ctx.broker.topics
    results: list[DeletableTopicResult] = []
    names = Counter(s.name for s in states if s.name is not None and s.topic_id == ZERO_UUID)
    ids = Counter(s.topic_id for s in states if s.name is None and s.topic_id != ZERO_UUID)
    duplicates_reported: set[object] = set()
    targets: dict[str, DeletableTopicResult] = {}
    for state in states:
        topic: Topic | None
        if state.name is not None and state.topic_id != ZERO_UUID:
            results.append(DeletableTopicResult(
                name=state.name, topic_id=state.topic_id, error_code=ErrorCode.INVALID_REQUEST,
                error_message="You may not specify both topic name and topic id."))
            continue
        if state.name is None and state.topic_id == ZERO_UUID:
            results.append(DeletableTopicResult(
                name=None, topic_id=ZERO_UUID, error_code=ErrorCode.INVALID_REQUEST,
                error_message="Neither topic name nor id were specified."))
            continue
        by_name = state.name is not None
        key: object = state.name if by_name else state.topic_id
        if (names[state.name] if state.name is not None else ids[state.topic_id]) > 1:
            if key not in duplicates_reported:
                duplicates_reported.add(key)
                results.append(DeletableTopicResult(
                    name=state.name, topic_id=state.topic_id,
                    error_code=ErrorCode.INVALID_REQUEST,
                    error_message="Duplicate topic name." if by_name else "Duplicate topic id."))
            continue
        if state.name is not None:
            topic = registry.get(state.name)
            if topic is None:
                results.append(DeletableTopicResult(
                    name=state.name, topic_id=ZERO_UUID,
                    error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                    error_message="This server does not host this topic-partition."))
                continue
        else:
            topic = registry.by_id(state.topic_id)
            if topic is None:
                results.append(DeletableTopicResult(
                    name=None, topic_id=state.topic_id, error_code=ErrorCode.UNKNOWN_TOPIC_ID,
                    error_message="This server does not host this topic ID."))
                continue
        result = DeletableTopicResult(name=topic.name, topic_id=topic.topic_id)
        results.append(result)
        targets.setdefault(topic.name, result)
    for name in targets:
        deleted = registry.delete(name)
        for partition in range(deleted.partitions):
            ctx.broker.waiters.notify(name, partition)
        # Committed offsets of the deleted partitions go too (Kafka's onPartitionsDeleted).
        ctx.broker.groups.coordinator.remove_partitions(
            (name, partition) for partition in range(deleted.partitions))
    if version < 5:
        for result in results:
            result.error_message = None
    return DeleteTopicsResponse(responses=results)


def _delete_topics_error(states: list[DeleteTopicState], code: ErrorCode
                         ) -> DeleteTopicsResponse:
    """Kafka's `DeleteTopicsRequest.getErrorResponse`: every topic, as named, no message."""
    return DeleteTopicsResponse(responses=[
        DeletableTopicResult(name=s.name, topic_id=s.topic_id, error_code=code)
        for s in states
    ])


# -- CreatePartitions ----------------------------------------------------------------------


def _create_partitions_one(ctx: RequestContext, topic: CreatePartitionsTopic,
                           validate_only: bool) -> CreatePartitionsTopicResult:
    registry = ctx.broker.topics
    try:
        if registry.get(topic.name) is None:
            return CreatePartitionsTopicResult(
                name=topic.name, error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                error_message=None)
        existing = registry.check_add_partitions(topic.name, topic.count)
        additional = topic.count - existing.partitions
        if topic.assignments is not None and len(topic.assignments) != additional:
            raise TopicError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"Attempted to add {additional} additional partition(s), but only "
                f"{len(topic.assignments)} assignment(s) were specified.")
        if additional > MAX_PARTITIONS_PER_REQUEST:
            raise TopicError(ErrorCode.POLICY_VIOLATION,
                             "Excessively large number of additional partitions per request.")
        if topic.assignments is not None:
            # Existing partitions have one replica: new ones must have as many.
            _check_assignments(ctx.broker.node_id, [a.broker_ids for a in topic.assignments], 1)
        if not validate_only:
            registry.add_partitions(topic.name, topic.count)
    except TopicError as exc:
        return CreatePartitionsTopicResult(name=topic.name, error_code=exc.code,
                                           error_message=exc.message)
    return CreatePartitionsTopicResult(name=topic.name, error_code=ErrorCode.NONE,
                                       error_message=None)


@handles(37, 0, 3)
def handle_create_partitions(ctx: RequestContext, request: CreatePartitionsRequest
                             ) -> CreatePartitionsResponse:
    """CreatePartitions as KRaft Kafka answers it (`ReplicationControlManager.createPartitions`).

    Increase only: the same count or fewer answers INVALID_PARTITIONS with Kafka's messages;
    unknown topics UNKNOWN_TOPIC_OR_PARTITION (no message); assignments must give one list
    per new partition, each exactly `[node_id]` (INVALID_REPLICA_ASSIGNMENT); more than
    10,000 new partitions per topic is a POLICY_VIOLATION. A name given twice answers
    INVALID_REQUEST once, after the others; `timeout_ms <= 0` answers REQUEST_TIMED_OUT for
    every topic. `validate_only` checks everything and changes nothing.
    """
    if request.timeout_ms <= 0:
        return CreatePartitionsResponse(results=[
            CreatePartitionsTopicResult(name=t.name, error_code=ErrorCode.REQUEST_TIMED_OUT,
                                        error_message=None)
            for t in request.topics])
    counts = Counter(t.name for t in request.topics)
    results = [_create_partitions_one(ctx, t, request.validate_only)
               for t in request.topics if counts[t.name] == 1]
    results += [CreatePartitionsTopicResult(name=name, error_code=ErrorCode.INVALID_REQUEST,
                                            error_message="Duplicate topic name.")
                for name, n in counts.items() if n > 1]
    return CreatePartitionsResponse(results=results)
