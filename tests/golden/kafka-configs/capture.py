"""Capture Apache Kafka 4.4's answers to the config and log-dir APIs, as reference data.

Runs a fixed list of scenarios (`SCENARIOS`) against a fresh `ReferenceKafka` through our
own codecs and writes what Kafka answered:

* `scenarios.json`: per scenario the request and the response (dataclass fields), in order.
  `tests/broker/test_configs_api.py` replays the same scenarios against Odradek and compares.
* `broker-describe.json`: DescribeConfigs v4 of broker "1" with synonyms, one entry per
  config, sorted by name (documentation left out: it is in the table below).
* `broker/kafka_config_defs.json`: the table `broker/config.py` loads: per broker config
  its type, default, sensitivity, dynamic flag and documentation; per topic config its type,
  default and documentation.
* `reference-broker.json`: the non-default settings the reference broker was started with
  (they show up as STATIC_BROKER_CONFIG).

    .venv/bin/python tests/golden/kafka-configs/capture.py [KEEP_DIR]    # ~35 s

Setup steps (create a topic, append a batch) are scenario entries too;
a runner performs them its own way (CreateTopics/Produce here, the registry in our tests).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "compat" / "apache-kafka"))

from protocol import frames  # noqa: E402
from protocol.messages import alter_configs_request as ac  # noqa: E402
from protocol.messages import incremental_alter_configs_request as iac  # noqa: E402
from protocol.messages.describe_configs_request import (  # noqa: E402
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from protocol.messages.describe_log_dirs_request import (  # noqa: E402
    DescribableLogDirTopic,
    DescribeLogDirsRequest,
)
from protocol.records import build_batch  # noqa: E402

TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
#: The batch appended to partition 0 of topic "cfg" (sizes in DescribeLogDirs).
#: Its timestamp is "now" so that retention leaves it alone; sizes do not depend on it.
BATCH = build_batch([(b"k", b"v" * 100), (None, b"w" * 50)],
                    base_timestamp=int(time.time() * 1000))


def describe(resources: list[tuple[int, str, list[str] | None]], synonyms: bool = False,
             docs: bool = False) -> DescribeConfigsRequest:
    return DescribeConfigsRequest(
        [DescribeConfigsResource(t, n, k) for t, n, k in resources], synonyms, docs)


def alter(resources: list[tuple[int, str, dict[str, str | None]]],
          validate_only: bool = False) -> ac.AlterConfigsRequest:
    return ac.AlterConfigsRequest(
        [ac.AlterConfigsResource(t, n, [ac.AlterableConfig(k, v) for k, v in c.items()])
         for t, n, c in resources], validate_only)


def incremental(resources: list[tuple[int, str, list[tuple[str, int, str | None]]]],
                validate_only: bool = False) -> iac.IncrementalAlterConfigsRequest:
    return iac.IncrementalAlterConfigsRequest(
        [iac.AlterConfigsResource(t, n, [iac.AlterableConfig(k, op, v) for k, op, v in c])
         for t, n, c in resources], validate_only)


def log_dirs(topics: dict[str, list[int]] | None) -> DescribeLogDirsRequest:
    return DescribeLogDirsRequest(
        None if topics is None else [DescribableLogDirTopic(t, p) for t, p in topics.items()])


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    api_key: int = 0
    version: int = 0
    request: Any = None
    #: a setup step instead of a request: ("create_topic", name, partitions, configs) or
    #: ("append", topic, partition) (appends `BATCH`).
    setup: tuple[Any, ...] | None = None


def _s(name: str, api_key: int, version: int, request: Any) -> Scenario:
    return Scenario(name, api_key, version, request)


DC, AC, IAC, DLD = 32, 33, 44, 35
K = ["retention.ms", "cleanup.policy", "no.such.config"]

SCENARIOS: list[Scenario] = [
    Scenario("setup-topic", setup=("create_topic", "cfg", 2, {"retention.ms": "3600000"})),
    Scenario("setup-topic-plain", setup=("create_topic", "plain", 1, {})),
    Scenario("setup-append", setup=("append", "cfg", 0)),
    # -- DescribeConfigs ------------------------------------------------------------------
    _s("describe-topic-v4-all", DC, 4, describe([(TOPIC, "cfg", None)], True, True)),
    _s("describe-topic-plain-v4", DC, 4, describe([(TOPIC, "plain", None)], True, False)),
    _s("describe-topic-v1-keys", DC, 1, describe([(TOPIC, "cfg", K)], True)),
    _s("describe-topic-v2-no-synonyms", DC, 2, describe([(TOPIC, "cfg", K)])),
    _s("describe-topic-v3-keys-docs", DC, 3, describe([(TOPIC, "cfg", K)], True, True)),
    _s("describe-topic-empty-keys", DC, 4, describe([(TOPIC, "plain", [])])),
    _s("describe-topic-unknown", DC, 4, describe([(TOPIC, "nope", None)])),
    _s("describe-topic-invalid-name", DC, 4, describe([(TOPIC, "bad name!", None)])),
    _s("describe-topic-empty-name", DC, 4, describe([(TOPIC, "", None)])),
    _s("describe-broker-keys", DC, 4, describe(
        [(BROKER, "1", ["log.retention.hours", "log.retention.ms", "num.partitions",
                        "log.dirs", "ssl.key.password", "no.such.config"])], True, True)),
    _s("describe-broker-v1-keys", DC, 1, describe(
        [(BROKER, "1", ["log.retention.hours", "message.max.bytes"])], True)),
    _s("describe-broker-default-empty", DC, 4, describe([(BROKER, "", None)], True, True)),
    _s("describe-broker-other-id", DC, 4, describe([(BROKER, "2", None)])),
    _s("describe-broker-not-a-number", DC, 4, describe([(BROKER, "abc", None)])),
    _s("describe-logger-empty", DC, 4, describe([(BROKER_LOGGER, "", None)])),
    _s("describe-logger-other-id", DC, 4, describe([(BROKER_LOGGER, "2", None)])),
    _s("describe-logger-keys", DC, 4, describe([(BROKER_LOGGER, "1", ["root", "kafka"])], True)),
    _s("describe-unknown-type", DC, 4, describe([(99, "x", None)])),
    _s("describe-type-unknown-0", DC, 4, describe([(0, "x", None)])),
    _s("describe-several", DC, 4, describe(
        [(TOPIC, "nope", None), (TOPIC, "plain", ["retention.ms"]), (BROKER, "7", None)])),
    # -- AlterConfigs ---------------------------------------------------------------------
    _s("alter-topic-replace", AC, 0, alter(
        [(TOPIC, "cfg", {"retention.bytes": "1048576", "cleanup.policy": "compact,delete"})])),
    _s("alter-topic-replace-check", DC, 4, describe([(TOPIC, "cfg", K + ["retention.bytes"])],
                                                     True)),
    _s("alter-topic-validate-only", AC, 1, alter(
        [(TOPIC, "cfg", {"retention.ms": "1000"})], validate_only=True)),
    _s("alter-topic-validate-only-check", DC, 4, describe(
        [(TOPIC, "cfg", ["retention.ms", "retention.bytes"])], True)),
    _s("alter-topic-bad-value", AC, 2, alter([(TOPIC, "cfg", {"retention.ms": "abc"})])),
    _s("alter-topic-below-min", AC, 2, alter([(TOPIC, "cfg", {"segment.bytes": "10"})])),
    _s("alter-topic-bad-policy", AC, 2, alter([(TOPIC, "cfg", {"cleanup.policy": "zap"})])),
    _s("alter-topic-unknown-name", AC, 2, alter([(TOPIC, "cfg", {"no.such.config": "1"})])),
    _s("alter-topic-null-value", AC, 2, alter([(TOPIC, "cfg", {"retention.ms": None})])),
    _s("alter-topic-unknown", AC, 2, alter([(TOPIC, "nope", {"retention.ms": "1000"})])),
    _s("alter-topic-invalid-name", AC, 2, alter([(TOPIC, "bad name!", {})])),
    _s("alter-topic-duplicate-resource", AC, 2, alter(
        [(TOPIC, "plain", {"retention.ms": "1000"}), (TOPIC, "plain", {})])),
    _s("alter-topic-empty-resets", AC, 2, alter([(TOPIC, "plain", {})])),
    _s("alter-broker-readonly", AC, 2, alter([(BROKER, "1", {"num.partitions": "3"})])),
    _s("alter-broker-bad-value", AC, 2, alter([(BROKER, "1", {"log.retention.ms": "x"})])),
    _s("alter-broker-unknown-name", AC, 2, alter([(BROKER, "1", {"no.such.config": "1"})])),
    _s("alter-broker-other-id", AC, 2, alter([(BROKER, "2", {"log.retention.ms": "1"})])),
    _s("alter-broker-per-broker-at-default", AC, 2, alter(
        [(BROKER, "", {"ssl.keystore.type": "PKCS12"})])),
    _s("alter-broker-security-no-prefix", AC, 2, alter(
        [(BROKER, "1", {"ssl.keystore.type": "PKCS12"})])),
    _s("alter-broker-logger", AC, 2, alter([(BROKER_LOGGER, "1", {"kafka": "DEBUG"})])),
    _s("alter-broker-default", AC, 2, alter([(BROKER, "", {"log.retention.ms": "7200000"})])),
    _s("alter-broker-per-broker", AC, 2, alter([(BROKER, "1", {"log.cleaner.threads": "2"})])),
    _s("alter-broker-check", DC, 4, describe(
        [(BROKER, "", None), (BROKER, "1", ["log.retention.ms", "log.retention.hours",
                                            "log.cleaner.threads"]),
         (TOPIC, "plain", ["retention.ms"])], True)),
    _s("alter-broker-default-reset", AC, 2, alter([(BROKER, "", {})])),
    _s("alter-broker-per-broker-reset", AC, 2, alter([(BROKER, "1", {})])),
    _s("alter-unknown-type", AC, 2, alter([(99, "x", {})])),
    # -- IncrementalAlterConfigs ----------------------------------------------------------
    _s("inc-topic-set-delete", IAC, 0, incremental(
        [(TOPIC, "cfg", [("retention.ms", SET, "86400000"), ("retention.bytes", DELETE, None)])])),
    _s("inc-topic-subtract", IAC, 1, incremental(
        [(TOPIC, "cfg", [("cleanup.policy", SUBTRACT, "delete")])])),
    _s("inc-topic-append", IAC, 1, incremental(
        [(TOPIC, "cfg", [("cleanup.policy", APPEND, "delete,compact")])])),
    _s("inc-topic-check", DC, 4, describe([(TOPIC, "cfg", K + ["retention.bytes"])], True)),
    _s("inc-topic-append-non-list", IAC, 1, incremental(
        [(TOPIC, "cfg", [("retention.ms", APPEND, "1")])])),
    _s("inc-topic-delete-unset", IAC, 1, incremental(
        [(TOPIC, "plain", [("segment.ms", DELETE, None)])])),
    _s("inc-topic-set-null", IAC, 1, incremental(
        [(TOPIC, "cfg", [("retention.ms", SET, None)])])),
    _s("inc-topic-duplicate-key", IAC, 1, incremental(
        [(TOPIC, "cfg", [("retention.ms", SET, "1"), ("retention.ms", SET, "2")])])),
    _s("inc-topic-bad-op", IAC, 1, incremental([(TOPIC, "cfg", [("retention.ms", 7, "1")])])),
    _s("inc-topic-bad-value", IAC, 1, incremental(
        [(TOPIC, "cfg", [("retention.ms", SET, "soon")])])),
    _s("inc-topic-unknown-name", IAC, 1, incremental(
        [(TOPIC, "cfg", [("no.such.config", SET, "1")])])),
    _s("inc-topic-unknown", IAC, 1, incremental(
        [(TOPIC, "nope", [("retention.ms", SET, "1")])])),
    _s("inc-topic-validate-only", IAC, 1, incremental(
        [(TOPIC, "cfg", [("retention.ms", SET, "5000")])], validate_only=True)),
    _s("inc-topic-duplicate-resource", IAC, 1, incremental(
        [(TOPIC, "plain", [("retention.ms", SET, "1000")]), (TOPIC, "plain", [])])),
    _s("inc-topic-subtract-absent", IAC, 1, incremental(
        [(TOPIC, "plain", [("cleanup.policy", SUBTRACT, "compact")])])),
    _s("inc-topic-append-to-default", IAC, 1, incremental(
        [(TOPIC, "plain", [("cleanup.policy", APPEND, "compact")])])),
    _s("inc-topic-check-2", DC, 4, describe(
        [(TOPIC, "cfg", ["retention.ms"]), (TOPIC, "plain", ["cleanup.policy"])], True)),
    _s("inc-broker-default-set", IAC, 1, incremental(
        [(BROKER, "", [("log.retention.ms", SET, "7200000"),
                       ("log.cleanup.policy", APPEND, "compact")])])),
    _s("inc-broker-set", IAC, 1, incremental(
        [(BROKER, "1", [("log.retention.ms", SET, "10800000"),
                        ("message.max.bytes", SET, "2000000")])])),
    _s("inc-broker-check", DC, 4, describe(
        [(BROKER, "", None),
         (BROKER, "1", ["log.retention.ms", "log.cleanup.policy", "message.max.bytes"]),
         (TOPIC, "plain", ["retention.ms", "cleanup.policy", "max.message.bytes"])], True)),
    _s("inc-broker-readonly", IAC, 1, incremental(
        [(BROKER, "1", [("num.partitions", SET, "3")])])),
    _s("inc-broker-bad-value", IAC, 1, incremental(
        [(BROKER, "1", [("log.retention.ms", SET, "x")])])),
    _s("inc-broker-below-min", IAC, 1, incremental(
        [(BROKER, "1", [("log.segment.bytes", SET, "10")])])),
    _s("inc-broker-unknown-name", IAC, 1, incremental(
        [(BROKER, "1", [("no.such.config", SET, "1")])])),
    _s("inc-broker-unknown-name-check", DC, 4, describe(
        [(BROKER, "1", ["no.such.config"]), (BROKER, "", None)], True, True)),
    _s("inc-broker-unknown-name-delete", IAC, 1, incremental(
        [(BROKER, "1", [("no.such.config", DELETE, None)])])),
    _s("inc-broker-other-id", IAC, 1, incremental(
        [(BROKER, "2", [("log.retention.ms", SET, "1")])])),
    _s("inc-broker-not-a-number", IAC, 1, incremental(
        [(BROKER, "abc", [("log.retention.ms", SET, "1")])])),
    _s("inc-broker-append-non-list", IAC, 1, incremental(
        [(BROKER, "1", [("log.retention.ms", APPEND, "1")])])),
    _s("inc-broker-delete", IAC, 1, incremental(
        [(BROKER, "1", [("log.retention.ms", DELETE, None), ("message.max.bytes", DELETE, None)]),
         (BROKER, "", [("log.retention.ms", DELETE, None),
                       ("log.cleanup.policy", DELETE, None)])])),
    _s("inc-broker-delete-check", DC, 4, describe(
        [(BROKER, "", None), (BROKER, "1", ["log.retention.ms", "message.max.bytes"])], True)),
    _s("inc-logger-empty", IAC, 1, incremental([(BROKER_LOGGER, "", [("kafka", SET, "DEBUG")])])),
    _s("inc-logger-set", IAC, 1, incremental([(BROKER_LOGGER, "1", [("root", SET, "INFO")])])),
    _s("inc-logger-validate-only", IAC, 1, incremental(
        [(BROKER_LOGGER, "1", [("root", SET, "TRACE")])], validate_only=True)),
    _s("inc-logger-bad-level", IAC, 1, incremental(
        [(BROKER_LOGGER, "1", [("root", SET, "VERBOSE")])])),
    _s("inc-logger-unknown-logger", IAC, 1, incremental(
        [(BROKER_LOGGER, "1", [("no.such.logger", SET, "DEBUG")])])),
    _s("inc-logger-delete-root", IAC, 1, incremental(
        [(BROKER_LOGGER, "1", [("root", DELETE, None)])])),
    _s("inc-logger-append", IAC, 1, incremental(
        [(BROKER_LOGGER, "1", [("root", APPEND, "DEBUG")])])),
    _s("inc-logger-subtract", IAC, 1, incremental(
        [(BROKER_LOGGER, "1", [("root", SUBTRACT, "DEBUG")])])),
    _s("inc-logger-bad-op", IAC, 1, incremental([(BROKER_LOGGER, "1", [("root", 9, "DEBUG")])])),
    _s("inc-logger-other-id", IAC, 1, incremental(
        [(BROKER_LOGGER, "2", [("root", SET, "INFO")])])),
    _s("describe-logger-root", DC, 4, describe([(BROKER_LOGGER, "1", ["root"])], True, True)),
    _s("inc-unknown-type", IAC, 1, incremental([(99, "x", [])])),
    # -- DescribeLogDirs ------------------------------------------------------------------
    _s("logdirs-all-v1", DLD, 1, log_dirs(None)),
    _s("logdirs-selected-v2", DLD, 2, log_dirs({"cfg": [0, 1, 7], "nope": [0]})),
    _s("logdirs-empty-v3", DLD, 3, log_dirs({})),
    _s("logdirs-all-v4", DLD, 4, log_dirs({"cfg": [0], "plain": [0]})),
    _s("logdirs-all-v5", DLD, 5, log_dirs({"cfg": [0]})),
]


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.name != "unknown_tagged_fields"}
    if isinstance(obj, list):
        return [to_jsonable(x) for x in obj]
    if isinstance(obj, bytes):
        return obj.hex()
    return obj


class SyncClient:
    """Blocking request/response over our codecs (the capture needs nothing more)."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.sock = socket.create_connection(self.address, timeout=5)
        self.correlation_id = 0

    def reconnect(self) -> None:
        self.sock.close()
        self.sock = socket.create_connection(self.address, timeout=5)

    def request(self, api_key: int, version: int, body: Any) -> Any:
        self.correlation_id += 1
        chunks = frames.encode_request(api_key, version, self.correlation_id, "capture", body)
        self.sock.sendall(frames.join_chunks(chunks))
        size = struct.unpack(">i", self._read(4))[0]
        return frames.decode_response(self._read(size), api_key, version)[1]

    def _read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out


