"""The plan of a run (which steps, how big, how long) and how each step runs on a broker.

How this works
--------------
A ``Unit`` is a few ``Step``s that share a topic: e.g. produce 1M records of 1 KB, then
consume them, then delete the topic. ``plan()`` lists the units for the chosen workloads
and sizes (``FULL`` or ``QUICK``); ``run_unit()`` runs one on a started broker and yields
each step's figures as soon as it has them. A step that fails yields its error, and the
steps after it in the unit (which need its records) fail with it.

Each step is measured the same way (``measure``): the broker's CPU seconds (all its
threads, ``/proc/<pid>/stat``) before and after the driver runs, the broker's RSS after it,
and the records the driver itself produced or consumed (never a high watermark), giving
records/s, MB/s (10^6 bytes), broker CPU microseconds per record and CPU seconds per GB.

Drivers (each figure records which one drove it):

- ``rdkafka_performance`` (``NATIVE``), librdkafka's own C load generator
  (``rdkafka_perf``), drives the throughput steps: record sizes, partitions, compression,
  acks, produce+consume, idle connections and the start-up write.
- Kafka's own perf tools (``JAVA``, ``java_tools``) drive the same record sizes as a second
  column (``java/...``) and the closed-loop ``EndToEndLatency``; they are the first fallback
  for the throughput steps.
- confluent-kafka (``RDKAFKA``, ``rdkafka_driver``) drives its own "client" steps, the group
  of three consumers, the fixed-rate latency steps, and is the last fallback.

A short check before the first unit (``driver_check``) runs each native driver against the
broker; one that cannot talk to it is skipped with the reason, which the report shows.

Producer settings for the throughput steps: ``acks`` and ``compression.type`` as the step
says; rdkafka_performance with librdkafka's batching defaults (``rdkafka_perf.PRODUCER_CONF``);
the Java producer with its defaults and ``batch.size=524288`` (its 16 KiB default would
send each 10-KB record alone).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from . import java_tools, procstat, rdkafka_driver, rdkafka_perf, wire
from .brokers import Broker

NATIVE = "rdkafka_performance"
JAVA = "kafka-perf (Java)"
RDKAFKA = "confluent-kafka"
# The throughput steps use the first usable driver of these.
PREFERRED = (NATIVE, JAVA, RDKAFKA)
JAVA_BATCH = "524288"


@dataclass(frozen=True)
class Sizes:
    n100: int  # records of 100 B (the RSS goal wants 10M)
    n1k: int
    n10k: int
    nvar: int  # 1-KB records in the partition / compression / acks / group variants
    rd100: int  # the second-column steps: confluent-kafka ("client") and Java ("java")
    rd1k: int
    rd10k: int
    latency_s: float  # measured seconds at each fixed rate (after 1 s of warm-up)
    e2e_records: int  # EndToEndLatency round trips
    idle: int  # idle connections
    startup_bytes: int  # log size for the start-up step
    warmup: int  # 100-B records produced and consumed before the first step, not measured


FULL = Sizes(n100=10_000_000, n1k=1_000_000, n10k=100_000, nvar=300_000, rd100=1_000_000,
             rd1k=300_000, rd10k=30_000, latency_s=10.0, e2e_records=2000, idle=1000,
             startup_bytes=10 * 10**9, warmup=1_000_000)
QUICK = Sizes(n100=100_000, n1k=20_000, n10k=2_000, nvar=10_000, rd100=20_000, rd1k=5_000,
              rd10k=1_000, latency_s=1.0, e2e_records=50, idle=50, startup_bytes=50 * 10**6,
              warmup=10_000)



def scaled(sizes: Sizes, factor: float) -> Sizes:
    """``sizes`` with every count, duration and the start-up log scaled by ``factor``."""
    return Sizes(**{k: (max(1, round(v * factor)) if k != "idle" else v)
                    if isinstance(v, int) else max(1.0, v * factor)
                    for k, v in dataclasses.asdict(sizes).items()})


RATES = (500, 2000, 20000)
WORKLOADS = ("size", "java", "client", "partitions", "compression", "acks", "mixed", "group",
             "idle", "latency", "startup")


@dataclass(frozen=True)
class Step:
    id: str  # "size/100/produce"
    phase: str  # produce | consume | produce+consume | group | latency | e2e
    records: int = 0
    size: int = 0
    estimate_s: float = 5.0


@dataclass
class Context:
    broker: Broker
    sizes: Sizes
    tag: str  # unique per broker and repeat, for topic names
    # Drivers that cannot run against this broker (driver label -> why not).
    unusable: dict[str, str] = field(default_factory=dict)
    admin: AdminClient | None = None

    def driver(self) -> str:
        """The preferred usable driver for the throughput steps."""
        return next(d for d in PREFERRED if d not in self.unusable)

    def client(self) -> AdminClient:
        if self.admin is None:
            # log_level 2: no librdkafka lines on stderr when a broker is stopped on purpose.
            self.admin = AdminClient({"bootstrap.servers": self.broker.bootstrap,
                                      "log_level": 2})
        return self.admin


@dataclass
class Unit:
    id: str
    steps: list[Step]
    run: Callable[[Context], Generator[dict[str, Any], None, None]] = field(repr=False)

    @property
    def estimate_s(self) -> float:
        return sum(s.estimate_s for s in self.steps)


# -- estimates (seconds) on the 2-core machine this was written on ----------------------------
def _estimate(phase: str, records: int, size: int, driver: str = NATIVE) -> float:
    """Seconds for a step at Odradek's pace, with the start of the driver and topic.

    rdkafka_performance went at 1-2M records/s of 100 B and 300-1,000 MB/s of larger records
    on the development machine; the Java tools and the Python loop are several times slower.
    """
    nbytes = records * size
    if driver == NATIVE:
        if phase == "produce":
            return 2 + max(nbytes / 250e6, records * 1e-6)
        return 2 + max(nbytes / 400e6, records * 0.5e-6)
    start = {JAVA: 4.0 if phase == "produce" else 8.0}.get(driver, 0.0)  # JVM, group join
    if phase == "produce":
        return start + 3 + max(nbytes / 60e6, records * 4.5e-6)
    return start + 3 + max(nbytes / 250e6, records * 1e-6)


# -- topic administration -----------------------------------------------------------------
def create_topic(ctx: Context, name: str, partitions: int) -> None:
    futures = ctx.client().create_topics([NewTopic(name, partitions, 1)], operation_timeout=60)
    futures[name].result(120)
    deadline = time.monotonic() + 60
    while wire.end_offsets(ctx.broker.host, ctx.broker.port, name, partitions) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"topic {name} has no leader after 60 s")
        time.sleep(0.05)


def delete_topic(ctx: Context, name: str) -> None:
    try:
        ctx.client().delete_topics([name], operation_timeout=30)[name].result(60)
    except Exception:  # noqa: BLE001 - best effort: a leftover topic only costs space
        pass


# -- drivers --------------------------------------------------------------------------------
def produce(ctx: Context, topic: str, records: int, size: int, codec: str = "none",
            acks: str = "1", driver: str | None = None) -> dict[str, Any]:
    """Produce with ``driver``, by default the first usable one of ``PREFERRED``."""
    driver = driver or ctx.driver()
    if driver in ctx.unusable:
        raise RuntimeError(f"{driver} cannot run here: {ctx.unusable[driver]}")
    if driver == NATIVE:
        out = rdkafka_perf.produce(ctx.broker.bootstrap, topic, records, size, acks, codec)
        return {**out, "driver": NATIVE}
    if driver == JAVA:
        props = {"acks": acks, "compression.type": codec, "batch.size": JAVA_BATCH}
        out = java_tools.producer_perf(ctx.broker.bootstrap, topic, records, size, props)
        return {**out, "driver": JAVA}
    return rd_produce(ctx, topic, records, size, codec, acks)


def rd_produce(ctx: Context, topic: str, records: int, size: int, codec: str = "none",
               acks: str = "1") -> dict[str, Any]:
    out = rdkafka_driver.run({"mode": "produce", "bootstrap": ctx.broker.bootstrap,
                              "topic": topic, "records": records, "size": size,
                              "codec": codec, "acks": acks})
    return {**out, "records_per_s": records / out["seconds"],
            "mb_per_s": records * size / out["seconds"] / 1e6, "driver": RDKAFKA}


def consume(ctx: Context, topic: str, records: int, size: int, partitions: int,
            driver: str | None = None) -> dict[str, Any]:
    """Consume ``records`` from the start of every partition, counting them in the driver."""
    driver = driver or ctx.driver()
    if driver in ctx.unusable:
        raise RuntimeError(f"{driver} cannot run here: {ctx.unusable[driver]}")
    if driver == NATIVE:
        out = rdkafka_perf.consume(ctx.broker.bootstrap, topic, records, partitions)
        return {**out, "driver": NATIVE}
    if driver == JAVA:
        group = f"perf-{topic}"
        out = java_tools.consumer_perf(ctx.broker.bootstrap, topic, records, group)
        return {**out, "driver": JAVA}
    return rd_consume(ctx, topic, records, size, partitions)


def rd_consume(ctx: Context, topic: str, records: int, size: int, partitions: int
               ) -> dict[str, Any]:
    out = rdkafka_driver.run({"mode": "consume", "bootstrap": ctx.broker.bootstrap,
                              "topic": topic, "records": records, "partitions": partitions})
    return {**out, "records_per_s": out["records"] / out["seconds"],
            "mb_per_s": out["bytes"] / out["seconds"] / 1e6, "driver": RDKAFKA}


def measure(ctx: Context, size: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a driver and add the broker's CPU and memory figures to what it returns."""
    pid = ctx.broker.pid
    cpu0 = procstat.cpu_seconds(pid)
    out = run()
    cpu1 = procstat.cpu_seconds(pid)
    mem = procstat.memory(pid)
    if cpu0 is None or cpu1 is None or mem is None:
        raise RuntimeError(f"{ctx.broker.name} exited during the step")
    records = out["records"]
    cpu = cpu1 - cpu0
    out.update(broker_cpu_s=cpu, rss_mb=mem["rss"] / 1e6, anon_mb=mem["anon"] / 1e6)
    if records:
        out["cpu_us_per_record"] = cpu / records * 1e6
        if size:
            out["cpu_s_per_gb"] = cpu / (records * size / 1e9)
    return out


