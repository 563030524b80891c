"""The kcat driver of the compatibility matrix (compat/SCENARIOS.md).

Standard-library Python that runs Debian's `kcat` for all the Kafka work: `-L -J` for
metadata, `-P` (with `-K` keys, `-H` headers, `-z` codecs, `-Z` nulls, files for whole
messages, `-X transactional.id`) to produce, `-C -f` to consume, `-Q` for offsets by time and
`-G` for group members. librdkafka's defaults apply except where a scenario asks otherwise
(`message.max.bytes` for the 1,000,000-byte record, `enable.idempotence`,
`isolation.level`, `auto.offset.reset=earliest` for group members that must read from the
beginning).

What kcat cannot do, and what the driver does instead:
- No admin API: topics are auto-created by the first produce, with the broker's
  `num.partitions` (1 by default). `topics-admin` and `delete-records` are n/a, and so is
  `consumer-group`, whose 6 partitions kcat cannot make. `idempotent-producer` writes its
  1,000 records to the one partition kcat can make, and passes with a note saying so.
- No create time for produced records: `produce-consume` checks everything but the first
  record's timestamp, and `list-offsets-by-time` writes its three records in three kcat runs,
  reads back the create times they got and asks for offsets by those times. Both pass with a
  note.
- Headers are per kcat run (`-H`), so `produce-codec-*` runs kcat once per record (100 runs).

Consuming: `-f '%o %T %K %S %h\\n%k%s\\n'` gives a text line with offset, timestamp, key and
value lengths (-1 for null) and headers, then the raw key and value bytes, which `consume`
parses by length, so binary values survive.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runner"))
import driverkit as kit  # noqa: E402
from driverkit import NotApplicable, Record, Run, check, check_equal  # noqa: E402

T = kit.TIMEOUT_S
KCAT = shutil.which("kcat") or "kcat"
FORMAT = "%o %T %K %S %h\\n%k%s\\n"


@dataclass(frozen=True)
class Consumed:
    offset: int
    record: Record


def kcat(run: Run, *args: str, stdin: bytes = b"", timeout: float = T) -> bytes:
    """Run kcat to completion; its stdout, or an error with its stderr's tail."""
    argv = [KCAT, "-b", run.bootstrap, *args]
    proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
    sys.stderr.write(proc.stderr.decode(errors="replace"))
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.decode(errors="replace").strip().splitlines()[-5:])
        raise RuntimeError(f"kcat {' '.join(args[:6])}... exited with {proc.returncode}: {tail}")
    return proc.stdout


def parse_headers(text: str) -> tuple[tuple[str, bytes], ...]:
    """`%h` output: `n=v` pairs separated by commas (our header values have neither)."""
    if not text:
        return ()
    return tuple((name, value.encode()) for name, _, value in
                 (pair.partition("=") for pair in text.split(",")))


def parse_consumed(out: bytes) -> list[Consumed]:
    """Records printed with `FORMAT`: header line, then key and value bytes by length."""
    records: list[Consumed] = []
    pos = 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        fields = out[pos:end].decode().split(" ", 4)
        offset, ts, klen, vlen = (int(f) for f in fields[:4])
        pos = end + 1
        key = out[pos:pos + klen] if klen >= 0 else None
        pos += max(klen, 0)
        value = out[pos:pos + vlen] if vlen >= 0 else None
        pos += max(vlen, 0)
        check(out[pos:pos + 1] == b"\n", f"kcat output not as formatted at offset {offset}")
        pos += 1
        headers = parse_headers(fields[4] if len(fields) > 4 else "")
        records.append(Consumed(offset, Record(key, value, headers, ts)))
    return records


def consume(run: Run, topic: str, partition: int = 0, *extra: str) -> list[Consumed]:
    """Every record of the partition from the beginning to its end (`-e`)."""
    out = kcat(run, "-C", "-q", "-t", topic, "-p", str(partition), "-o", "beginning", "-e",
               "-f", FORMAT, *extra)
    return parse_consumed(out)


def produce_lines(run: Run, topic: str, lines: list[bytes], *extra: str,
                  partition: int = 0) -> None:
    kcat(run, "-P", "-t", topic, "-p", str(partition), *extra,
         stdin=b"".join(line + b"\n" for line in lines))


def numbered(count: int, start: int = 0, step: int = 1) -> list[bytes]:
    return [f"{i}".encode() for i in range(start, count, step)]


# ---------------------------------------------------------------------------- scenarios


