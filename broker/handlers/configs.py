"""DescribeConfigs (32) v1-4, AlterConfigs (33) v0-2, IncrementalAlterConfigs (44) v0-1.

Resources: TOPIC (2), BROKER (4: "" is the cluster-wide default, else our node id) and
BROKER_LOGGER (8: this process's Python loggers, as Kafka serves its log4j loggers).
Apache Kafka 4.4's answers, recorded in `tests/golden/kafka-configs/`, are the reference:

* DescribeConfigs (`ConfigHelper`): every topic config Kafka 4.4 reports, every broker
  config (Kafka's full table, `broker/kafka_config_defs.json`, plus any name that was
  configured), with sources, synonyms in Kafka's order (per-broker dynamic, cluster default,
  static, default; then dropped up to the config's own name), types (v3+) and documentation
  (v3+). Sensitive values and names of unknown type are reported as null. An empty or null
  `configuration_keys` means all. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION; invalid name:
  INVALID_TOPIC_EXCEPTION; another broker id or a non-numeric one: INVALID_REQUEST; a
  resource type Kafka does not define fails the whole request with INVALID_REQUEST.
* AlterConfigs (`ConfigAdminManager.preprocess` + the controller's
  `ConfigurationControlManager`): replaces the resource's whole set of overrides.
  Duplicate resources, duplicate keys and null values are INVALID_REQUEST; BROKER_LOGGER is
  an unknown resource type here. Kafka 4.4 never answers a request with a duplicate resource
  (an exception while building the response); we answer it as IncrementalAlterConfigs does.
* IncrementalAlterConfigs: SET/DELETE/APPEND/SUBTRACT (the last two on LIST configs only;
  their base is the current value, else the default), validate_only, and log levels.

Topic configs are validated by `storage.LogConfig` (INVALID_CONFIG) and applied through
the topic registry. Broker configs go through `broker.dynamic_config`. Not served: GROUP
(32) and CLIENT_METRICS (16) resources, which need a group coordinator and client metrics:
they answer INVALID_REQUEST.

ListConfigResources (74) v0-1 (KIP-1142; v0 was ListClientMetricsResources), as Kafka
4.4's `KafkaApis.handleListConfigResources`: the resources that have configs, for the
requested resource types (none: every type the version knows: CLIENT_METRICS for v0;
TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS and GROUP for v1). A type the version does
not know fails the request with UNSUPPORTED_VERSION and no resources. In Kafka's order:
groups with group configs and client metrics resources (neither exists here, as we serve
neither config), then this broker as a BROKER_LOGGER and as a BROKER (its node id), then
every topic, internal ones included (sorted by name; Kafka lists them in hash order). A
type named twice is listed once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from broker import dynamic_config
from broker.config import (
    TOPIC_CONFIG_SYNONYMS,
    BrokerConfig,
    ConfigSource,
    KafkaType,
    broker_synonyms,
    kafka_broker_defs,
    kafka_topic_defs,
    normalize,
    topic_defaults,
)
from broker.context import RequestContext
from broker.dynamic_config import ConfigUpdateError
from broker.handlers import handles
from protocol.errors import ErrorCode
from protocol.messages import alter_configs_request as legacy
from protocol.messages import incremental_alter_configs_request as inc
from protocol.messages.alter_configs_response import (
    AlterConfigsResourceResponse,
    AlterConfigsResponse,
)
from protocol.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from protocol.messages.describe_configs_response import (
    DescribeConfigsResourceResult,
    DescribeConfigsResponse,
    DescribeConfigsResult,
    DescribeConfigsSynonym,
)
from protocol.messages.incremental_alter_configs_response import (
    AlterConfigsResourceResponse as IncrementalResourceResponse,
)
from protocol.messages.incremental_alter_configs_response import (
    IncrementalAlterConfigsResponse,
)
from protocol.messages.list_config_resources_request import ListConfigResourcesRequest
from protocol.messages.list_config_resources_response import (
    ConfigResource,
    ListConfigResourcesResponse,
)
from storage import LogConfig
from storage.errors import InvalidConfig

TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP = 2, 4, 8, 16, 32
KNOWN_TYPES = {TOPIC: "TOPIC", BROKER: "BROKER", BROKER_LOGGER: "BROKER_LOGGER",
               CLIENT_METRICS: "CLIENT_METRICS", GROUP: "GROUP"}
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
OP_NAMES = {SET: "SET", DELETE: "DELETE", APPEND: "APPEND", SUBTRACT: "SUBTRACT"}
#: `Errors.INVALID_REQUEST.message()`, what Kafka puts in a whole-request failure.
INVALID_REQUEST_MESSAGE = (
    "This most likely occurs because of a request being malformed by the client library or "
    "the message was sent to an incompatible broker. See the broker logs for more details.")
_INTEGER = re.compile(r"[+-]?\d+")
_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]+")


class ResourceError(Exception):
    def __init__(self, code: ErrorCode, message: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> ResourceError:
    return ResourceError(ErrorCode.INVALID_REQUEST, message)


def validate_topic(name: str) -> None:
    """Kafka's `Topic.validate`, with its 4.x messages."""
    reason = None
    if not name:
        reason = "the empty string is not allowed"
    elif name in (".", ".."):
        reason = f"'{name}' is not allowed"
    elif len(name) > 249:
        reason = f"the length of '{name}' is longer than the max allowed length 249"
    elif not _LEGAL_TOPIC.fullmatch(name):
        reason = (f"'{name}' contains one or more characters other than ASCII alphanumerics, "
                  "'.', '_' and '-'")
    if reason is not None:
        raise ResourceError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"Topic name is invalid: {reason}")


