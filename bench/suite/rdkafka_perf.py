"""librdkafka's own load generator, ``rdkafka_performance``, as the native load driver.

    python bench/suite/rdkafka_perf.py build     # build it if needed; print what was built

How this works
--------------
Build (``ensure_built``, idempotent, a few milliseconds once built): the program is
``examples/rdkafka_performance.c`` of the librdkafka source package that Debian ships,
compiled against Debian's ``librdkafka-dev`` (the same version), in ``bench/.work/rdkafka/``
(git-ignored):

1. ``librdkafka-dev`` is installed with apt-get when missing (as root; otherwise the
   reason says what to install).
2. The source package of exactly the installed version is fetched with
   ``apt-get source --download-only`` through a private apt configuration: a ``deb-src``
   line for the archive that ``apt-cache madison`` names for the installed version, its own
   lists directory and no package caches, so the machine's apt state is not touched.
   apt checks the files against the archive's signed ``Sources`` index. ``dpkg-source -x``
   unpacks it with Debian's patches (a plain ``tar`` of the upstream tarball where
   ``dpkg-source`` is missing; Debian's patches do not touch the example).
3. The example includes librdkafka's internal ``rd.h``, which needs the ``config.h`` that
   librdkafka's ``./configure`` writes: it is run with optional features off and
   ``--no-download``; then only the example is compiled, linked with ``-lrdkafka``.

``build.json`` next to the binary records the version built; a different installed
``librdkafka-dev`` triggers a rebuild. A file lock makes concurrent builds wait.

Library at run time (``LIBRARY``): the tool uses only librdkafka's public API, whose ABI
librdkafka keeps within ``librdkafka.so.1``, so the same binary runs with either library:

- ``"confluent-kafka"`` (the default): the librdkafka that the confluent-kafka wheel ships
  (``confluent_kafka.libs/librdkafka-*.so.1``, self-contained), found through
  ``LD_LIBRARY_PATH`` and a ``librdkafka.so.1`` link in ``bench/.work/rdkafka/lib/``.
  Debian bookworm's librdkafka 2.0.2 cannot read Tansu's ApiVersions v3 response (a read
  underflow in its tagged fields), and one library for every broker keeps the figures
  comparable; it is also the librdkafka of the confluent-kafka column.
- ``"debian"``: Debian's librdkafka1, the one the tool was linked with.

Runs (``produce``, ``consume``): the tool in a child process, optionally pinned to CPUs
(``cpus``), its output read line by line (line-buffered through ``stdbuf -oL``). At its
default verbosity it prints its summary
line every second; the run fails if the count on it does not move for ``STALL_S`` seconds
or the tool exits non-zero. The final summary line gives the figures:

- producer (``-P``): ``% N messages produced (B bytes), D delivered (offset O, F failed)
  in T ms: R msgs/s and X MB/s, E produce failures, Q in queue, C compression``. The clock
  runs from before the first ``produce()`` until the last delivery report; R and X count
  delivered records and bytes (MB = 10^6 bytes, bytes per microsecond). "produce failures"
  are retries on a full local queue (backpressure), not lost records. The tool exits 1
  when a record was not delivered.
- consumer (``-C``): ``% N messages (B bytes) consumed in T ms: R msgs/s (X MB/s)``,
  counting the records it received itself, from the first record to the last (the
  connection and first fetch excluded, as ConsumerPerformance excludes the join).

The tool sends the same payload in every record (``-m`` pattern, here hex digits of the
record's size): compressed batches shrink far more than real data would.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "bench" / ".work" / "rdkafka"
BINARY = WORK / "rdkafka_performance"
RECORD = WORK / "build.json"
PACKAGE = "librdkafka-dev"
STALL_S = 60.0
LIB_DIR = WORK / "lib"
LIBRARY = "confluent-kafka"  # or "debian": which librdkafka.so.1 the tool runs with

# Producer settings on top of the tool's own (message.send.max.retries=3,
# retry.backoff.ms=500). The tool sets linger.ms=1000, which would add up to a second of
# tail to every run: librdkafka's default of 5 ms is put back. Batches are librdkafka's
# defaults (batch.num.messages=10000, batch.size=1000000, so 10-KB records go 100 to a
# batch). The local queue is raised from 100,000 records so that a fast broker is not
# throttled by it (on a full queue the tool waits 10 ms before retrying).
PRODUCER_CONF = {
    "linger.ms": "5",
    "batch.num.messages": "10000",
    "batch.size": "1000000",
    "queue.buffering.max.messages": "1000000",
    "queue.buffering.max.kbytes": "1048576",
}
# The tool sets queued.min.messages=1000000; the byte cap is raised to match (1 GB).
CONSUMER_CONF = {"queued.max.messages.kbytes": "1048576"}


class Unavailable(RuntimeError):
    """rdkafka_performance cannot be built here; the message says why."""


class ToolFailed(RuntimeError):
    """The tool failed, stalled or printed no summary; the message has its output's tail."""


