"""`odradek groups list|describe|reset-offsets`: kafka-consumer-groups over the protocol.

`describe` prints what `kafka-consumer-groups --describe` prints: the group's state, then
one row per partition with CURRENT-OFFSET, LOG-END-OFFSET, LAG and the member it is
assigned to (``-`` when none), and with ``--members`` one row per member. A group that
does not exist is an error ("Consumer group 'g' does not exist.").

`reset-offsets` has Kafka's semantics (see `broker.admin.groups`): a dry run unless
``--execute``, only for an inactive group, with one scenario and a scope.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from broker.admin import groups as ops
from broker.admin.cli_common import Bootstrap, Timeout, admin_client, err, handle_errors, out
from broker.admin.errors import AdminError
from broker.admin.topics import LATEST, list_offsets

app = typer.Typer(help="List and describe consumer groups, and reset their offsets.",
                  no_args_is_help=True)


def _table(*columns: str) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=True)
    return table


@app.command("list")
@handle_errors
def list_groups(bootstrap_server: Bootstrap = "localhost:9092",
                request_timeout: Timeout = 30.0) -> None:
    """Every group, with its type and state."""
    with admin_client(bootstrap_server, request_timeout) as client:
        groups = ops.list_groups(client)
    table = _table("GROUP", "TYPE", "STATE", "PROTOCOL-TYPE")
    for g in groups:
        table.add_row(g.group_id, g.group_type or "-", g.state or "-", g.protocol_type or "-")
    out().print(table)


@app.command("describe")
@handle_errors
def describe(groups: Annotated[list[str], typer.Argument(help="Groups to describe.")],
             members: Annotated[bool, typer.Option(
                 "--members", help="List the members instead of the offsets.")] = False,
             bootstrap_server: Bootstrap = "localhost:9092",
             request_timeout: Timeout = 30.0) -> None:
    """State, committed offsets and lag of each partition, or the members."""
    console = out()
    missing = []
    with admin_client(bootstrap_server, request_timeout) as client:
        for group_id in groups:
            group = ops.describe_group(client, group_id)
            if not group.exists:
                missing.append(group_id)
                continue
            console.print(f"\nGROUP: {group.group_id}  STATE: {group.state}  "
                          f"TYPE: {group.group_type}  ASSIGNOR: {group.assignor or '-'}  "
                          f"MEMBERS: {len(group.members)}", markup=False)
            if group.state == "Empty":
                err().print(f"Consumer group '{group_id}' has no active members.",
                            markup=False)
            elif group.state not in ("Stable", "Empty"):
                err().print(f"Warning: Consumer group '{group_id}' is rebalancing.",
                            markup=False)
            if members:
                table = _table("CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID",
                               "#PARTITIONS", "ASSIGNMENT")
                for m in group.members:
                    table.add_row(m.member_id, m.instance_id or "-", m.host, m.client_id,
                                  str(len(m.assignment)),
                                  ",".join(f"{t}-{p}" for t, p in m.assignment) or "-")
                console.print(table)
                continue
            committed = ops.committed_offsets(client, group_id)
            owner = {tp: m for m in group.members for tp in m.assignment}
            partitions = sorted(set(committed) | set(owner))
            leaders: dict[tuple[str, int], int] = {}
            for topic in sorted({t for t, _ in partitions}):
                for p, leader in client.partition_leaders(topic).items():
                    leaders[(topic, p)] = leader
            ends = list_offsets(client, {tp: leaders[tp] for tp in partitions if tp in leaders},
                                LATEST)
            table = _table("TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                           "CONSUMER-ID", "HOST", "CLIENT-ID")
            for tp in partitions:
                current, end, member = committed.get(tp), ends.get(tp), owner.get(tp)
                lag = end - current if current is not None and end is not None else None
                table.add_row(tp[0], str(tp[1]), _dash(current), _dash(end), _dash(lag),
                              member.member_id if member else "-",
                              member.host if member else "-",
                              member.client_id if member else "-")
            console.print(table)
    if missing:
        raise AdminError(" ".join(f"Consumer group '{g}' does not exist." for g in missing))


def _dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def _read_plan(path: Path, group_id: str) -> dict[tuple[str, int], int]:
    """A reset plan as `--export` writes it: ``topic,partition,offset`` rows, or
    ``group,topic,partition,offset`` rows (only those of `group_id` are kept)."""
    plan: dict[tuple[str, int], int] = {}
    with path.open(newline="") as f:
        for number, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            try:
                if len(row) == 3:
                    plan[(row[0], int(row[1]))] = int(row[2])
                elif len(row) == 4 and row[0] == group_id:
                    plan[(row[1], int(row[2]))] = int(row[3])
                elif len(row) != 4:
                    raise ValueError
            except ValueError:
                raise AdminError(f"{path}:{number}: expected topic,partition,offset or "
                                 "group,topic,partition,offset") from None
    if not plan:
        raise AdminError(f"No reset plan for group {group_id} found.")
    return plan


@app.command("reset-offsets")
@handle_errors
def reset_offsets(
    group: Annotated[str, typer.Argument(help="The group whose offsets to reset.")],
    topic: Annotated[list[str] | None, typer.Option(
        "--topic", "-t", help="A topic, or topic:0,1 for some partitions (repeatable).")
    ] = None,
    all_topics: Annotated[bool, typer.Option(
        help="Every partition the group has an offset for.")] = False,
    to_earliest: Annotated[bool, typer.Option(help="Reset to the log start.")] = False,
    to_latest: Annotated[bool, typer.Option(help="Reset to the log end.")] = False,
    to_current: Annotated[bool, typer.Option(help="Reset to the committed offset.")] = False,
    to_offset: Annotated[int | None, typer.Option(help="Reset to this offset.")] = None,
    shift_by: Annotated[int | None, typer.Option(
        help="Move the committed offset by this many (may be negative).")] = None,
    to_datetime: Annotated[str | None, typer.Option(
        help="Reset to the first offset at or after YYYY-MM-DDTHH:mm:SS.sss[zone] "
             "(UTC without a zone).")] = None,
    by_duration: Annotated[str | None, typer.Option(
        help="Reset to the first offset at or after now minus this ISO-8601 duration "
             "(PnDTnHnMnS).")] = None,
    from_file: Annotated[Path | None, typer.Option(
        help="Reset to the offsets of a CSV plan (as --export writes).")] = None,
    execute: Annotated[bool, typer.Option(
        "--execute", help="Commit the new offsets (without it, a dry run).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only show the new offsets (the default).")] = False,
    export: Annotated[bool, typer.Option(
        "--export", help="Print the plan as CSV (topic,partition,offset).")] = False,
    bootstrap_server: Bootstrap = "localhost:9092",
    request_timeout: Timeout = 30.0,
) -> None:
    """Reset a group's committed offsets, as kafka-consumer-groups --reset-offsets does."""
    spec = ops.ResetSpec(
        to_earliest=to_earliest, to_latest=to_latest, to_current=to_current,
        to_offset=to_offset, shift_by=shift_by, to_datetime=to_datetime,
        by_duration=by_duration,
        from_file=_read_plan(from_file, group) if from_file is not None else None,
        all_topics=all_topics, topics=topic or [])
    if execute and dry_run:
        raise AdminError("Option --execute cannot be used with --dry-run.")
    warnings: list[str] = []
    with admin_client(bootstrap_server, request_timeout) as client:
        plan = ops.reset_offsets(client, group, spec, execute=execute, warn=warnings)
    for line in warnings:
        err().print(line, markup=False)
    if export:
        for (t, p), offset in plan.items():
            typer.echo(f"{t},{p},{offset}")
        return
    table = _table("GROUP", "TOPIC", "PARTITION", "NEW-OFFSET")
    for (t, p), offset in plan.items():
        table.add_row(group, t, str(p), str(offset))
    out().print(table)
    if not execute:
        err().print("Dry run: nothing was committed (add --execute to commit).", markup=False)