# -- units ----------------------------------------------------------------------------------
def _produce_consume_unit(uid: str, records: int, size: int, partitions: int,
                          codec: str = "none", acks: str = "1", consume_too: bool = True,
                          driver: str | None = None, idle: int = 0) -> Unit:
    """Produce ``records`` to a fresh topic, then (``consume_too``) read them all back.

    ``driver`` None: the preferred usable driver; else that driver or the step fails.
    """
    pace = driver or NATIVE
    steps = []
    if idle:
        # The same produce just before, without idle connections: the control that tells
        # what the connections cost from what the broker's (and the machine's) state costs.
        steps.append(Step(f"{uid}/control", "produce", records, size,
                          _estimate("produce", records, size, pace)))
    steps.append(Step(f"{uid}/produce", "produce", records, size,
                      _estimate("produce", records, size, pace) + idle * 0.003))
    if consume_too:
        steps.append(Step(f"{uid}/consume", "consume", records, size,
                          _estimate("consume", records, size, pace)))

    def run(ctx: Context) -> Generator[dict[str, Any], None, None]:
        if driver in ctx.unusable:
            raise RuntimeError(f"{driver} cannot run here: {ctx.unusable[driver]}")
        topic = f"{uid.replace('/', '-')}-{ctx.tag}"
        if idle:
            control = f"{topic}-control"
            create_topic(ctx, control, partitions)
            try:
                yield measure(ctx, size, lambda: produce(ctx, control, records, size, codec,
                                                         acks, driver))
            finally:
                delete_topic(ctx, control)
        create_topic(ctx, topic, partitions)
        try:
            held = (wire.hold_idle_connections(ctx.broker.host, ctx.broker.port, idle)
                    if idle else [])
            try:
                out = measure(ctx, size, lambda: produce(ctx, topic, records, size, codec, acks,
                                                         driver))
                if idle:
                    out["idle_connections"] = len(held)
            finally:
                wire.close_all(held)
            yield out
            if consume_too:
                yield measure(ctx, size, lambda: consume(ctx, topic, records, size, partitions,
                                                         driver))
        finally:
            delete_topic(ctx, topic)

    return Unit(uid, steps, run)