def _node_id(name: str, what: str = "Broker") -> int:
    if not _INTEGER.fullmatch(name):
        raise _invalid(f"{what} id must be an integer, but it is: {name}")
    return int(name)


# -- DescribeConfigs ----------------------------------------------------------------------


def _synonyms(config: BrokerConfig, name: str, sensitive: bool
              ) -> list[DescribeConfigsSynonym]:
    """Kafka's `ConfigHelper.configSynonyms(name, brokerSynonyms(name))`."""
    names = broker_synonyms(name)
    out = []
    for source, layer in config.layers():
        for synonym in names:
            if synonym in layer:
                value = None if sensitive else str(layer[synonym])
                out.append(DescribeConfigsSynonym(synonym, value, int(source)))
    while out and out[0].name != name:
        out.pop(0)
    return out


def _wanted(resource: DescribeConfigsResource) -> Callable[[str], bool]:
    keys = resource.configuration_keys
    if not keys:
        return lambda name: True
    chosen = set(keys)
    return chosen.__contains__


def _entry(name: str, value: str | None, source: int, *, read_only: bool, sensitive: bool,
           synonyms: list[DescribeConfigsSynonym], kind: KafkaType, doc: str | None,
           include_synonyms: bool, include_docs: bool) -> DescribeConfigsResourceResult:
    return DescribeConfigsResourceResult(
        name=name, value=value, read_only=read_only, config_source=source,
        is_sensitive=sensitive, synonyms=synonyms if include_synonyms else [],
        config_type=int(kind), documentation=doc if include_docs else None)


def describe_broker(config: BrokerConfig, names: Iterable[str], per_broker: bool,
                    request: DescribeConfigsRequest) -> list[DescribeConfigsResourceResult]:
    """Kafka's `createBrokerConfigEntry` for each name."""
    defs = kafka_broker_defs()
    out = []
    for name in names:
        defn = defs.get(name)
        kind = defn.type if defn else KafkaType.UNKNOWN
        sensitive = defn is None or defn.sensitive or kind is KafkaType.PASSWORD
        synonyms = _synonyms(config, name, sensitive)
        if per_broker:
            value = None if sensitive else config.value_string(name)
        else:
            synonyms = [s for s in synonyms
                        if s.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG]
            value = None if sensitive else config.layers()[1][1].get(name)
        source = synonyms[0].source if synonyms else int(ConfigSource.DEFAULT_CONFIG)
        out.append(_entry(
            name, value, source, read_only=not (defn is not None and defn.dynamic),
            sensitive=sensitive, synonyms=synonyms, kind=kind,
            doc=defn.doc if defn else None, include_synonyms=request.include_synonyms,
            include_docs=request.include_documentation))
    return out


