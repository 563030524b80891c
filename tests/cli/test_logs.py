"""Structured logs: the message parser, both formatters, levels, and the broker's own
start-up banner and stop lines from a real `odradek serve` process."""

from __future__ import annotations

import io
import json
import logging
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from broker import logs
from tests.cli.conftest import REPO

pytestmark = pytest.mark.timeout(120)

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def record(message: str, *args: object, level: int = logging.INFO, name: str = "odradek.t",
           **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


@pytest.mark.parametrize(("message", "event", "fields"), [
    ("listening name=PLAINTEXT port=9092", "listening", {"name": "PLAINTEXT", "port": "9092"}),
    ("logs closed cleanly", "logs closed cleanly", {}),
    ("closing connection peer=1.2.3.4:5 reason=malformed request: short frame",
     "closing connection", {"peer": "1.2.3.4:5", "reason": "malformed request: short frame"}),
    ("loaded logs last_stop=unclean (recovered /d) seconds=0.1", "loaded logs",
     {"last_stop": "unclean (recovered /d)", "seconds": "0.1"}),
    ("append to t-0 failed: disk full", "append to t-0 failed: disk full", {}),
    ("x a=1 a=2", "x", {"a": "2"}),
    ("empty value=", "empty", {"value": ""}),
])
def test_split_message(message: str, event: str, fields: dict[str, str]) -> None:
    assert logs.split_message(message) == (event, fields)


def test_json_formatter_carries_parsed_and_extra_fields() -> None:
    rec = record("listening name=%s port=%d", "PLAINTEXT", 9092,
                 **logs.kv(listeners=["a", "b"], seconds=0.25, msg="clash"))
    out = json.loads(logs.JsonFormatter().format(rec))
    assert re.fullmatch(TS, out.pop("ts"))
    assert out == {"level": "INFO", "logger": "odradek.t", "msg": "listening",
                   "name": "PLAINTEXT", "port": "9092", "listeners": ["a", "b"],
                   "seconds": 0.25, "field_msg": "clash"}


def test_json_formatter_puts_a_traceback_in_one_field() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        rec = logging.LogRecord("odradek.t", logging.ERROR, __file__, 1, "failed peer=%s",
                                ("p",), sys.exc_info())
    line = logs.JsonFormatter().format(rec)
    assert "\n" not in line
    out = json.loads(line)
    assert out["level"] == "ERROR" and out["peer"] == "p"
    assert "RuntimeError: boom" in out["exc"]


def test_text_formatter_uses_kafka_level_names_and_quotes_extra_values() -> None:
    rec = record("unknown config name=%s", "x.y", level=logging.WARNING,
                 **logs.kv(path="/a b", n=3, dirs=["/a", "/b"]))
    line = logs.TextFormatter().format(rec)
    assert re.fullmatch(TS + r' WARN odradek\.t unknown config name=x\.y path="/a b" n=3 '
                        r'dirs=/a,/b', line), line
    assert logs.TextFormatter().format(record("deep", level=logs.TRACE)).split()[1] == "TRACE"


def test_levels_by_logger() -> None:
    assert logs.parse_levels(["warn", "odradek.groups=debug,odradek.connection=TRACE"]) == (
        logging.WARNING, {"odradek.groups": logging.DEBUG, "odradek.connection": logs.TRACE})
    assert logs.parse_levels(["odradek.x=error"]) == (None, {"odradek.x": logging.ERROR})
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        logs.parse_levels(["odradek.x=loud"])
    root = logging.getLogger()
    saved = root.level, root.handlers[:], logging.getLogger("odradek.lt").level
    stream = io.StringIO()
    try:
        logs.configure(["error", "odradek.lt=debug"], "json", stream)
        logs.configure(["error", "odradek.lt=debug"], "json", stream)  # replaces, no doubles
        logging.getLogger("odradek.lt").debug("seen a=%d", 1)
        logging.getLogger("odradek.other").info("hidden")
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[1]:
                root.removeHandler(handler)
        root.setLevel(saved[0])
        logging.getLogger("odradek.lt").setLevel(saved[2])
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["msg"] for line in lines] == ["seen"]
    with pytest.raises(ValueError, match="unknown log format"):
        logs.configure(["info"], "xml", stream)


# -- `odradek serve` as a process -------------------------------------------------------------


def start(data: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "broker", "serve", "--override", f"log.dirs={data}",
         "--override", "listeners=PLAINTEXT://127.0.0.1:0", *args],
        cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def lines_until(proc: subprocess.Popen[str], needle: str) -> list[str]:
    """stderr lines up to and including the first that contains `needle`."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line.rstrip("\n"))
        if needle in line:
            return seen
    raise AssertionError(f"the broker exited before logging {needle!r}: {seen}")


def stop(proc: subprocess.Popen[str]) -> list[str]:
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0
    return (rest or "").splitlines()


def test_serve_json_logs_with_per_logger_levels_and_the_banner(tmp_path: Path) -> None:
    proc = start(tmp_path / "data", "--log-format", "json", "--log-level", "warn",
                 "--log-level", "odradek.server=info")
    try:
        lines = lines_until(proc, '"msg": "started"')
    finally:
        lines += stop(proc)
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    for event in events:
        assert re.fullmatch(TS, event["ts"]) and event["level"] and event["logger"]
    # root at WARN: the "odradek" logger's INFO lines (starting, stopping) are gone.
    assert {e["logger"] for e in events} == {"odradek.server"}
    banner = next(e for e in events if e["msg"] == "started")
    assert re.fullmatch(r"PLAINTEXT://127\.0\.0\.1:\d+", banner["listeners"])
    assert banner["listeners"].rsplit(":", 1)[1] != "0"
    assert banner["advertised.listeners"] == banner["listeners"]
    assert banner["log.dirs"] == str(tmp_path / "data")
    assert banner["version"] and banner["cluster.id"]
    assert (banner["partitions"], banner["recovered"], banner["last_stop"]) == ("0", "0", "clean")
    assert float(banner["seconds"]) >= 0
    assert events[-1]["msg"] == "logs closed cleanly"


def test_serve_text_banner_reports_an_unclean_stop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = start(data)
    try:
        banner = lines_until(proc, " started ")[-1]
        port = re.search(r" listeners=PLAINTEXT://127\.0\.0\.1:(\d+)", banner).group(1)
        created = subprocess.run(
            [sys.executable, "-m", "broker", "topics", "create", "t", "--partitions", "3",
             "--bootstrap-server", f"127.0.0.1:{port}"], cwd=REPO, capture_output=True,
            text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        assert created.stdout == "Created topic t.\n"
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    assert re.fullmatch(TS + r" INFO odradek\.server started version=\S+ node\.id=1 "
                        r"cluster\.id=\S+ listeners=PLAINTEXT://127\.0\.0\.1:\d+ "
                        r"advertised\.listeners=PLAINTEXT://127\.0\.0\.1:\d+ log\.dirs=\S+ "
                        r"partitions=0 recovered=0 last_stop=clean seconds=[\d.]+", banner)
    proc = start(data)
    try:
        banner = lines_until(proc, " started ")[-1]
    finally:
        stop(proc)
    assert " partitions=3 recovered=3 last_stop=unclean " in banner
