"""What the machine is, and what it can do at best: the limits the brokers are measured against.

Each limit is a throughput in MB/s (10^6 bytes per second) over ``size`` bytes:

- ``sendfile``: ``os.sendfile`` from a file already in the page cache to a loopback TCP
  socket, drained by a thread with ``recv_into`` (what a zero-copy fetch does at best).
- ``send``: ``socket.sendall`` of a 1 MiB buffer over loopback (a fetch that copies).
- ``write`` / ``write+fsync``: sequential 1 MiB ``os.write`` calls to a new file, without and
  with one ``fsync`` at the end (counted in the time).
- ``mmap copy`` / ``mmap copy+msync``: 1 MiB slice copies into a preallocated, memory-mapped
  file (what an mmap'd append does at best), without and with ``msync`` at the end.
- ``crc32c``: the ``crc32c`` package over 1 MiB buffers (every produced batch is checked).

A throw-away write comes first (the first write of a run pays for page reclaim).
Files are written in ``workdir`` (the file system the brokers' logs live on) and removed.
"""

from __future__ import annotations

import mmap
import os
import platform
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import crc32c

CHUNK = 1 << 20


def machine_info() -> dict[str, str]:
    """CPU model, cores, memory, kernel, Python and JDK versions, as text for the report."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "jdk": jdk_version(),
    }


def jdk_version() -> str:
    java = shutil.which("java")
    if not java:
        return "none"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    first = (out.stderr or out.stdout).splitlines()
    return first[0].strip() if first else "unknown"


def _timed(run: Callable[[], int]) -> float:
    started = time.perf_counter()
    nbytes = run()
    return nbytes / (time.perf_counter() - started) / 1e6


def _drain(listener: socket.socket, total: list[int]) -> None:
    conn, _ = listener.accept()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with conn:
        while True:
            n = conn.recv_into(view)
            if not n:
                break
            total[0] += n


def _loopback(send: Callable[[socket.socket], int]) -> float:
    """MB/s of ``send(sock)`` into a loopback connection drained by a thread."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        received = [0]
        thread = threading.Thread(target=_drain, args=(listener, received), daemon=True)
        thread.start()
        with socket.create_connection(listener.getsockname()) as sock:
            started = time.perf_counter()
            sent = send(sock)
            sock.shutdown(socket.SHUT_WR)
            thread.join()
            elapsed = time.perf_counter() - started
    if received[0] != sent:
        raise RuntimeError(f"loopback received {received[0]} of {sent} bytes")
    return sent / elapsed / 1e6


def sendfile_rate(path: Path, size: int) -> float:
    def send(sock: socket.socket) -> int:
        with open(path, "rb") as f:
            offset = 0
            while offset < size:
                offset += os.sendfile(sock.fileno(), f.fileno(), offset, size - offset)
        return size

    return _loopback(send)


def send_rate(size: int) -> float:
    buf = os.urandom(CHUNK)

    def send(sock: socket.socket) -> int:
        for _ in range(size // CHUNK):
            sock.sendall(buf)
        return size // CHUNK * CHUNK

    return _loopback(send)


def write_rate(path: Path, size: int, fsync: bool) -> float:
    buf = os.urandom(CHUNK)

    def run() -> int:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for _ in range(size // CHUNK):
                os.write(fd, buf)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        return size // CHUNK * CHUNK

    try:
        return _timed(run)
    finally:
        path.unlink(missing_ok=True)


def mmap_rate(path: Path, size: int, msync: bool) -> float:
    buf = os.urandom(CHUNK)
    total = size // CHUNK * CHUNK
    with open(path, "w+b") as f:
        f.truncate(total)
        with mmap.mmap(f.fileno(), total) as mm:

            def run() -> int:
                for pos in range(0, total, CHUNK):
                    mm[pos:pos + CHUNK] = buf
                if msync:
                    mm.flush()
                return total

            rate = _timed(run)
    path.unlink(missing_ok=True)
    return rate


def crc32c_rate(size: int) -> float:
    buf = os.urandom(CHUNK)

    def run() -> int:
        for _ in range(size // CHUNK):
            crc32c.crc32c(buf)
        return size // CHUNK * CHUNK

    return _timed(run)


def measure_limits(workdir: Path, size: int) -> dict[str, float]:
    """One measurement of every limit, in MB/s, over ``size`` bytes each."""
    workdir.mkdir(parents=True, exist_ok=True)
    cached = workdir / "limits-cached.bin"
    with open(cached, "wb") as out:
        for _ in range(size // CHUNK):
            out.write(os.urandom(CHUNK))
        out.flush()
        os.fsync(out.fileno())  # no dirty pages left to slow the write measurements down
    with open(cached, "rb") as f:  # read once so that sendfile reads from the page cache
        while f.read(8 * CHUNK):
            pass

    def clean(rate: Callable[[], float]) -> float:
        os.sync()  # start each disk measurement with no dirty pages of an earlier one
        return rate()

    target, mapped = workdir / "limits-write.bin", workdir / "limits-mmap.bin"
    # The first write of a run is slow while the kernel reclaims memory for the page
    # cache; a throw-away write of the same size puts every measurement after that.
    clean(lambda: write_rate(target, size, fsync=False))
    try:
        return {
            "sendfile": sendfile_rate(cached, size // CHUNK * CHUNK),
            "send": send_rate(size),
            "write": clean(lambda: write_rate(target, size, fsync=False)),
            "write+fsync": clean(lambda: write_rate(target, size, fsync=True)),
            "mmap copy": clean(lambda: mmap_rate(mapped, size, msync=False)),
            "mmap copy+msync": clean(lambda: mmap_rate(mapped, size, msync=True)),
            "crc32c": crc32c_rate(size),
        }
    finally:
        cached.unlink(missing_ok=True)