def describe_topic(config: BrokerConfig, overrides: Mapping[str, str],
                   wanted: Callable[[str], bool], request: DescribeConfigsRequest
                   ) -> list[DescribeConfigsResourceResult]:
    """Kafka's `createTopicConfigEntry` for each of Kafka's topic configs."""
    topic_defs = kafka_topic_defs()
    from_broker = topic_defaults(config, topic_defs)
    out = []
    for name, defn in topic_defs.items():
        if not wanted(name):
            continue
        synonyms: list[DescribeConfigsSynonym] = []
        if name in TOPIC_CONFIG_SYNONYMS:
            synonyms = _synonyms(config, TOPIC_CONFIG_SYNONYMS[name][0], False)
        if name in overrides:
            value = normalize(overrides[name], defn.type)
            synonyms.insert(0, DescribeConfigsSynonym(
                name, value, int(ConfigSource.DYNAMIC_TOPIC_CONFIG)))
        else:
            value = from_broker.get(name, defn.default)
        source = synonyms[0].source if synonyms else int(ConfigSource.DEFAULT_CONFIG)
        out.append(_entry(
            name, value, source, read_only=False, sensitive=False, synonyms=synonyms,
            kind=defn.type, doc=defn.doc, include_synonyms=request.include_synonyms,
            include_docs=request.include_documentation))
    return out


def _describe_one(ctx: RequestContext, resource: DescribeConfigsResource,
                  request: DescribeConfigsRequest) -> list[DescribeConfigsResourceResult]:
    broker = ctx.broker
    wanted = _wanted(resource)
    name = resource.resource_name
    if resource.resource_type == TOPIC:
        validate_topic(name)
        topic = broker.topics.get(name)
        if topic is None:
            raise ResourceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "")
        return describe_topic(broker.config, topic.configs, wanted, request)
    if resource.resource_type == BROKER:
        config = broker.config
        if name == "":
            names = [n for n in config.layers()[1][1] if wanted(n)]
            return describe_broker(config, names, False, request)
        if _node_id(name) != broker.node_id:
            raise _invalid(f"Unexpected broker id, expected {broker.node_id} or empty string, "
                           f"but received {name}")
        every = set(kafka_broker_defs())
        for _, layer in config.layers()[:3]:
            every.update(layer)
        return describe_broker(config, sorted(n for n in every if wanted(n)), True, request)
    if resource.resource_type == BROKER_LOGGER:
        if name == "":
            raise _invalid("Broker id must not be empty")
        if _node_id(name) != broker.node_id:
            raise _invalid(f"Unexpected broker id, expected {broker.node_id} but received {name}")
        return [
            DescribeConfigsResourceResult(
                name=logger, value=level, read_only=False,
                config_source=int(ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG),
                is_sensitive=False, synonyms=[], config_type=0, documentation="")
            for logger, level in logger_levels().items() if wanted(logger)
        ]
    raise _invalid(f"Unsupported resource type: {KNOWN_TYPES[resource.resource_type]}")