# -- build ------------------------------------------------------------------------------------
def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 600.0,
         env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise Unavailable(f"`{' '.join(cmd[:4])} …` exited {proc.returncode}: "
                          f"{(proc.stdout + proc.stderr).strip()[-1500:]}")
    return proc.stdout


def installed_version() -> tuple[str, str] | None:
    """(source package, source version) of the installed librdkafka-dev, or None."""
    if shutil.which("dpkg-query") is None:
        return None
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Status} ${source:Package} "
                           "${source:Version}", PACKAGE], capture_output=True, text=True)
    parts = proc.stdout.split()
    if proc.returncode != 0 or len(parts) != 3 or parts[0] != "installed":
        return None
    return parts[1], parts[2]


def _apt_env() -> dict[str, str]:
    return {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}


def _install_dev_package() -> tuple[str, str]:
    found = installed_version()
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise Unavailable(f"{PACKAGE} is not installed and there is no apt-get (this driver "
                          "builds against Debian's librdkafka)")
    if os.geteuid() != 0:
        raise Unavailable(f"{PACKAGE} is not installed: sudo apt-get install {PACKAGE}")
    try:
        _run(["apt-get", "install", "-y", "-q", PACKAGE], env=_apt_env())
    except Unavailable:
        _run(["apt-get", "update", "-q"], env=_apt_env())
        _run(["apt-get", "install", "-y", "-q", PACKAGE], env=_apt_env())
    found = installed_version()
    if not found:
        raise Unavailable(f"apt-get installed {PACKAGE}, yet dpkg does not list it")
    return found


def _archive_of(version: str) -> tuple[str, str, str]:
    """(URI, suite, component) of the archive that serves librdkafka-dev ``version``."""
    out = _run(["apt-cache", "madison", PACKAGE], env=_apt_env())
    for line in out.splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) == 3 and cols[1] == version:
            words = cols[2].split()  # "http://deb.debian.org/debian bookworm/main amd64 ..."
            if len(words) >= 2 and "/" in words[1]:
                suite, component = words[1].split("/", 1)
                return words[0], suite, component
    raise Unavailable(f"apt-cache madison names no archive for {PACKAGE} {version}: {out!r}")


def _fetch_source(package: str, version: str, into: Path) -> Path:
    """Download and unpack the Debian source package; return its source tree."""
    uri, suite, component = _archive_of(version)
    apt = WORK / "apt"
    (apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt / "sources.list.d").mkdir(exist_ok=True)
    keyring = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
    signed = f"[signed-by={keyring}] " if keyring.exists() else ""
    (apt / "sources.list").write_text(f"deb-src {signed}{uri} {suite} {component}\n")
    options = [
        "-o", f"Dir::Etc::sourcelist={apt / 'sources.list'}",
        "-o", f"Dir::Etc::sourceparts={apt / 'sources.list.d'}",
        "-o", f"Dir::State::Lists={apt / 'lists'}",
        "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=",
        "-o", "APT::Get::List-Cleanup=0", "-q",
    ]
    if os.geteuid() == 0:
        options += ["-o", "APT::Sandbox::User=root"]
    _run(["apt-get", *options, "update"], env=_apt_env())
    downloads = into / "download"
    shutil.rmtree(downloads, ignore_errors=True)
    downloads.mkdir(parents=True)
    _run(["apt-get", *options, "source", "--download-only", f"{package}={version}"],
         cwd=downloads, env=_apt_env())
    tree = into / "src"
    shutil.rmtree(tree, ignore_errors=True)
    dsc = next(downloads.glob("*.dsc"), None)
    if dsc is not None and shutil.which("dpkg-source"):
        _run(["dpkg-source", "--no-check", "-x", str(dsc), str(tree)], cwd=downloads)
    else:
        orig = next(downloads.glob("*.orig.tar.*"), None)
        if orig is None:
            raise Unavailable(f"apt-get source left no upstream tarball in {downloads}")
        tree.mkdir()
        _run(["tar", "-xf", str(orig), "-C", str(tree), "--strip-components=1"])
    return tree