def run_against_kafka(client: SyncClient, setup: Callable[[tuple[Any, ...]], None]
                      ) -> list[dict[str, Any]]:
    out = []
    for sc in SCENARIOS:
        if sc.setup is not None:
            setup(sc.setup)
            continue
        entry = {"name": sc.name, "api_key": sc.api_key, "version": sc.version,
                 "request": to_jsonable(sc.request)}
        try:
            entry["response"] = to_jsonable(client.request(sc.api_key, sc.version, sc.request))
        except OSError as exc:
            # Kafka answers some bad requests by closing the connection (or not at all).
            entry["response"] = None
            entry["no_response"] = type(exc).__name__
            client.reconnect()
        print(sc.name, "->", entry.get("no_response", "answered"), file=sys.stderr)
        if sc.api_key in (AC, IAC) and entry["response"] is not None and any(
                r["error_code"] == 0 for r in entry["response"]["responses"]):
            time.sleep(1.0)  # KRaft: the broker applies config records asynchronously
        out.append(entry)
    return out


def kafka_setup(client: SyncClient) -> Callable[[tuple[Any, ...]], None]:
    from protocol.messages.create_topics_request import (
        CreatableTopic,
        CreatableTopicConfig,
        CreateTopicsRequest,
    )
    from protocol.messages.produce_request import (
        PartitionProduceData,
        ProduceRequest,
        TopicProduceData,
    )

    def setup(step: tuple[Any, ...]) -> None:
        if step[0] == "create_topic":
            _, name, partitions, configs = step
            topic = CreatableTopic(name, partitions, 1, [], [
                CreatableTopicConfig(k, v) for k, v in configs.items()])
            r = client.request(19, 7, CreateTopicsRequest([topic], 30000, False))
            assert r.topics[0].error_code == 0, r
        elif step[0] == "append":
            _, topic, partition = step
            req = ProduceRequest(None, -1, 30000, [
                TopicProduceData(topic, partition_data=[PartitionProduceData(partition, BATCH)])])
            r = client.request(0, 9, req)
            assert r.responses[0].partition_responses[0].error_code == 0, r

    return setup