def _mixed_unit(records: int, size: int, partitions: int) -> Unit:
    """Producer and consumer started together on an empty topic."""
    uid = "mixed"
    step = Step(f"{uid}/produce+consume", "produce+consume", records, size,
                _estimate("produce", records, size) + 3)

    def run(ctx: Context) -> Generator[dict[str, Any], None, None]:
        topic = f"mixed-{ctx.tag}"
        create_topic(ctx, topic, partitions)
        results: dict[str, Any] = {}

        def reader() -> None:
            try:
                results["consume"] = consume(ctx, topic, records, size, partitions)
            except Exception as exc:  # noqa: BLE001 - reported below
                results["consume_error"] = exc

        def both() -> dict[str, Any]:
            thread = threading.Thread(target=reader)
            thread.start()
            try:
                produced = produce(ctx, topic, records, size)
            finally:
                thread.join()
            if "consume_error" in results:
                raise results["consume_error"]
            got = results["consume"]
            return {"records": records, "records_per_s": produced["records_per_s"],
                    "mb_per_s": produced["mb_per_s"],
                    "consume_records_per_s": got["records_per_s"],
                    "consume_mb_per_s": got["mb_per_s"], "driver": produced["driver"],
                    "driver_cpu_s": produced["driver_cpu_s"] + got["driver_cpu_s"]}

        try:
            yield measure(ctx, size, both)
        finally:
            delete_topic(ctx, topic)

    return Unit(uid, [step], run)