@contextmanager
def _locked() -> Iterator[None]:
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def built() -> dict[str, Any] | None:
    """The build record when the binary is built against the installed librdkafka-dev."""
    if not BINARY.exists() or not RECORD.exists():
        return None
    record: dict[str, Any] = json.loads(RECORD.read_text())
    found = installed_version()
    if not found or record.get("version") != found[1] or "linked" not in record:
        return None
    return record


def describe() -> dict[str, Any]:
    """The build record and the library the tool runs with; raises Unavailable."""
    record = ensure_built()
    return {**record, "runtime": LIBRARY, "library": library_version()}


def ensure_built(log: Any = None) -> dict[str, Any]:
    """Build rdkafka_performance if needed; return its build record. Raises Unavailable."""
    with _locked():
        record = built()
        if record:
            return record
        if shutil.which("gcc") is None:
            raise Unavailable("no C compiler (gcc) to build rdkafka_performance")
        if log:
            log("building rdkafka_performance from Debian's librdkafka source package")
        started = time.monotonic()
        package, version = _install_dev_package()
        tree = _fetch_source(package, version, WORK)
        _run(["./configure", "--no-download", "--disable-ssl", "--disable-gssapi",
              "--disable-curl", "--disable-zstd", "--disable-zlib", "--disable-lz4-ext"],
             cwd=tree)
        libs = ["-lrdkafka"]
        if shutil.which("pkg-config"):
            libs = _run(["pkg-config", "--libs", "rdkafka"]).split() or libs
        tmp = BINARY.with_suffix(".tmp")
        _run(["gcc", "-O2", "-I/usr/include/librdkafka", f"-I{tree / 'src'}", "-o", str(tmp),
              str(tree / "examples" / "rdkafka_performance.c"), *libs, "-lpthread", "-lm"])
        tmp.replace(BINARY)
        record = {"version": version, "package": package,
                  "source": f"Debian source package {package} {version}",
                  "linked": library_version("debian"),
                  "build_s": round(time.monotonic() - started, 1)}
        RECORD.write_text(json.dumps(record, indent=1))
        return record


def _wheel_library() -> Path:
    """confluent-kafka's own librdkafka (raises Unavailable where the wheel has none)."""
    try:
        import confluent_kafka
    except ImportError as exc:
        raise Unavailable("confluent-kafka is not installed") from exc
    libs = Path(confluent_kafka.__file__).resolve().parents[1] / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka*.so*"))
    if not found:
        raise Unavailable(f"confluent-kafka ships no librdkafka in {libs}")
    return found[0]


def tool_env(library: str | None = None) -> dict[str, str]:
    """The environment that makes the tool load ``library`` (default ``LIBRARY``)."""
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    if (library or LIBRARY) == "confluent-kafka":
        wheel = _wheel_library()
        LIB_DIR.mkdir(parents=True, exist_ok=True)
        link = LIB_DIR / "librdkafka.so.1"
        if not link.is_symlink() or link.resolve() != wheel:
            tmp = LIB_DIR / "librdkafka.so.1.tmp"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(wheel)
            tmp.replace(link)
        env["LD_LIBRARY_PATH"] = str(LIB_DIR)
    return env