@handles(32, 1, 4)
def handle_describe_configs(ctx: RequestContext, request: DescribeConfigsRequest
                            ) -> DescribeConfigsResponse:
    if any(r.resource_type not in KNOWN_TYPES for r in request.resources):
        # Kafka throws while authorizing: the whole request fails.
        return DescribeConfigsResponse(results=[
            DescribeConfigsResult(error_code=ErrorCode.INVALID_REQUEST,
                                  error_message=INVALID_REQUEST_MESSAGE,
                                  resource_type=r.resource_type, resource_name=r.resource_name)
            for r in request.resources])
    dynamic_config.attach(ctx.broker)
    results = []
    for resource in request.resources:
        try:
            configs = _describe_one(ctx, resource, request)
            result = DescribeConfigsResult(error_code=ErrorCode.NONE, error_message="",
                                           configs=configs)
        except ResourceError as exc:
            result = DescribeConfigsResult(error_code=exc.code, error_message=exc.message)
        result.resource_type = resource.resource_type
        result.resource_name = resource.resource_name
        results.append(result)
    return DescribeConfigsResponse(results=results)


# -- log levels (BROKER_LOGGER) -----------------------------------------------------------

TRACE = 5
_LEVELS = {"TRACE": TRACE, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
           "WARN": logging.WARNING, "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}
ROOT_LOGGER = "root"


def _level_name(level: int) -> str:
    best = "TRACE"
    for name, value in sorted(_LEVELS.items(), key=lambda kv: kv[1]):
        if level >= value:
            best = name
    return best


def _loggers() -> dict[str, logging.Logger]:
    found = {ROOT_LOGGER: logging.getLogger()}
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            found[name] = logger
    return found


def logger_levels() -> dict[str, str]:
    """Every logger of this process with its effective level, in Kafka's level names."""
    return {name: _level_name(logger.getEffectiveLevel())
            for name, logger in sorted(_loggers().items())}


def _alter_log_levels(ctx: RequestContext, resource: inc.AlterConfigsResource,
                      validate_only: bool) -> None:
    """Kafka's `RuntimeLoggerManager`: validate every change, then apply them."""
    name = resource.resource_name
    node = _node_id(name, "Node")
    if node != ctx.broker.node_id:
        raise _invalid(f"Unexpected node id. Expected {ctx.broker.node_id}, but received {name}")
    loggers = _loggers()
    changes: list[tuple[logging.Logger, int]] = []
    for op in resource.configs:
        if op.config_operation in (APPEND, SUBTRACT):
            raise _invalid(f"{OP_NAMES[op.config_operation]} operation is not allowed for the "
                           "BROKER_LOGGER resource")
        if op.config_operation not in (SET, DELETE):
            raise _invalid(f"Unknown operation type {op.config_operation} is not allowed for "
                           "the BROKER_LOGGER resource")
        logger = loggers.get(op.name)
        if logger is None:
            raise ResourceError(ErrorCode.INVALID_CONFIG, f"Logger {op.name} does not exist!")
        if op.config_operation == DELETE:
            if op.name == ROOT_LOGGER:
                raise _invalid("Removing the log level of the root logger is not allowed")
            changes.append((logger, logging.NOTSET))
            continue
        level = _LEVELS.get(op.value or "")
        if level is None:
            raise ResourceError(
                ErrorCode.INVALID_CONFIG,
                f"Cannot set the log level of {op.name} to {op.value} as it is not a supported "
                f"log level. Valid log levels are {', '.join(sorted(_LEVELS))}")
        changes.append((logger, level))
    if not validate_only:
        for logger, level in changes:
            logger.setLevel(level)


# -- AlterConfigs / IncrementalAlterConfigs -----------------------------------------------

Change = tuple[str, int, str | None]  # (name, operation, value)


def _preprocess(resources: list[Any], incremental: bool) -> dict[int, ResourceError]:
    """Kafka's `ConfigAdminManager.preprocess` checks shared by both APIs (by index)."""
    errors: dict[int, ResourceError] = {}
    seen: dict[tuple[int, str], int] = {}
    for i, resource in enumerate(resources):
        key = (resource.resource_type, resource.resource_name)
        if key in seen:
            for j in (seen[key], i):
                errors[j] = _invalid("Each resource must appear at most once.")
        seen.setdefault(key, i)
    for i, resource in enumerate(resources):
        if i in errors:
            continue
        names = [c.name for c in resource.configs]
        if len(set(names)) != len(names):
            errors[i] = _invalid("Error due to duplicate config keys")
            continue
        nulls = [c.name for c in resource.configs if c.value is None
                 and not (incremental and c.config_operation == DELETE)]
        if nulls:
            errors[i] = _invalid("Null value not supported for : " + ", ".join(nulls))
            continue
        allowed = {TOPIC, BROKER, CLIENT_METRICS, GROUP} | ({BROKER_LOGGER} if incremental
                                                             else set())
        if resource.resource_type not in allowed:
            errors[i] = _invalid(f"Unknown resource type {resource.resource_type}")
    return errors


def _check_node(ctx: RequestContext, name: str) -> None:
    if name != "":
        node = _node_id(name, "Node")
        if node != ctx.broker.node_id:
            raise _invalid(
                f"Unexpected broker id, expected {ctx.broker.node_id}, but received {name}")


def _list_op(current: str | None, op: int, value: str) -> str:
    items = [v for v in (current or "").split(",") if v.strip()]
    given = [v.strip() for v in value.split(",") if v.strip()]
    if op == APPEND:
        items += [v for v in given if v not in items]
    else:
        items = [v for v in items if v not in given]
    return ",".join(items)


def _apply_broker(ctx: RequestContext, name: str, changes: list[Change] | None,
                  replacement: dict[str, str] | None, validate_only: bool) -> None:
    _check_node(ctx, name)
    store = dynamic_config.attach(ctx.broker)
    if replacement is not None:
        new_layer = replacement
    else:
        assert changes is not None
        new_layer = dict(store.layer(name))
        defs = kafka_broker_defs()
        for key, op, value in changes:
            if op == SET:
                new_layer[key] = value or ""
            elif op == DELETE:
                new_layer.pop(key, None)
            elif op in (APPEND, SUBTRACT):
                defn = defs.get(key)
                if defn is None or defn.type is not KafkaType.LIST:
                    raise ResourceError(ErrorCode.INVALID_CONFIG,
                                        f"Config value {OP_NAMES[op].lower()} is not allowed "
                                        f"for config key: {key}")
                base = new_layer.get(key, defn.default)
                new_layer[key] = _list_op(base, op, value or "")
            else:
                raise _invalid(f"Unknown operations type {op}")
    try:
        dynamic_config.update(ctx.broker, name, new_layer, validate_only)
    except ConfigUpdateError as exc:
        raise ResourceError(exc.code, exc.message) from None


def _apply_topic(ctx: RequestContext, name: str, changes: list[Change] | None,
                 replacement: dict[str, str] | None, validate_only: bool) -> None:
    validate_topic(name)
    registry = ctx.broker.topics
    topic = registry.get(name)
    if topic is None:
        raise ResourceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                            f"The topic '{name}' does not exist.")
    if replacement is not None:
        new = replacement
    else:
        assert changes is not None
        new = dict(topic.configs)
        topic_defs = kafka_topic_defs()
        current = topic_defaults(ctx.broker.config, topic_defs)
        for key, op, value in changes:
            if op == SET:
                new[key] = value or ""
            elif op == DELETE:
                new.pop(key, None)
            elif op in (APPEND, SUBTRACT):
                defn = topic_defs.get(key)
                if defn is not None and defn.type is not KafkaType.LIST:
                    raise ResourceError(ErrorCode.INVALID_CONFIG,
                                        f"Can't {OP_NAMES[op]} to key {key} because its type "
                                        "is not LIST.")
                base = new.get(key, current.get(key, defn.default if defn else None))
                new[key] = _list_op(base, op, value or "")
            else:
                raise ResourceError(ErrorCode.UNKNOWN_SERVER_ERROR, None)
    try:
        LogConfig.from_dict(new, registry.defaults)
    except InvalidConfig as exc:
        raise ResourceError(ErrorCode.INVALID_CONFIG, str(exc)) from None
    if not validate_only:
        from broker.metadata import TopicError

        try:
            registry.set_configs(name, new)
        except TopicError as exc:
            raise ResourceError(ErrorCode(exc.code), exc.message) from None