def _group_unit(records: int, size: int, partitions: int) -> Unit:
    uid = "group"
    step = Step(f"{uid}/3 consumers", "group", records, size,
                _estimate("produce", records, size) + _estimate("consume", records, size) + 6)

    def run(ctx: Context) -> Generator[dict[str, Any], None, None]:
        topic = f"group-{ctx.tag}"
        create_topic(ctx, topic, partitions)
        try:
            rd_produce(ctx, topic, records, size)

            def members() -> dict[str, Any]:
                out = rdkafka_driver.run({"mode": "group", "bootstrap": ctx.broker.bootstrap,
                                          "topic": topic, "records": records,
                                          "group": f"g-{topic}", "members": 3})
                seconds = max(out["seconds"], 1e-6)
                return {**out, "records_per_s": out["records"] / seconds,
                        "mb_per_s": out["records"] * size / seconds / 1e6,
                        "join_ms": out["join_s"] * 1000, "driver": RDKAFKA}

            yield measure(ctx, size, members)
        finally:
            delete_topic(ctx, topic)

    return Unit(uid, [step], run)


def _latency_unit(rate: int, seconds: float, size: int = 100) -> Unit:
    uid = f"latency/{rate}"
    step = Step(f"{uid}/fixed rate", "latency", int(rate * seconds), size, seconds + 6)

    def run(ctx: Context) -> Generator[dict[str, Any], None, None]:
        topic = f"latency-{rate}-{ctx.tag}"
        create_topic(ctx, topic, 1)
        try:
            def fixed() -> dict[str, Any]:
                out = rdkafka_driver.run({"mode": "latency", "bootstrap": ctx.broker.bootstrap,
                                          "topic": topic, "rate": rate, "seconds": seconds,
                                          "size": size})
                return {**out, "driver": RDKAFKA}

            yield measure(ctx, size, fixed)
        finally:
            delete_topic(ctx, topic)

    return Unit(uid, [step], run)


def _e2e_unit(records: int, size: int = 100) -> Unit:
    uid = "latency/closed-loop"
    step = Step(f"{uid}/EndToEndLatency", "e2e", records, size, 6 + records * 0.004)

    def run(ctx: Context) -> Generator[dict[str, Any], None, None]:
        if JAVA in ctx.unusable:
            raise RuntimeError(f"Kafka's EndToEndLatency cannot run here: {ctx.unusable[JAVA]}")
        topic = f"e2e-{ctx.tag}"
        create_topic(ctx, topic, 1)
        try:
            def loop() -> dict[str, Any]:
                out = java_tools.end_to_end_latency(ctx.broker.bootstrap, topic, records, size)
                return {**out, "driver": JAVA}

            yield measure(ctx, size, loop)
        finally:
            delete_topic(ctx, topic)

    return Unit(uid, [step], run)


def plan(sizes: Sizes, workloads: set[str]) -> list[Unit]:
    """The units of one repetition on one broker (the start-up workload runs apart)."""
    units: list[Unit] = []
    families = {w.split("/")[0] for w in workloads}

    def want(family: str) -> bool:
        return family in families
    if want("size"):
        for size, n in ((100, sizes.n100), (1000, sizes.n1k), (10000, sizes.n10k)):
            units.append(_produce_consume_unit(f"size/{size}", n, size, 6))
    if want("client"):
        for size, n in ((100, sizes.rd100), (1000, sizes.rd1k), (10000, sizes.rd10k)):
            units.append(_produce_consume_unit(f"client/{size}", n, size, 6, driver=RDKAFKA))
    if want("java"):
        for size, n in ((100, sizes.rd100), (1000, sizes.rd1k), (10000, sizes.rd10k)):
            units.append(_produce_consume_unit(f"java/{size}", n, size, 6, driver=JAVA))
    if want("partitions"):
        for partitions in (1, 100, 1000):
            units.append(_produce_consume_unit(f"partitions/{partitions}", sizes.nvar, 1000,
                                               partitions))
    if want("compression"):
        for codec in ("lz4", "zstd"):
            units.append(_produce_consume_unit(f"compression/{codec}", sizes.nvar, 1000, 6,
                                               codec=codec))
    if want("acks"):
        units.append(_produce_consume_unit("acks/all", sizes.nvar, 1000, 6, acks="all",
                                           consume_too=False))
    if want("mixed"):
        units.append(_mixed_unit(sizes.nvar, 1000, 6))
    if want("group"):
        units.append(_group_unit(sizes.nvar, 1000, 6))
    if want("idle"):
        units.append(_produce_consume_unit("idle", sizes.nvar, 1000, 6,
                                           consume_too=False, idle=sizes.idle))
    if want("latency"):
        units.extend(_latency_unit(rate, sizes.latency_s) for rate in RATES)
        units.append(_e2e_unit(sizes.e2e_records))
    # A unit id ("size/1000") picks that unit alone; a family name ("size") picks them all.
    return [u for u in units if u.id.split("/")[0] in workloads or u.id in workloads]


