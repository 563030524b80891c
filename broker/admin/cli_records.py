"""`odradek produce` and `odradek consume`: console producer and consumer.

`produce` reads records from stdin or ``--input``, one per line, as text (Kafka's console
producer format: ``--parse-key``, ``--key-separator``, ``--parse-headers``...) or JSON
lines, and sends them in batches (`broker.admin.transfer.Producer`); it prints nothing on
stdout and ``Produced N records to <topic>`` on stderr.

`consume` prints records on stdout or into ``--output``, as text (Kafka's console consumer
format: ``--print-key``, ``--print-headers``, ``--print-offset``...) or JSON lines. It
starts at the end of each partition unless told otherwise (``--from-beginning``,
``--offset``, or a ``--group``'s committed offsets), and stops after ``--max-messages``,
after ``--timeout-ms`` without a record, or at Ctrl-C; then it prints ``Processed a total
of N messages`` on stderr, as Kafka's tool does. With ``--group`` it commits what it
printed (generation -1: the group must have no active members).

Both draw a rich progress bar on stderr for large transfers when stderr is a terminal:
`produce` from a file of 1 MiB or more (by bytes read), `consume` with ``--max-messages``
(by records); ``--progress`` forces it, ``--no-progress`` hides it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from broker.admin.cli_common import (
    Bootstrap,
    Timeout,
    admin_client,
    err,
    handle_errors,
    parse_configs,
    progress_bar,
)
from broker.admin.errors import AdminError
from broker.admin.formats import (
    Headers,
    LineReader,
    OutputFormat,
    format_record,
    parse_json_line,
)
from broker.admin.transfer import Consumer, Producer
from protocol.records import Compression

_LARGE_INPUT = 1 << 20


class Format(StrEnum):
    text = "text"
    json = "json"


class Codec(StrEnum):
    none = "none"
    gzip = "gzip"
    snappy = "snappy"
    lz4 = "lz4"
    zstd = "zstd"


ProgressOpt = Annotated[bool | None, typer.Option(
    "--progress/--no-progress",
    help="Draw a progress bar on stderr (default: for large transfers on a terminal).")]


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes, int]]:
    """(line number, line without its end of line, bytes read) for each line."""
    for number, raw in enumerate(stream, 1):
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if line.endswith(b"\r"):
            line = line[:-1]
        yield number, line, len(raw)


def produce(
    topic: Annotated[str, typer.Argument(help="The topic to write to.")],
    input_file: Annotated[Path | None, typer.Option(
        "--input", "-i", help="Read records from this file (default: stdin).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Input format.")] = Format.text,
    parse_key: Annotated[bool, typer.Option(
        help="Each line is key<separator>value.")] = False,
    key_separator: Annotated[str, typer.Option(help="Between key and value.")] = "\t",
    parse_headers: Annotated[bool, typer.Option(
        help="Each line starts with headers k:v,k2:v2 then a tab.")] = False,
    header: Annotated[list[str] | None, typer.Option(
        "--header", "-H", help="Add the header name=value to every record (repeatable).")
    ] = None,
    null_marker: Annotated[str | None, typer.Option(
        help="A key, value or header value equal to this is null.")] = None,
    partition: Annotated[int | None, typer.Option(
        "--partition", "-p", help="Write every record to this partition.")] = None,
    acks: Annotated[int, typer.Option(help="-1 (all), 1 or 0.")] = -1,
    compression: Annotated[Codec, typer.Option(help="Batch compression.")] = Codec.none,
    batch_bytes: Annotated[int, typer.Option(help="Send a partition's batch at this size.",
                                             min=1)] = 256 * 1024,
    progress: ProgressOpt = None,
    bootstrap_server: Bootstrap = "localhost:9092",
    request_timeout: Timeout = 30.0,
) -> None:
    """Write records read from stdin or a file, one per line."""
    _produce(**locals())


@handle_errors
def _produce(topic: str, input_file: Path | None, fmt: Format, parse_key: bool,
             key_separator: str, parse_headers: bool, header: list[str] | None,
             null_marker: str | None, partition: int | None, acks: int, compression: Codec,
             batch_bytes: int, progress: bool | None, bootstrap_server: str,
             request_timeout: float) -> None:
    extra_headers: Headers = [(k, v.encode())
                              for k, v in parse_configs(header, "--header").items()]
    reader = LineReader(parse_key=parse_key, key_separator=key_separator,
                        parse_headers=parse_headers, null_marker=null_marker)
    size = input_file.stat().st_size if input_file is not None else None
    show = progress if progress is not None else (
        sys.stderr.isatty() and size is not None and size >= _LARGE_INPUT)
    stream: BinaryIO = input_file.open("rb") if input_file is not None else sys.stdin.buffer
    codec = Compression[compression.value.upper()]
    try:
        with admin_client(bootstrap_server, request_timeout) as client:
            producer = Producer(client, topic, acks=acks, compression=codec,
                                batch_bytes=batch_bytes, timeout_ms=int(request_timeout * 1000))
            count = 0
            with progress_bar(bool(show), bool(progress), f"producing to {topic}", size,
                              unit="bytes") as advance:
                for number, line, raw_size in _lines(stream):
                    record = (parse_json_line(line, number) if fmt == Format.json
                              else reader.parse(line, number))
                    producer.send(record.key, record.value, record.headers + extra_headers,
                                  partition=record.partition if record.partition is not None
                                  else partition, timestamp=record.timestamp)
                    count += 1
                    advance(raw_size, records=count)
                producer.flush()
    finally:
        if input_file is not None:
            stream.close()
    err().print(f"Produced {count} records to {topic}", markup=False)


class Isolation(StrEnum):
    read_uncommitted = "read_uncommitted"
    read_committed = "read_committed"


def consume(
    topic: Annotated[str, typer.Argument(help="The topic to read.")],
    group: Annotated[str | None, typer.Option(
        "--group", "-g", help="Start at this group's committed offsets and commit.")] = None,
    from_beginning: Annotated[bool, typer.Option(
        help="Start at the log start (for a group: where it has no offset).")] = False,
    offset: Annotated[str | None, typer.Option(
        help="earliest, latest or an offset (needs --partition).")] = None,
    partition: Annotated[list[int] | None, typer.Option(
        "--partition", "-p", help="Read only this partition (repeatable).")] = None,
    max_messages: Annotated[int | None, typer.Option(
        help="Stop after this many records.", min=1)] = None,
    timeout_ms: Annotated[int | None, typer.Option(
        help="Stop when no record arrives for this long.", min=1)] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    print_key: Annotated[bool, typer.Option(help="Print the key (text format).")] = False,
    print_headers: Annotated[bool, typer.Option(help="Print the headers.")] = False,
    print_partition: Annotated[bool, typer.Option(help="Print the partition.")] = False,
    print_offset: Annotated[bool, typer.Option(help="Print the offset.")] = False,
    print_timestamp: Annotated[bool, typer.Option(help="Print the timestamp.")] = False,
    key_separator: Annotated[str, typer.Option(help="Between printed fields.")] = "\t",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write records to this file (default: stdout).")] = None,
    isolation_level: Annotated[Isolation, typer.Option(
        help="read_committed hides aborted transactions.")] = Isolation.read_uncommitted,
    progress: ProgressOpt = None,
    bootstrap_server: Bootstrap = "localhost:9092",
    request_timeout: Timeout = 30.0,
) -> None:
    """Print records of a topic."""
    _consume(**locals())


def _start(offset: str | None, from_beginning: bool, partition: list[int] | None,
           group: str | None) -> str | int:
    """Kafka's console consumer rules for where to start."""
    if offset is not None and from_beginning:
        raise AdminError("Options from-beginning and offset cannot be specified together.")
    if group is not None and partition:
        raise AdminError("Options group and partition cannot be specified together.")
    if offset is None:
        return "earliest" if from_beginning else "latest"
    if offset in ("earliest", "latest"):
        return offset
    if not partition:
        raise AdminError("The partition is required when offset is specified.")
    try:
        value = int(offset)
    except ValueError:
        raise AdminError(f"The provided offset value '{offset}' is incorrect. Valid values "
                         "are 'earliest', 'latest', or a non-negative long.") from None
    if value < 0:
        raise AdminError(f"The provided offset value '{offset}' is incorrect. Valid values "
                         "are 'earliest', 'latest', or a non-negative long.")
    return value