def _alter(ctx: RequestContext, resources: list[Any], validate_only: bool, incremental: bool
           ) -> list[tuple[int, str | None]]:
    dynamic_config.attach(ctx.broker)
    errors = _preprocess(resources, incremental)
    out: list[tuple[int, str | None]] = []
    for i, resource in enumerate(resources):
        if i in errors:
            out.append((errors[i].code, errors[i].message))
            continue
        kind, name = resource.resource_type, resource.resource_name
        changes: list[Change] | None = None
        replacement: dict[str, str] | None = None
        if incremental:
            changes = [(c.name, c.config_operation, c.value) for c in resource.configs]
        else:
            replacement = {c.name: c.value for c in resource.configs}
        try:
            if kind == BROKER_LOGGER:
                _alter_log_levels(ctx, resource, validate_only)
            elif kind == BROKER:
                _apply_broker(ctx, name, changes, replacement, validate_only)
            elif kind == TOPIC:
                _apply_topic(ctx, name, changes, replacement, validate_only)
            else:
                raise _invalid(f"Unsupported resource type {KNOWN_TYPES[kind]}")
            out.append((ErrorCode.NONE, None))
        except ResourceError as exc:
            out.append((exc.code, exc.message))
    return out


@handles(33, 0, 2)
def handle_alter_configs(ctx: RequestContext, request: legacy.AlterConfigsRequest
                         ) -> AlterConfigsResponse:
    outcomes = _alter(ctx, request.resources, request.validate_only, incremental=False)
    return AlterConfigsResponse(responses=[
        AlterConfigsResourceResponse(error_code=code, error_message=message,
                                     resource_type=r.resource_type, resource_name=r.resource_name)
        for r, (code, message) in zip(request.resources, outcomes, strict=True)])