def run_unit(ctx: Context, unit: Unit) -> Iterator[tuple[Step, dict[str, Any] | None, str]]:
    """Yield (step, figures, "") per step, or (step, None, error) for each one that failed."""
    runner = unit.run(ctx)
    for index, step in enumerate(unit.steps):
        try:
            figures = next(runner)
        except StopIteration:
            yield step, None, "the unit ended early"
            continue
        except Exception as exc:  # noqa: BLE001 - recorded in the report
            error = f"{type(exc).__name__}: {exc}".strip()
            for failed in unit.steps[index:]:
                yield failed, None, error
            return
        yield step, figures, ""
    runner.close()


def warm_up(ctx: Context) -> None:
    """Produce and consume ``sizes.warmup`` 100-B records with the preferred driver.

    Not measured: a fresh JVM runs Kafka's produce path interpreted until the JIT has
    compiled it (its first million records went several times slower than the next here),
    and the first step would otherwise measure that warm-up.
    """
    topic = f"warmup-{ctx.tag}"
    create_topic(ctx, topic, 6)
    try:
        produce(ctx, topic, ctx.sizes.warmup, 100)
        consume(ctx, topic, ctx.sizes.warmup, 100, 6)
    finally:
        delete_topic(ctx, topic)


def needs_java(units: list[Unit]) -> bool:
    """Whether a unit runs Kafka's Java tools whatever the preferred driver."""
    return any(u.id.startswith(("java/", "latency/closed-loop")) for u in units)


def driver_check(ctx: Context, java: bool = True) -> dict[str, str]:
    """The native drivers that cannot produce to this broker, each with the reason.

    Each produces 10 records to a fresh topic with short timeouts: a driver that cannot
    talk to the broker (Kafka's Java 4.4 client and Tansu, say) is found before any step.
    The Java tools (a JVM start, seconds) are checked when ``java`` is true or when
    rdkafka_performance is unusable (they are its fallback); otherwise they are marked
    "not needed by this run".
    """
    unusable: dict[str, str] = {}
    for driver in (NATIVE, JAVA):
        if driver == JAVA and not java and NATIVE not in unusable:
            unusable[JAVA] = "not needed by this run"
            continue
        why = rdkafka_perf.available() if driver == NATIVE else java_tools.available()
        if why:
            unusable[driver] = why
            continue
        topic = f"check-{driver.split()[0].replace('_', '-')}-{ctx.tag}"
        try:
            create_topic(ctx, topic, 1)
            if driver == NATIVE:
                run = rdkafka_perf.run_tool(
                    ["-P", "-b", ctx.broker.bootstrap, "-t", topic, "-s", "10", "-c", "10",
                     "-X", "message.timeout.ms=15000"], timeout=60, stall_s=30)
                out = rdkafka_perf.parse_produce(run.output)
                if run.returncode or out["records"] != 10:
                    raise rdkafka_perf.ToolFailed(f"delivered {out['records']} of 10 records:"
                                                  f"\n{run.output[-1000:]}")
            else:
                java_tools.producer_perf(ctx.broker.bootstrap, topic, 10, 10, {
                    "acks": "1", "max.block.ms": "15000", "delivery.timeout.ms": "15000",
                    "request.timeout.ms": "10000", "linger.ms": "0"}, timeout=60)
        except Exception as exc:  # noqa: BLE001 - the reason goes in the report
            lines = [line for line in str(exc).splitlines() if line.strip()]
            unusable[driver] = f"{driver} failed against this broker: {' / '.join(lines[:3])}"
        finally:
            delete_topic(ctx, topic)
    return unusable
