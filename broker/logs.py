"""Structured logs: one line per event, as `key=value` text or as JSON.

How this works
--------------
Log calls across the broker already say what happened as ``"event key=value key=value"``
(``log.info("listening name=%s port=%d", ...)``). The formatters here turn such a message
back into its parts with `split_message`: the words before the first ``key=value`` token are
the event, each ``key=value`` token starts a field, and a word that is not ``key=value``
continues the value before it (so ``reason=malformed request: bad size`` keeps its
spaces). Fields can also be passed as data, without formatting them into the message:
``log.info("started", extra=kv(listeners=[...], seconds=0.12))``; those keep their JSON
types in JSON output.

- `TextFormatter` (the default): ``2026-11-25T12:00:00.123Z INFO odradek.server started
  listeners=...`` -- UTC timestamp with milliseconds, Kafka's level names (``WARN``, not
  ``WARNING``), the logger, the message as written, then the `kv` fields (values with
  spaces or quotes are JSON-quoted). A traceback follows on its own lines.
- `JsonFormatter` (``--log-format json``): one JSON object per line with ``ts``, ``level``,
  ``logger``, ``msg`` (the event) and every field; a field named like one of those four
  becomes ``field_<name>``; a traceback is the string field ``exc``.

Levels (`configure`, ``--log-level``): a bare level (``info``) sets the root logger; a
``logger=level`` pair (``odradek.groups=debug``) sets one logger; several may be given,
separately or comma-separated. Level names are Kafka's and Python's, any case: ``trace``
(5, below debug), ``debug``, ``info``, ``warn``/``warning``, ``error``, ``fatal``/``critical``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

__all__ = [
    "TRACE",
    "JsonFormatter",
    "TextFormatter",
    "configure",
    "kv",
    "parse_levels",
    "split_message",
]

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

LEVELS: dict[str, int] = {
    "trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
    "warning": logging.WARNING, "error": logging.ERROR, "fatal": logging.CRITICAL,
    "critical": logging.CRITICAL,
}
#: Kafka's (log4j's) names for Python's levels.
_LEVEL_NAMES = {TRACE: "TRACE", logging.DEBUG: "DEBUG", logging.INFO: "INFO",
                logging.WARNING: "WARN", logging.ERROR: "ERROR", logging.CRITICAL: "FATAL"}
FORMATS = ("text", "json")
_RESERVED = ("ts", "level", "logger", "msg")
_FIELD = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*)=(.*)", re.DOTALL)
_PLAIN = re.compile(r"[^\s\"=]+")


def kv(**fields: Any) -> dict[str, Any]:
    """``extra=kv(a=1, b="x")``: fields carried as data next to the message."""
    return {"kv": fields}


def split_message(message: str) -> tuple[str, dict[str, str]]:
    """``"loaded logs partitions=3 last_stop=unclean (recovered /d)"`` ->
    ``("loaded logs", {"partitions": "3", "last_stop": "unclean (recovered /d)"})``.

    A message without ``key=value`` tokens is all event. A repeated key keeps its last
    value. Only single spaces separate tokens, so runs of spaces inside a value survive.
    """
    event: list[str] = []
    fields: dict[str, str] = {}
    last: str | None = None
    for token in message.split(" "):
        match = _FIELD.fullmatch(token)
        if match:
            last = match.group(1)
            fields[last] = match.group(2)
        elif last is None:
            event.append(token)
        else:
            fields[last] += " " + token
    return " ".join(event), fields


def _timestamp(record: logging.LogRecord) -> str:
    when = datetime.fromtimestamp(record.created, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _level(record: logging.LogRecord) -> str:
    return _LEVEL_NAMES.get(record.levelno, record.levelname)


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "kv", None)
    return fields if isinstance(fields, dict) else {}


def _text_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text and _PLAIN.fullmatch(text):
        return text
    return json.dumps(text)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


class TextFormatter(logging.Formatter):
    """``<ts> <LEVEL> <logger> <message>[ key=value...]``, traceback on the next lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {_level(record)} {record.name} {record.getMessage()}"
        extra = _extra(record)
        if extra:
            line += "".join(f" {k}={_text_value(v)}" for k, v in extra.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per event: ts, level, logger, msg and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        event, fields = split_message(record.getMessage())
        out: dict[str, Any] = {"ts": _timestamp(record), "level": _level(record),
                               "logger": record.name, "msg": event}
        items: list[tuple[str, Any]] = list(fields.items())
        items += [(k, _json_value(v)) for k, v in _extra(record).items()]
        for key, value in items:
            out[f"field_{key}" if key in _RESERVED else key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def parse_levels(specs: Iterable[str]) -> tuple[int | None, dict[str, int]]:
    """``["info", "odradek.groups=debug,odradek.connection=warn"]`` ->
    ``(INFO, {"odradek.groups": DEBUG, "odradek.connection": WARNING})``.

    The last bare level wins for the root logger (None when none is given). `ValueError`
    names the unknown level.
    """
    root: int | None = None
    loggers: dict[str, int] = {}
    for spec in specs:
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, level_name = part.rpartition("=")
            level = LEVELS.get(level_name.strip().lower())
            if level is None:
                raise ValueError(f"unknown log level {level_name.strip()!r} (valid: "
                                 f"{', '.join(sorted(LEVELS))})")
            if sep:
                loggers[name.strip()] = level
            else:
                root = level
    return root, loggers


_HANDLER_NAME = "odradek"


def configure(levels: Iterable[str] = ("info",), fmt: str = "text",
              stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record to `stream` (stderr by default) in `fmt` ("text" or "json"),
    with the levels of `levels` (see `parse_levels`; root defaults to INFO).

    Replaces the handler a previous call installed (so tests and repeated CLI runs in one
    process do not print twice) and leaves other handlers (pytest's capture) alone.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (valid: {', '.join(FORMATS)})")
    root_level, per_logger = parse_levels(levels)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(root_level if root_level is not None else logging.INFO)
    for name, level in per_logger.items():
        logging.getLogger(name).setLevel(level)
    return handler
