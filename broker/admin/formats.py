"""Reading records from lines and writing consumed records out, in text or JSON lines.

Text input follows Kafka's console producer (`LineMessageReader`): one record per line
(``\\n`` or ``\\r\\n``); with `parse_headers`, the line starts with headers
(``h1:v1,h2:v2``) ended by `headers_delimiter` (tab); with `parse_key`, the key comes
next, ended by `key_separator` (tab). A key or header value equal to `null_marker` (when
set) is null. A line without the separator it needs is an error naming the line, as
Kafka's is ("No key separator found on line number 3: 'x'").

JSON lines input: one object per line with optional ``key``, ``value``, ``headers``
(an object, or a list of ``[key, value]`` pairs), ``partition`` and ``timestamp``; a
``key``/``value`` that is not a string or null is written as its compact JSON; binary data
goes in ``key_base64``/``value_base64``.

Text output follows Kafka's console consumer (`DefaultMessageFormatter`): optional
``CreateTime:<ts>``, ``Partition:<p>``, ``Offset:<o>``, headers (``k:v,k2:v2`` or
``NO_HEADERS``), the key, each followed by `key_separator`, then the value and a newline;
a null key or value prints as ``null``. JSON output writes one object per record with
topic, partition, offset, timestamp, timestamp_type, key, value and headers; bytes that are
not UTF-8 go in ``*_base64`` fields instead.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from broker.admin.errors import AdminError

__all__ = ["InputRecord", "LineReader", "OutputFormat", "OutputRecord", "format_record",
           "parse_json_line"]

Headers = list[tuple[str, bytes | None]]


@dataclass
class InputRecord:
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    partition: int | None = None
    timestamp: int | None = None


@dataclass
class OutputRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: str  # "CreateTime" or "LogAppendTime"
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


def _nullable(data: bytes, null_marker: bytes | None) -> bytes | None:
    return None if null_marker is not None and data == null_marker else data


@dataclass
class LineReader:
    """Kafka's console producer line format (see the module docstring)."""

    parse_key: bool = False
    key_separator: str = "\t"
    parse_headers: bool = False
    headers_delimiter: str = "\t"
    headers_separator: str = ","
    headers_key_separator: str = ":"
    null_marker: str | None = None

    def parse(self, line: bytes, number: int) -> InputRecord:
        null = self.null_marker.encode() if self.null_marker is not None else None
        rest = line
        headers: Headers = []
        if self.parse_headers:
            delimiter = self.headers_delimiter.encode()
            head, sep, rest = line.partition(delimiter)
            if not sep:
                raise AdminError(f"No headers delimiter found on line number {number}: "
                                 f"'{line.decode(errors='replace')}'")
            for item in head.split(self.headers_separator.encode()) if head else []:
                hkey, hsep, hvalue = item.partition(self.headers_key_separator.encode())
                if not hsep:
                    raise AdminError(f"No header key separator found in pair "
                                     f"'{item.decode(errors='replace')}' on line number "
                                     f"{number}")
                headers.append((hkey.decode(), _nullable(hvalue, null)))
        key: bytes | None = None
        value: bytes | None = rest
        if self.parse_key:
            key_part, sep, value_part = rest.partition(self.key_separator.encode())
            if not sep:
                raise AdminError(f"No key separator found on line number {number}: "
                                 f"'{line.decode(errors='replace')}'")
            key, value = _nullable(key_part, null), value_part
        return InputRecord(key, _nullable(value, null) if value is not None else None, headers)


def _json_bytes(obj: dict[str, Any], name: str, number: int) -> bytes | None:
    if f"{name}_base64" in obj:
        try:
            return base64.b64decode(obj[f"{name}_base64"], validate=True)
        except (ValueError, TypeError):
            raise AdminError(f"line {number}: {name}_base64 is not base64") from None
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def parse_json_line(line: bytes, number: int) -> InputRecord:
    """One JSON lines record (see the module docstring)."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise AdminError(f"line {number} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise AdminError(f"line {number}: expected a JSON object")
    raw_headers = obj.get("headers") or []
    pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    headers: Headers = []
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise AdminError(f"line {number}: headers must be an object or [key, value] pairs")
        hkey, hvalue = pair
        headers.append((str(hkey), None if hvalue is None else str(hvalue).encode()))
    partition, timestamp = obj.get("partition"), obj.get("timestamp")
    for name, number_value in (("partition", partition), ("timestamp", timestamp)):
        if number_value is not None and not isinstance(number_value, int):
            raise AdminError(f"line {number}: {name} must be an integer")
    return InputRecord(_json_bytes(obj, "key", number), _json_bytes(obj, "value", number),
                       headers, partition, timestamp)


@dataclass
class OutputFormat:
    """What to print of each consumed record, as the console consumer's properties say."""

    fmt: str = "text"  # "text" or "json"
    print_key: bool = False
    print_headers: bool = False
    print_partition: bool = False
    print_offset: bool = False
    print_timestamp: bool = False
    key_separator: str = "\t"
    headers_separator: str = ","
    headers_key_separator: str = ":"
    null_literal: str = "null"


def _text(data: bytes | None, null: str) -> bytes:
    return null.encode() if data is None else data


def _json_field(out: dict[str, Any], name: str, data: bytes | None) -> None:
    if data is None:
        out[name] = None
        return
    try:
        out[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        out[f"{name}_base64"] = base64.b64encode(data).decode()


def format_record(record: OutputRecord, fmt: OutputFormat) -> bytes:
    """One record as a line (with its newline)."""
    if fmt.fmt == "json":
        out: dict[str, Any] = {"topic": record.topic, "partition": record.partition,
                               "offset": record.offset, "timestamp": record.timestamp,
                               "timestamp_type": record.timestamp_type}
        _json_field(out, "key", record.key)
        _json_field(out, "value", record.value)
        headers = []
        for hkey, hvalue in record.headers:
            entry: dict[str, Any] = {"key": hkey}
            _json_field(entry, "value", hvalue)
            headers.append(entry)
        out["headers"] = headers
        return json.dumps(out, ensure_ascii=False).encode() + b"\n"
    sep = fmt.key_separator.encode()
    parts: list[bytes] = []
    if fmt.print_timestamp:
        parts.append(f"{record.timestamp_type}:{record.timestamp}".encode()
                     if record.timestamp >= 0 else b"NO_TIMESTAMP")
    if fmt.print_partition:
        parts.append(f"Partition:{record.partition}".encode())
    if fmt.print_offset:
        parts.append(f"Offset:{record.offset}".encode())
    if fmt.print_headers:
        if record.headers:
            parts.append(fmt.headers_separator.encode().join(
                hkey.encode() + fmt.headers_key_separator.encode() + _text(hvalue, fmt.null_literal)
                for hkey, hvalue in record.headers))
        else:
            parts.append(b"NO_HEADERS")
    if fmt.print_key:
        parts.append(_text(record.key, fmt.null_literal))
    parts.append(_text(record.value, fmt.null_literal))
    return sep.join(parts) + b"\n"