def metadata(run: Run) -> None:
    topic = run.topic("metadata")
    produce_lines(run, topic, [b"created"])  # kcat has no admin API: auto-creation
    meta = json.loads(kcat(run, "-L", "-J", "-t", topic))
    check_equal("brokers", [b["name"] for b in meta["brokers"]], [run.bootstrap])
    (listed,) = [t for t in meta["topics"] if t["topic"] == topic]
    check_equal("partition count", len(listed["partitions"]), 1)


def topics_admin(run: Run) -> None:
    raise NotApplicable("kcat has no admin API (create, describe, alter or delete topics)")


def produce_consume(run: Run) -> str:
    topic = run.topic("produce-consume")
    want = kit.produce_consume_records()
    first, null, empty, big = want
    produce_lines(run, topic, [b"key-0\tvalue-0"], "-K", "\\t", "-H", "h1=v1", "-H", "h2=")
    produce_lines(run, topic, [b"\t"], "-K", "\\t", "-Z")  # -Z: empty key and value are null
    produce_lines(run, topic, [b"\t"], "-K", "\\t")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big"
        path.write_bytes(big.value or b"")
        kcat(run, "-P", "-t", topic, "-p", "0", "-k", "big",
             "-X", f"message.max.bytes={2 * kit.BIG_RECORD_BYTES}", str(path))
    got = consume(run, topic)
    check_equal("offsets read", [c.offset for c in got], [0, 1, 2, 3])
    check_records = [c.record for c in got]
    kit.check_records("produce-consume", check_records,
                      [Record(r.key, r.value, r.headers) for r in want])
    check(all(r.timestamp and r.timestamp > 0 for r in check_records),
          f"timestamps {[r.timestamp for r in check_records]}")
    return ("kcat cannot set a record's create time; the first record's timestamp was not "
            "compared (everything else was)")


def produce_codec(run: Run, codec: str) -> None:
    topic = run.codec_topic(codec)
    compression = [] if codec == "none" else ["-z", codec]
    for i, record in enumerate(kit.codec_records(codec)):  # headers are per kcat run
        produce_lines(run, topic, [(record.key or b"") + b"\t" + (record.value or b"")],
                      "-K", "\\t", "-H", f"i={i}", *compression)
    got = consume(run, topic)
    check_equal("offsets", [c.offset for c in got], list(range(kit.CODEC_RECORDS)))
    kit.check_records(f"{codec} read back", [c.record for c in got], kit.codec_records(codec))


def consume_codec(run: Run, codec: str, writer: str) -> None:
    got = consume(run, run.codec_topic(codec, writer))
    check_equal("offsets", [c.offset for c in got], list(range(kit.CODEC_RECORDS)))
    kit.check_records(f"{codec} from {writer}", [c.record for c in got],
                      kit.codec_records(codec))


def offset_for(run: Run, topic: str, when: int) -> int:
    answer = json.loads(kcat(run, "-Q", "-J", "-t", f"{topic}:0:{when}"))
    return int(answer[topic]["0"]["offset"])


def list_offsets_by_time(run: Run) -> str:
    topic = run.topic("list-offsets-by-time")  # auto-created; its records have current times
    for i in range(3):  # one kcat run per record (tens of ms), so each has its own create time
        produce_lines(run, topic, [f"v{i}".encode()])
    times = [c.record.timestamp or 0 for c in consume(run, topic)]
    check(times[0] < times[1] < times[2], f"create times not increasing: {times}")
    check_equal("earliest", offset_for(run, topic, -2), 0)
    check_equal("latest", offset_for(run, topic, -1), 3)
    check_equal("offset for a time between the first two records",
                offset_for(run, topic, times[0] + 1), 1)
    check_equal("offset for the third record's time", offset_for(run, topic, times[2]), 2)
    check_equal("offset for a later time", offset_for(run, topic, times[2] + 1000), -1)
    print(f"create times {times}", file=sys.stderr)
    return ("kcat cannot set create times: the records got theirs from the producer and the "
            "offsets were asked for by those")


def consumer_group(run: Run) -> None:
    raise NotApplicable("kcat cannot create a topic with 6 partitions (no admin API; "
                        "auto-created topics get the broker's num.partitions)")