@handles(44, 0, 1)
def handle_incremental_alter_configs(ctx: RequestContext,
                                     request: inc.IncrementalAlterConfigsRequest
                                     ) -> IncrementalAlterConfigsResponse:
    outcomes = _alter(ctx, request.resources, request.validate_only, incremental=True)
    return IncrementalAlterConfigsResponse(responses=[
        IncrementalResourceResponse(error_code=code, error_message=message,
                                    resource_type=r.resource_type, resource_name=r.resource_name)
        for r, (code, message) in zip(request.resources, outcomes, strict=True)])


# -- ListConfigResources --------------------------------------------------------------------

#: The resource types each version of ListConfigResources lists (v0: client metrics only).
LISTABLE_TYPES = {0: (CLIENT_METRICS,), 1: (TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP)}


@handles(74, 0, 1)
def handle_list_config_resources(ctx: RequestContext, request: ListConfigResourcesRequest
                                 ) -> ListConfigResourcesResponse:
    supported = LISTABLE_TYPES[min(ctx.api_version, 1)]
    wanted = set(request.resource_types or supported)
    if not wanted <= set(supported):
        return ListConfigResourcesResponse(error_code=ErrorCode.UNSUPPORTED_VERSION)
    node = str(ctx.broker.node_id)
    found: list[ConfigResource] = []
    # GROUP and CLIENT_METRICS: no such resources (their configs are not served).
    if BROKER_LOGGER in wanted:
        found.append(ConfigResource(resource_name=node, resource_type=BROKER_LOGGER))
    if BROKER in wanted:
        found.append(ConfigResource(resource_name=node, resource_type=BROKER))
    if TOPIC in wanted:
        found += [ConfigResource(resource_name=name, resource_type=TOPIC)
                  for name in sorted(t.name for t in ctx.broker.topics)]
    return ListConfigResourcesResponse(error_code=ErrorCode.NONE, config_resources=found)