def library_version(library: str | None = None) -> str:
    """The librdkafka version the tool runs with (it prints it in its usage text)."""
    proc = subprocess.run([str(BINARY), "-h"], capture_output=True, text=True,
                          env=tool_env(library))
    found = re.search(r"librdkafka version (\S+)", proc.stdout + proc.stderr)
    return found.group(1) if found else "?"


def available() -> str | None:
    """None when the tool is built (building it now if needed) and its library is there,
    else why it cannot run."""
    try:
        ensure_built()
        tool_env()
    except (Unavailable, OSError, subprocess.TimeoutExpired) as exc:
        return f"rdkafka_performance cannot run: {exc}"
    return None


# -- output -----------------------------------------------------------------------------------
_PRODUCED = re.compile(
    r"^% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset (-?\d+), "
    r"(\d+) failed\) in (\d+)ms: (\d+) msgs/s and ([\d.]+) MB/s, (\d+) produce failures, "
    r"(-?\d+) in queue, (\S+) compression$", re.MULTILINE)
_CONSUMED = re.compile(
    r"^% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms: (\d+) msgs/s \(([\d.]+) MB/s\)",
    re.MULTILINE)


def parse_produce(text: str) -> dict[str, Any]:
    """Figures of the last producer summary line in ``text``; raises ToolFailed."""
    found = _PRODUCED.findall(text)
    if not found:
        raise ToolFailed(f"rdkafka_performance printed no producer summary:\n{text[-2000:]}")
    (produced, nbytes, delivered, _offset, failed, ms, rate, mbps, backpressure, queued,
     _codec) = found[-1]
    return {"records": int(delivered), "produced": int(produced), "bytes": int(nbytes),
            "failed": int(failed), "in_queue": int(queued), "seconds": int(ms) / 1000,
            "records_per_s": float(rate), "mb_per_s": float(mbps),
            "backpressure": int(backpressure)}


def parse_consume(text: str) -> dict[str, Any]:
    """Figures of the last consumer summary line in ``text``; raises ToolFailed."""
    found = _CONSUMED.findall(text)
    if not found:
        raise ToolFailed(f"rdkafka_performance printed no consumer summary:\n{text[-2000:]}")
    records, nbytes, ms, rate, mbps = found[-1]
    return {"records": int(records), "bytes": int(nbytes), "seconds": int(ms) / 1000,
            "records_per_s": float(rate), "mb_per_s": float(mbps)}


def _progress(line: str) -> int | None:
    """The delivered (producer) or consumed count on a summary line, else None."""
    if found := _PRODUCED.match(line):
        return int(found.group(3))
    if found := _CONSUMED.match(line):
        return int(found.group(1))
    return None


# -- runs -------------------------------------------------------------------------------------
@dataclass
class ToolRun:
    output: str
    returncode: int
    wall_s: float
    cpu_s: float
    command: list[str] = field(default_factory=list)


def run_tool(args: list[str], timeout: float = 1800.0, stall_s: float = STALL_S,
             cpus: set[int] | None = None) -> ToolRun:
    """Run the tool with ``args``; its output, exit code, wall and CPU seconds.

    Killed (ToolFailed) when the count on its summary lines has not moved for ``stall_s``
    seconds or after ``timeout``. ``cpus`` pins it (and every thread it starts) to those CPUs.
    """
    # stdout is a pipe: stdio would buffer the summary lines until exit; stdbuf (coreutils)
    # makes it line-buffered so that a stall is seen while it happens.
    stdbuf = shutil.which("stdbuf")
    cmd = [*([stdbuf, "-oL"] if stdbuf else []), str(BINARY), *args]
    lines: list[str] = []
    moved = [time.monotonic(), -1]  # when the count last moved, and the count

    def read(stream: Any) -> None:
        for line in stream:
            lines.append(line)
            count = _progress(line.rstrip("\n"))
            if count is not None and count != moved[1]:
                moved[:] = [time.monotonic(), count]

    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, errors="replace",
                            env=tool_env(),
                            preexec_fn=pin if cpus else None)
    reader = threading.Thread(target=read, args=(proc.stdout,), daemon=True)
    reader.start()
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            why = ("timed out" if now - started > timeout else
                   "stalled" if now - float(moved[0]) > stall_s else "")
            if why:
                proc.kill()
                os.wait4(proc.pid, 0)
                reader.join(5)
                raise ToolFailed(f"rdkafka_performance {why} at {max(int(moved[1]), 0)} "
                                 f"records:\n{''.join(lines)[-2000:]}")
            time.sleep(0.02)
    except BaseException:
        if proc.poll() is None:  # interrupted: do not leave the tool running
            proc.kill()
            proc.wait()
        raise
    reader.join(10)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ToolRun("".join(lines), proc.returncode, time.monotonic() - started,
                   usage.ru_utime + usage.ru_stime, cmd)


