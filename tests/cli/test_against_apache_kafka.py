"""The admin CLI is a Kafka client, not an Odradek one: the same commands against Apache
Kafka 4.4 itself, run from its jars (compat/apache-kafka/fetch.sh)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from broker.cli import app
from tests.cli.conftest import REPO

APACHE_KAFKA = REPO / "compat" / "apache-kafka"

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("java") is None or shutil.which("mvn") is None,
                       reason="Apache Kafka needs a JDK, and Maven to fetch its jars"),
]


def test_commands_against_apache_kafka() -> None:
    # Kafka 4.4's jars from Maven Central, once (idempotent).
    subprocess.run(["bash", str(APACHE_KAFKA / "fetch.sh")], check=True)
    sys.path.insert(0, str(APACHE_KAFKA))
    from apache_kafka import ReferenceKafka

    runner = CliRunner()
    with ReferenceKafka() as kafka:
        def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
            result = runner.invoke(app, [*args, "--bootstrap-server", kafka.bootstrap],
                                   input=input, catch_exceptions=False)
            return result.exit_code, result.stdout, result.stderr

        assert run("topics", "create", "orders", "--partitions", "3")[:2] == \
            (0, "Created topic orders.\n")
        code, _, stderr = run("topics", "create", "orders")
        assert (code, stderr.strip()) == (1, "Error: TOPIC_ALREADY_EXISTS: Topic 'orders' "
                                             "already exists. (topic orders)")
        assert run("produce", "orders", "--parse-key", input="k1\ta\nk2\tb\nk3\tc\n")[0] == 0
        code, stdout, stderr = run("consume", "orders", "--from-beginning", "--max-messages", "3",
                              "--print-key", "--print-partition", "--group", "g")
        assert code == 0, stderr
        # murmur2 partitions, as on Odradek (test_records_cli checks them against kafka-python)
        assert sorted(stdout.splitlines()) == ["Partition:0\tk2\tb", "Partition:1\tk3\tc",
                                               "Partition:2\tk1\ta"]
        code, stdout, _ = run("groups", "reset-offsets", "g", "--all-topics", "--to-earliest",
                              "--execute")
        assert code == 0 and stdout.split()[-4:] == ["g", "orders", "2", "0"]
        code, stdout, _ = run("consume", "orders", "--group", "g", "--max-messages", "3")
        assert sorted(stdout.split()) == ["a", "b", "c"]
        code, stdout, _ = run("check")
        assert code == 0 and " ApiVersions " in stdout