def write_defs(brokers: list[dict[str, Any]], scenarios: list[dict[str, Any]], out: Path
               ) -> None:
    """`broker/kafka_config_defs.json` from the captures (see broker/config.py).

    Per broker config: Kafka's type id (DescribeConfigs `config_type`), default value as
    Kafka prints it (the DEFAULT_CONFIG synonym; null when there is none), sensitivity,
    whether it is dynamically updatable (not read-only) and its documentation. Per topic
    config: type, default and documentation.
    """
    topic = next(s for s in scenarios if s["name"] == "describe-topic-v4-all")
    broker_defs = {}
    for e in brokers:
        default = [s["value"] for s in e["synonyms"] if s["source"] == 5 and s["name"] == e["name"]]
        broker_defs[e["name"]] = [e["config_type"], default[0] if default else None,
                                  e["is_sensitive"], not e["read_only"], e["documentation"]]
    # "plain" has no overrides: its values are the defaults (min.insync.replicas comes from
    # the cluster-level dynamic default ELR sets, equal to Kafka's default of 1).
    plain = next(s for s in scenarios if s["name"] == "describe-topic-plain-v4")
    defaults = {e["name"]: e["value"] for e in plain["response"]["results"][0]["configs"]}
    topic_defs = {}
    for e in topic["response"]["results"][0]["configs"]:
        topic_defs[e["name"]] = [e["config_type"], defaults[e["name"]], e["documentation"]]
    text = json.dumps({
        "source": "Apache Kafka 4.4.0 DescribeConfigs, by tests/golden/kafka-configs/capture.py",
        "columns": {"broker": ["type", "default", "sensitive", "dynamic", "doc"],
                    "topic": ["type", "default", "doc"]},
        "broker": broker_defs, "topic": topic_defs}, sort_keys=True, separators=(",", ":"))
    out.write_text(text.replace("],\"", "],\n\"") + "\n")


