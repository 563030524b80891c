"""`odradek check` (is the broker there, what does it serve) and `odradek dump-log`.

`check` connects (retrying for ``--wait`` seconds), and prints the cluster id, the
brokers and the controller from Metadata, then every API the broker advertises in
ApiVersions, by name, with its version range and the range this tool's codecs know, and
the finalized features. Exit status 0 when the broker answered, 1 when it did not.

`dump-log` is `kafka-dump-log` (see `broker.admin.dumplog`); its exit status is 1 when it
found damage (a bad CRC, a torn tail, an index entry that points at the wrong batch).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from broker.admin.cli_common import Bootstrap, Timeout, admin_client, err, handle_errors, out
from broker.admin.client import AdminClient, api_name
from broker.admin.dumplog import DumpOptions, dump_files
from broker.admin.errors import AdminError
from protocol.messages import REQUESTS


@handle_errors
def check(bootstrap_server: Bootstrap = "localhost:9092",
          wait: Annotated[float, typer.Option(
              help="Keep trying to connect for this many seconds.", min=0)] = 0.0,
          request_timeout: Timeout = 30.0) -> None:
    """Check that the broker answers, and list the APIs and versions it serves."""
    deadline = time.monotonic() + wait
    while True:
        try:
            client = admin_client(bootstrap_server, request_timeout)
            break
        except AdminError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
    with client:
        _report(client)


def _report(client: AdminClient) -> None:
    console = out()
    metadata = client.metadata([])
    conn = client.conn
    console.print(f"Broker {conn.address} answers: cluster {metadata.cluster_id}, "
                  f"controller {metadata.controller_id}", markup=False)
    brokers = Table(title="brokers", box=None, pad_edge=False, title_justify="left")
    for column in ("ID", "HOST", "PORT", "RACK"):
        brokers.add_column(column, no_wrap=True)
    for b in sorted(metadata.brokers, key=lambda b: b.node_id):
        brokers.add_row(str(b.node_id), b.host, str(b.port), b.rack or "-")
    console.print(brokers)
    apis = Table(title="APIs", box=None, pad_edge=False, title_justify="left")
    for column in ("KEY", "API", "MIN", "MAX", "ODRADEK-CLI"):
        apis.add_column(column, no_wrap=True)
    for key, (low, high) in sorted(conn.versions.items()):
        cls: Any = REQUESTS.get(key)
        ours = f"{cls.MIN_VERSION}-{cls.MAX_VERSION}" if cls else "-"
        apis.add_row(str(key), api_name(key), str(low), str(high), ours)
    console.print(apis)
    response = conn.api_versions
    if response is not None and response.finalized_features:
        features = ", ".join(f"{f.name}={f.max_version_level}"
                             for f in response.finalized_features)
        console.print(f"Finalized features: {features}", markup=False)


@handle_errors
def dump_log(
    files: Annotated[list[Path], typer.Argument(
        help=".log, .index, .timeindex, .txnindex or .snapshot files.")],
    print_data: Annotated[bool, typer.Option(
        "--print-data", "--print-data-log", help="Print keys and values.")] = False,
    deep_iteration: Annotated[bool, typer.Option(
        help="Print each record (implied by --print-data).")] = False,
    verify_index_only: Annotated[bool, typer.Option(
        help="Check the indexes against the log without printing their entries.")] = False,
    index_sanity_check: Annotated[bool, typer.Option(
        help="Only the sanity checks a broker makes at start-up.")] = False,
    skip_record_metadata: Annotated[bool, typer.Option(
        help="Leave out each record's offsets and sizes.")] = False,
    max_message_size: Annotated[int, typer.Option(help="Size of the largest batch.")
                                ] = 5 * 1024 * 1024,
    max_bytes: Annotated[int, typer.Option(
        help="Read at most this many bytes of each .log.", min=1)] = 2**31 - 1,
    indexes: Annotated[bool, typer.Option(
        "--indexes/--no-indexes", help="With a .log, dump its index files too.")] = True,
) -> None:
    """Print the batches, records and index entries of segment files, and verify them."""
    options = DumpOptions(print_data=print_data, deep_iteration=deep_iteration,
                          verify_index_only=verify_index_only,
                          index_sanity_check=index_sanity_check,
                          skip_record_metadata=skip_record_metadata,
                          max_message_size=max_message_size, max_bytes=max_bytes)
    errors = err()
    problems = dump_files([str(f) for f in files], options, typer.echo,
                          lambda line: errors.print(line, markup=False), with_indexes=indexes)
    if problems:
        raise typer.Exit(1)
