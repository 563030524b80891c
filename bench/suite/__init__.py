"""The benchmark suite behind ``bench/run.py``: Odradek against peer brokers and the machine.

One module per concern:

- ``procstat``: a process's CPU seconds and RSS from ``/proc``.
- ``machine``: what the machine is (CPU, kernel, Python, JDK) and its limits (loopback
  ``sendfile`` and ``send``, sequential write and mmap copy with and without fsync, crc32c).
- ``brokers``: start, stop, SIGKILL and restart Odradek, Tansu and Apache Kafka as
  subprocesses on 127.0.0.1, and create or delete topics on them.
- ``wire``: raw readiness probes (ApiVersions, Metadata, ListOffsets) and idle connections.
- ``rdkafka_perf``, ``java_tools`` and ``rdkafka_driver``: the load drivers: librdkafka's own
  C load generator ``rdkafka_performance`` (built from Debian's librdkafka source; the native
  driver of the throughput steps), Kafka's perf tools (a second, JVM column; end-to-end
  latency) and confluent-kafka (librdkafka behind a Python loop) in a child process.
- ``workloads``: the plan (which steps, sizes and estimates) and how each step runs.
- ``progress``, ``stats``, ``report``, ``plots``: ETA lines, median/min/max, the Markdown report
  and its PNGs.
"""
