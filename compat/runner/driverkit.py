"""What every Python driver shares: the command line, the result lines and the expected data.

Standard library only: drivers import it from their own venvs with
`sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runner"))`.

A driver builds a `Driver` with its client name and a handler per scenario family, and calls
`main()`::

    driver = Driver("kafka-python", {"metadata": metadata, "produce-codec": produce_codec, ...})
    sys.exit(driver.main())

Families: `produce-codec-gzip` calls
the `produce-codec` handler with `codec="gzip"`; `consume-codec-gzip:aiokafka` calls the
`consume-codec` handler with `codec="gzip", writer="aiokafka"`. A handler takes a `Run`
(bootstrap, run id, topic names) and those keyword arguments; it returns normally for a pass
(returning a string makes it a pass with a note, e.g. for a part of the scenario the client
cannot express), raises `NotApplicable(reason)` for n/a, and anything else it raises is a
failure whose reason is the exception (its type and message). Each scenario's result is printed
on stdout as one JSON line, flushed at once; the driver's logs go to stderr. An id no handler
knows is a failure ("no such scenario"). A scenario that still runs after `SCENARIO_BUDGET_S`
gets its stack dumped to stderr (faulthandler), to show where it hangs.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SCENARIO_BUDGET_S = 90
# Client-side waits: every blocking call of a driver is bounded by at most this.
TIMEOUT_S = 30

# produce-consume: the create time of the first record (ms), and the big record's size.
PRODUCE_CONSUME_TIMESTAMP = 1_700_000_000_000
BIG_RECORD_BYTES = 1_000_000
# list-offsets-by-time
LIST_OFFSETS_TIMES = (1_700_000_000_000, 1_700_000_001_000, 1_700_000_002_000)
CODEC_RECORDS = 100

log = logging.getLogger("compat.driver")


class NotApplicable(Exception):
    """The client has no API for the scenario; the message is the reason."""


class Mismatch(AssertionError):
    """What the scenario read back differs from what it expected."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


def check_equal(what: str, got: object, want: object) -> None:
    if got != want:
        raise Mismatch(f"{what}: got {_short(got)}, want {_short(want)}")


def eventually(what: str, read: Callable[[], Any], want: object,
               timeout: float = TIMEOUT_S) -> None:
    """Call `read()` until it returns `want` (bounded by `timeout`), else a Mismatch.

    Admin changes are asynchronous in Kafka: a broker applies a new topic, config or
    partition count once the controller has committed it, so a read right after the change
    may still see the old state.
    """
    deadline = time.monotonic() + timeout
    while True:
        got = read()
        if got == want:
            return
        if time.monotonic() >= deadline:
            raise Mismatch(f"{what}: got {_short(got)}, want {_short(want)} "
                           f"(still, after {timeout:.0f} s)")
        time.sleep(0.1)


def _short(value: object, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"…({len(text)} chars)"


@dataclass(frozen=True)
class Record:
    """A record as the scenarios describe it: bytes or None, headers as (key, bytes) pairs."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int | None = None


def codec_records(codec: str) -> list[Record]:
    """The 100 records of `produce-codec-<codec>`: key k<i>, value repeated 8 times, header i."""
    return [Record(key=f"k{i}".encode(),
                   value=(f"codec {codec} record {i} " * 8).encode(),
                   headers=(("i", str(i).encode()),))
            for i in range(CODEC_RECORDS)]


def produce_consume_records() -> list[Record]:
    """The four records of `produce-consume`, in order (offsets 0..3)."""
    return [
        Record(b"key-0", b"value-0", (("h1", b"v1"), ("h2", b"")), PRODUCE_CONSUME_TIMESTAMP),
        Record(None, None),
        Record(b"", b""),
        Record(b"big", bytes(i % 251 for i in range(BIG_RECORD_BYTES))),
    ]


def check_records(what: str, got: list[Record], want: list[Record],
                  compare_timestamps: bool = True) -> None:
    """Compare record by record (keys, values, headers, timestamps where `want` has one)."""
    check_equal(f"{what}: record count", len(got), len(want))
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        check_equal(f"{what}: record {i} key", g.key, w.key)
        check_equal(f"{what}: record {i} value", g.value, w.value)
        check_equal(f"{what}: record {i} headers", tuple(g.headers), tuple(w.headers))
        if compare_timestamps and w.timestamp is not None:
            check_equal(f"{what}: record {i} timestamp", g.timestamp, w.timestamp)


@dataclass(frozen=True)
class Run:
    """The run's parameters and its topic names."""

    client: str
    bootstrap: str
    run_id: str

    @property
    def host(self) -> str:
        return self.bootstrap.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.bootstrap.rsplit(":", 1)[1])

    def topic(self, scenario: str) -> str:
        """`compat-<client>-<scenario>-<RID>`."""
        return f"compat-{self.client}-{scenario}-{self.run_id}"

    def codec_topic(self, codec: str, writer: str | None = None) -> str:
        """`compat-codec-<codec>-<writer>-<RID>` (the writer is this client by default)."""
        return f"compat-codec-{codec}-{writer or self.client}-{self.run_id}"

    def group(self, name: str) -> str:
        """`compat-<client>-<name>-<RID>`: `consumer-group` uses the name `group`."""
        return f"compat-{self.client}-{name}-{self.run_id}"


Handler = Callable[..., Any]


def _dispatch(scenario: str) -> tuple[str, dict[str, str]]:
    if scenario.startswith("produce-codec-"):
        return "produce-codec", {"codec": scenario.removeprefix("produce-codec-")}
    if scenario.startswith("consume-codec-") and ":" in scenario:
        codec, writer = scenario.removeprefix("consume-codec-").split(":", 1)
        return "consume-codec", {"codec": codec, "writer": writer}
    return scenario, {}


class Driver:
    def __init__(self, client: str, handlers: dict[str, Handler]) -> None:
        self.client = client
        self.handlers = handlers

    def run_one(self, run: Run, scenario: str) -> dict[str, object]:
        started = time.monotonic()
        family, kwargs = _dispatch(scenario)
        handler = self.handlers.get(family)
        status, reason = "pass", ""
        faulthandler.dump_traceback_later(SCENARIO_BUDGET_S, exit=False)
        try:
            if handler is None:
                raise LookupError(f"no such scenario {scenario!r}")
            log.info("scenario %s starts", scenario)
            note = handler(run, **kwargs)
            if isinstance(note, str):
                reason = note
        except NotApplicable as exc:
            status, reason = "n/a", str(exc)
        except Exception as exc:  # a failing scenario must not stop the others
            traceback.print_exc(file=sys.stderr)
            status, reason = "fail", f"{type(exc).__name__}: {exc}"
        finally:
            faulthandler.cancel_dump_traceback_later()
        return {"scenario": scenario, "status": status, "reason": reason,
                "seconds": round(time.monotonic() - started, 3)}

    def main(self, argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(description=f"compat driver for {self.client}")
        parser.add_argument("--bootstrap", required=True)
        parser.add_argument("--run-id", required=True)
        parser.add_argument("--scenarios", required=True)
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
        run = Run(self.client, args.bootstrap, args.run_id)
        for scenario in [s for s in args.scenarios.split(",") if s]:
            result = self.run_one(run, scenario)
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()
            log.info("scenario %s: %s %s", scenario, result["status"], result["reason"])
        return 0