@handle_errors
def _consume(topic: str, group: str | None, from_beginning: bool, offset: str | None,
             partition: list[int] | None, max_messages: int | None, timeout_ms: int | None,
             fmt: Format, print_key: bool, print_headers: bool, print_partition: bool,
             print_offset: bool, print_timestamp: bool, key_separator: str,
             output: Path | None, isolation_level: Isolation, progress: bool | None,
             bootstrap_server: str, request_timeout: float) -> None:
    start = _start(offset, from_beginning, partition, group)
    reset = "earliest" if from_beginning else "latest"
    layout = OutputFormat(fmt.value, print_key, print_headers, print_partition, print_offset,
                          print_timestamp, key_separator)
    show = progress if progress is not None else (
        sys.stderr.isatty() and max_messages is not None)
    sink: BinaryIO = output.open("wb") if output is not None else sys.stdout.buffer
    count = 0
    try:
        with admin_client(bootstrap_server, request_timeout) as client:
            consumer = Consumer(client, topic, partitions=partition, start=start, group=group,
                                reset=reset,
                                read_committed=isolation_level == Isolation.read_committed,
                                max_wait_ms=min(500, int(request_timeout * 500)))
            last_record = time.monotonic()
            with progress_bar(bool(show), bool(progress), f"consuming {topic}",
                              max_messages) as advance:
                try:
                    while max_messages is None or count < max_messages:
                        records = consumer.poll(None if max_messages is None
                                                else max_messages - count)
                        if records:
                            sink.write(b"".join(format_record(r, layout) for r in records))
                            sink.flush()
                            count += len(records)
                            advance(len(records))
                            last_record = time.monotonic()
                            if group:
                                consumer.commit()
                        elif timeout_ms is not None and \
                                (time.monotonic() - last_record) * 1000 >= timeout_ms:
                            break
                except KeyboardInterrupt:
                    pass
            consumer.commit()
    finally:
        if output is not None:
            sink.close()
    err().print(f"Processed a total of {count} messages", markup=False)