def _conf_args(conf: dict[str, str]) -> list[str]:
    return [arg for key, value in conf.items() for arg in ("-X", f"{key}={value}")]


def pattern(size: int) -> str:
    """The payload of every record: ``size`` random hex digits (the tool repeats ``-m``)."""
    return secrets.token_hex(size // 2 + 1)[:max(size, 1)]


def produce(bootstrap: str, topic: str, records: int, size: int, acks: str = "1",
            codec: str = "none", cpus: set[int] | None = None,
            timeout: float = 1800.0) -> dict[str, Any]:
    """Produce ``records`` records of ``size`` bytes to every partition of ``topic``.

    No ``-p``: the tool produces to the unassigned partition, so librdkafka's partitioner
    spreads records (no key: sticky random, a new partition every
    ``sticky.partitioning.linger.ms`` of 10 ms).
    """
    run = run_tool(["-P", "-b", bootstrap, "-t", topic, "-s", str(size), "-c", str(records),
                    "-a", acks, "-z", codec, "-m", pattern(size), *_conf_args(PRODUCER_CONF)],
                   timeout=timeout, cpus=cpus)
    out = parse_produce(run.output)
    if run.returncode != 0 or out["records"] != records or out["failed"]:
        raise ToolFailed(f"rdkafka_performance delivered {out['records']} of {records} records "
                         f"({out['failed']} failed, exit {run.returncode}):\n"
                         f"{run.output[-2000:]}")
    return {**out, "driver_cpu_s": run.cpu_s, "driver_wall_s": run.wall_s}


def consume(bootstrap: str, topic: str, records: int, partitions: int,
            cpus: set[int] | None = None, timeout: float = 1800.0) -> dict[str, Any]:
    """Consume ``records`` records from the start of partitions ``0..partitions-1``.

    The tool stops once it has received ``records`` records (it counts them itself); the
    run fails if fewer arrive before it stalls. It starts at offset 0 (each topic is
    fresh), not at "beginning": librdkafka would look each partition's start up with
    ListOffsets first and fetch the partitions it already knows meanwhile, and when those
    have no records the broker holds that fetch for `fetch.wait.max.ms` (500 ms, on every
    broker), which on 1,000 partitions split the runs between two modes three times apart.
    """
    parts = [arg for p in range(partitions) for arg in ("-p", str(p))]
    run = run_tool(["-C", "-b", bootstrap, "-t", topic, *parts, "-o", "0",
                    "-c", str(records), *_conf_args(CONSUMER_CONF)], timeout=timeout, cpus=cpus)
    out = parse_consume(run.output)
    if run.returncode != 0 or out["records"] < records:
        raise ToolFailed(f"rdkafka_performance consumed {out['records']} of {records} records "
                         f"(exit {run.returncode}):\n{run.output[-2000:]}")
    return {**out, "driver_cpu_s": run.cpu_s, "driver_wall_s": run.wall_s}


def main(argv: list[str]) -> int:
    if argv[:1] != ["build"]:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    try:
        ensure_built(log=print)
        record = describe()
    except Unavailable as exc:
        print(f"rdkafka_performance cannot be built: {exc}", file=sys.stderr)
        return 1
    print(f"{BINARY}: from the {record['source']}, linked with librdkafka "
          f"{record['linked']}, runs with librdkafka {record['library']} ({record['runtime']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
