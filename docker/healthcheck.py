"""Container health check: one real ApiVersions (v3) request to the broker's first listener.

Exits 0 when the broker answers with error code NONE and a non-empty API list, 1 otherwise.
Standard library only, so it can run with any Python 3 (`python3 healthcheck.py [HOST:PORT]`).
Without an argument it reads the listener from `KAFKA_LISTENERS` (the image's config
variable), default `PLAINTEXT://:9092`; a wildcard or empty host means 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

API_VERSIONS = 18
VERSION = 3
CORRELATION_ID = 0x0DDAD3C


def target(argv: list[str], environ: dict[str, str]) -> tuple[str, int]:
    if len(argv) > 1:
        host, _, port = argv[1].rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)
    first = environ.get("KAFKA_LISTENERS", "PLAINTEXT://:9092").split(",")[0].strip()
    address = first.partition("://")[2]
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return host, int(port)


def compact_string(text: str) -> bytes:
    data = text.encode()
    return bytes([len(data) + 1]) + data  # short strings: a one-byte unsigned varint


def request() -> bytes:
    client_id = b"odradek-healthcheck"
    header = struct.pack(">hhih", API_VERSIONS, VERSION, CORRELATION_ID, len(client_id))
    header += client_id + b"\x00"  # request header v2: client id, then no tagged fields
    body = compact_string("odradek-healthcheck") + compact_string("1") + b"\x00"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return bytes(data)


def check(host: str, port: int, timeout_s: float = 4.0) -> str:
    """Send ApiVersions; return a one-line summary, or raise with the reason it failed."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(request())
        (size,) = struct.unpack(">i", read_exactly(sock, 4))
        frame = read_exactly(sock, size)
    # Response header v0 (ApiVersions always answers with it): correlation id.
    correlation_id, error_code = struct.unpack_from(">ih", frame)
    if correlation_id != CORRELATION_ID:
        raise ValueError(f"correlation id {correlation_id} != {CORRELATION_ID}")
    if error_code != 0:
        raise ValueError(f"ApiVersions error code {error_code}")
    count = frame[6] - 1  # compact array length (fewer than 127 APIs: one varint byte)
    if count <= 0:
        raise ValueError("no APIs advertised")
    return f"ok {host}:{port} apis={count}"


def main() -> int:
    host, port = target(sys.argv, dict(os.environ))
    try:
        print(check(host, port))
    except (OSError, ValueError, struct.error) as exc:
        print(f"unhealthy {host}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