def main() -> int:
    from apache_kafka import KAFKA_VERSION, ReferenceKafka

    with ReferenceKafka(directory=sys.argv[1] if len(sys.argv) > 1 else None) as kafka:
        client = SyncClient(kafka.host, kafka.port)
        full = client.request(DC, 4, describe([(BROKER, "1", None)], True, True))
        configs = sorted(to_jsonable(full.results[0])["configs"], key=lambda c: c["name"])
        scenarios = run_against_kafka(client, kafka_setup(client))
        props = kafka.properties()
        data_dir = str(kafka.data_dir)
    write_defs(configs, scenarios, ROOT / "broker" / "kafka_config_defs.json")
    for c in configs:  # the documentation is in kafka_config_defs.json
        del c["documentation"]
    rows = ",\n".join(json.dumps(c, sort_keys=True) for c in configs)
    (HERE / "broker-describe.json").write_text(
        f'{{"kafka": "{KAFKA_VERSION}", "configs": [\n{rows}\n]}}\n')
    rows = ",\n".join(json.dumps(s, sort_keys=True) for s in scenarios)
    (HERE / "scenarios.json").write_text(
        f'{{"kafka": "{KAFKA_VERSION}", "data_dir": {json.dumps(data_dir)}, '
        f'"scenarios": [\n{rows}\n]}}\n')
    (HERE / "reference-broker.json").write_text(json.dumps(props, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
