"""`odradek topics list|describe|create|delete|alter`: kafka-topics over the Kafka protocol.

Messages follow Kafka's tool where it has one: ``Created topic orders.``; a missing topic
is UNKNOWN_TOPIC_OR_PARTITION, an existing one TOPIC_ALREADY_EXISTS, both with the
broker's message. `alter` also changes configs (IncrementalAlterConfigs), which Kafka does
with `kafka-configs --alter --entity-type topics`.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from broker.admin import topics as ops
from broker.admin.cli_common import (
    Bootstrap,
    Timeout,
    admin_client,
    err,
    fail,
    handle_errors,
    out,
    parse_configs,
)

app = typer.Typer(help="List, describe, create, delete and alter topics.",
                  no_args_is_help=True)

ConfigOpt = Annotated[list[str] | None, typer.Option(
    "--config", "-c", help="A topic config name=value (repeatable).")]


@app.command("list")
@handle_errors
def list_topics(bootstrap_server: Bootstrap = "localhost:9092",
                exclude_internal: Annotated[bool, typer.Option(
                    help="Leave out internal topics (__consumer_offsets...).")] = False,
                request_timeout: Timeout = 30.0) -> None:
    """Print the name of every topic, one per line."""
    with admin_client(bootstrap_server, request_timeout) as client:
        for name in ops.list_topics(client, exclude_internal=exclude_internal):
            typer.echo(name)


def _nodes(nodes: list[int]) -> str:
    return ",".join(str(n) for n in nodes)


@app.command("describe")
@handle_errors
def describe(topics: Annotated[list[str] | None, typer.Argument(
                 help="Topics to describe (default: all).")] = None,
             bootstrap_server: Bootstrap = "localhost:9092",
             exclude_internal: Annotated[bool, typer.Option(
                 help="Leave out internal topics.")] = False,
             request_timeout: Timeout = 30.0) -> None:
    """Partitions (leader, replicas, ISR, log start and end offsets) and config overrides."""
    console = out()
    with admin_client(bootstrap_server, request_timeout) as client:
        infos = ops.describe_topics(client, topics or None)
    for info in infos:
        if exclude_internal and info.internal:
            continue
        configs = ",".join(f"{k}={v}" for k, v in sorted(info.configs.items()))
        typer.echo(f"Topic: {info.name}\tTopicId: {info.topic_id}\t"
                   f"PartitionCount: {len(info.partitions)}\t"
                   f"ReplicationFactor: {info.replication_factor}\tConfigs: {configs}")
        table = Table(box=None, pad_edge=False)
        for column in ("PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START-OFFSET",
                       "LOG-END-OFFSET"):
            table.add_column(column, no_wrap=True)
        for p in info.partitions:
            table.add_row(str(p.partition), str(p.leader), _nodes(p.replicas), _nodes(p.isr),
                          str(p.earliest), str(p.latest))
        console.print(table)


@app.command("create")
@handle_errors
def create(topic: Annotated[str, typer.Argument(help="The topic to create.")],
           partitions: Annotated[int, typer.Option(
               "--partitions", "-p", help="Partitions (default: the broker's num.partitions).")
           ] = -1,
           replication_factor: Annotated[int, typer.Option(
               "--replication-factor", "-r",
               help="Replicas (default: the broker's default.replication.factor).")] = -1,
           config: ConfigOpt = None,
           if_not_exists: Annotated[bool, typer.Option(
               help="Succeed if the topic exists already.")] = False,
           validate_only: Annotated[bool, typer.Option(
               help="Only check that it could be created.")] = False,
           bootstrap_server: Bootstrap = "localhost:9092",
           request_timeout: Timeout = 30.0) -> None:
    """Create a topic (CreateTopics)."""
    configs = parse_configs(config)
    with admin_client(bootstrap_server, request_timeout) as client:
        created = ops.create_topic(client, topic, partitions=partitions,
                                   replication_factor=replication_factor, configs=configs,
                                   if_not_exists=if_not_exists, validate_only=validate_only)
    if validate_only:
        typer.echo(f"Topic {topic} could be created.")
    elif created:
        typer.echo(f"Created topic {topic}.")
    else:
        err().print(f"Topic {topic} already exists.", markup=False)


@app.command("delete")
@handle_errors
def delete(topics: Annotated[list[str], typer.Argument(help="Topics to delete.")],
           if_exists: Annotated[bool, typer.Option(
               help="Succeed for topics that do not exist.")] = False,
           bootstrap_server: Bootstrap = "localhost:9092",
           request_timeout: Timeout = 30.0) -> None:
    """Delete topics (DeleteTopics)."""
    with admin_client(bootstrap_server, request_timeout) as client:
        results = ops.delete_topics(client, topics, if_exists=if_exists)
    errors = [error for _, error in results if error is not None]
    for name, error in results:
        if error is None:
            typer.echo(f"Deleted topic {name}.")
    for error in errors[1:]:
        err().print(f"Error: {error}", markup=False)
    if errors:
        raise errors[0]


@app.command("alter")
@handle_errors
def alter(topic: Annotated[str, typer.Argument(help="The topic to change.")],
          partitions: Annotated[int | None, typer.Option(
              "--partitions", "-p", help="The new (larger) total number of partitions.")
          ] = None,
          config: ConfigOpt = None,
          delete_config: Annotated[list[str] | None, typer.Option(
              "--delete-config", help="Remove a topic override (repeatable).")] = None,
          validate_only: Annotated[bool, typer.Option(
              help="Only check that the change could be made.")] = False,
          bootstrap_server: Bootstrap = "localhost:9092",
          request_timeout: Timeout = 30.0) -> None:
    """Add partitions (CreatePartitions) and set or delete configs (IncrementalAlterConfigs)."""
    configs = parse_configs(config)
    if partitions is None and not configs and not delete_config:
        raise fail("nothing to alter: give --partitions, --config or --delete-config", 2)
    with admin_client(bootstrap_server, request_timeout) as client:
        if partitions is not None:
            ops.add_partitions(client, topic, partitions, validate_only=validate_only)
            typer.echo(f"Topic {topic} now has {partitions} partitions."
                       if not validate_only else f"Topic {topic} could have {partitions} "
                       "partitions.")
        if configs or delete_config:
            ops.alter_topic_configs(client, topic, set_configs=configs,
                                    delete_configs=delete_config or [],
                                    validate_only=validate_only)
            typer.echo(f"Completed updating config for topic {topic}."
                       if not validate_only else f"Config for topic {topic} is valid.")
