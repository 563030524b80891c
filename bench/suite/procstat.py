"""CPU seconds and resident memory of a process, read from ``/proc/<pid>``.

``/proc/<pid>/stat`` fields 14 and 15 (utime, stime) count every thread of the process
(the JVM's GC and I/O threads, Odradek's worker threads) in clock ticks. Children are not
included: each broker here is one process (Kafka's JVM is started directly, not through a
shell). A process that has exited reads as ``None``.
"""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds used so far by every thread of ``pid``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory(pid: int) -> dict[str, int] | None:
    """Resident memory of ``pid`` in bytes: ``rss`` and its parts ``anon`` and ``file``.

    ``rss`` is what ``ps`` shows. ``file`` counts page-cache pages the process has mapped
    and touched (Odradek's mmap'd segments and indexes, the JVM's jars); those pages belong
    to the page cache and are shared, so ``anon`` (heaps, buffers) is the process's own
    memory. From ``/proc/<pid>/status`` (``VmRSS``, ``RssAnon``, ``RssFile``, in kB).
    """
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kb = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            kb[key] = int(value.split()[0]) * 1024
    return {"rss": kb.get("VmRSS", 0), "anon": kb.get("RssAnon", 0), "file": kb.get("RssFile", 0)}
