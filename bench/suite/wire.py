"""Raw Kafka requests for readiness checks, and idle connections to hold open.

Standard library only, so a probe never depends on a client's reconnect back-off. Every
request here is a non-flexible version (request header v1, response header v0) that all
three brokers serve: ApiVersions v0, Metadata v1 (through ``apache_kafka.probe``) and
ListOffsets v1.
"""

from __future__ import annotations

import socket
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "compat" / "apache-kafka"))

from apache_kafka import _request, free_port, probe  # noqa: E402

__all__ = ["close_all", "end_offsets", "free_port", "hold_idle_connections", "probe"]


def end_offsets(host: str, port: int, topic: str, partitions: int,
                timeout: float = 2.0) -> list[int] | None:
    """The latest offset of each partition (ListOffsets v1, timestamp -1), or None.

    None when the broker does not answer or any partition answers with an error (a
    broker still loading its logs answers NOT_LEADER_OR_FOLLOWER or
    UNKNOWN_TOPIC_OR_PARTITION).
    """
    name = topic.encode()
    body = struct.pack(">iih", -1, 1, len(name)) + name + struct.pack(">i", partitions)
    for p in range(partitions):
        body += struct.pack(">iq", p, -1)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            resp = _request(sock, 2, 1, 7, body)
    except (OSError, struct.error):
        return None
    pos = 4  # correlation id
    offsets: dict[int, int] = {}
    (topics,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    for _ in range(topics):
        (n,) = struct.unpack_from(">h", resp, pos)
        pos += 2 + n
        (count,) = struct.unpack_from(">i", resp, pos)
        pos += 4
        for _ in range(count):
            partition, error, _ts, offset = struct.unpack_from(">ihqq", resp, pos)
            pos += 22
            if error:
                return None
            offsets[partition] = offset
    if len(offsets) != partitions:
        return None
    return [offsets[p] for p in range(partitions)]


def hold_idle_connections(host: str, port: int, count: int) -> list[socket.socket]:
    """Open ``count`` connections, each answered one ApiVersions v0, and return them open.

    The ApiVersions round trip makes each one a connection the broker has fully set up
    (as a client's first request does); then they stay silent. Close them with
    ``close_all``.
    """
    socks: list[socket.socket] = []
    try:
        for i in range(count):
            sock = socket.create_connection((host, port), timeout=30)
            socks.append(sock)
            _request(sock, 18, 0, i, b"")
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