class Member:
    """A `kcat -G` process: records it prints on stdout, assignments from its stderr."""

    def __init__(self, run: Run, group: str, topic: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [KCAT, "-b", run.bootstrap, "-G", group, "-u", "-f", "%p %o %s\\n",
             "-X", "auto.offset.reset=earliest", *extra, topic],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.lines: list[tuple[int, int, bytes]] = []
        self.assignment: set[int] = set()
        self.threads = [threading.Thread(target=self._out, daemon=True),
                        threading.Thread(target=self._err, daemon=True)]
        for thread in self.threads:
            thread.start()

    def _out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            partition, offset, value = line.rstrip(b"\n").split(b" ", 2)
            self.lines.append((int(partition), int(offset), value))

    def _err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            sys.stderr.write(line)
            if "assigned:" in line:
                self.assignment = {int(p) for p in re.findall(r"\[(\d+)\]", line)}
            elif "revoked:" in line:
                self.assignment = set()

    def finish(self, timeout: float = T) -> int:
        code = self.proc.wait(timeout)
        for thread in self.threads:
            thread.join(timeout)
        return code

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.finish()


def resume_committed(run: Run) -> None:
    topic, group = run.topic("resume-committed"), run.group("resume-committed")
    produce_lines(run, topic, numbered(10))
    first = Member(run, group, topic, "-c", "4")  # exits after 4 records, committing on close
    try:
        check_equal("first member's exit code", first.finish(), 0)
    finally:
        first.stop()
    check_equal("first consumer's offsets", [o for _, o, _ in first.lines], [0, 1, 2, 3])
    second = Member(run, group, topic, "-e")
    try:
        check_equal("second member's exit code", second.finish(), 0)
    finally:
        second.stop()
    check_equal("second consumer's offsets", [o for _, o, _ in second.lines], list(range(4, 10)))
    check_equal("values", [v for _, _, v in second.lines], numbered(10, 4))


def idempotent_producer(run: Run) -> str:
    topic = run.topic("idempotent-producer")
    produce_lines(run, topic, numbered(1000), "-X", "enable.idempotence=true")
    got = [int(c.record.value or b"-1") for c in consume(run, topic)]
    check_equal("values", got, list(range(1000)))
    return ("kcat cannot create a topic with 3 partitions (no admin API; auto-created topics "
            "get the broker's num.partitions), so the 1,000 records went to one partition")


# kcat takes its input in fixed-size fread() steps and can hold back the last short
# messages of a burst until more input comes; messages of 1 KiB with their newline are
# all produced as soon as they are written (measured with kcat 1.7.1: 10 of 10, where
# 128-byte ones stopped at 8), so the open transaction holds all ten before the abort.
TXN_LINE = 1024


def txn_values(label: str) -> list[bytes]:
    return [f"{label} {i} ".ljust(TXN_LINE - 1, "-").encode() for i in range(10)]


def transactions(run: Run) -> None:
    """Commit: kcat commits its transaction when its input ends. Abort: kcat aborts it when
    a termination signal stopped it, so the driver writes the ten records, waits until a
    read_uncommitted consumer sees them, sends SIGINT and closes kcat's input."""
    topic = run.topic("transactions")
    committed, aborted = txn_values("committed"), txn_values("aborted")
    txn = ["-m", str(T), "-X", f"transactional.id=compat-kcat-tx-{run.run_id}"]
    produce_lines(run, topic, committed, *txn)
    proc = subprocess.Popen([KCAT, "-b", run.bootstrap, "-P", "-t", topic, "-p", "0", *txn],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        proc.stdin.write(b"".join(v + b"\n" for v in aborted))
        proc.stdin.flush()
        deadline = time.monotonic() + T
        uncommitted = ["-X", "isolation.level=read_uncommitted"]
        while len(consume(run, topic, 0, *uncommitted)) < 20:  # the open transaction's
            check(time.monotonic() < deadline, "the second transaction's records never "
                  "reached a read_uncommitted consumer")
            check(proc.poll() is None, f"kcat exited with {proc.returncode} mid-transaction")
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        proc.stdin.close()
        proc.wait(T)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    sys.stderr.write(err.decode(errors="replace"))
    check(b"Aborting transaction" in err, f"kcat did not abort: {err[-300:]!r}")
    got = [c.record.value for c in consume(run, topic, 0, "-X", "isolation.level=read_committed")]
    check_equal("read_committed values", got, committed)
    got = [c.record.value for c in consume(run, topic, 0, *uncommitted)]
    check_equal("read_uncommitted values", got, committed + aborted)


def delete_records(run: Run) -> None:
    raise NotApplicable("kcat has no DeleteRecords API")


DRIVER = kit.Driver("kcat", {
    "metadata": metadata,
    "topics-admin": topics_admin,
    "produce-consume": produce_consume,
    "produce-codec": produce_codec,
    "consume-codec": consume_codec,
    "list-offsets-by-time": list_offsets_by_time,
    "consumer-group": consumer_group,
    "resume-committed": resume_committed,
    "idempotent-producer": idempotent_producer,
    "transactions": transactions,
    "delete-records": delete_records,
})

if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C")
    sys.exit(DRIVER.main())
