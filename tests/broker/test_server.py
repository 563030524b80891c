"""The server over real sockets: framing, ApiVersions, and bad input."""

from __future__ import annotations

import asyncio
import socket
import struct

import trio
from aiokafka.conn import create_conn

from broker.handlers import REGISTRY
from protocol import frames
from protocol.errors import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.api_versions_response import ApiVersionsResponse


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        data = sock.recv(n - len(out))
        if not data:
            raise ConnectionError(f"closed after {len(out)} of {n} bytes")
        out += data
    return out


def _roundtrip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        return _recv_exact(sock, size)


def _closed_by_peer(port: int, payload: bytes) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True


def _api_versions_request(version: int, correlation_id: int = 7) -> bytes:
    body = ApiVersionsRequest(client_software_name="odradek-tests", client_software_version="1.0")
    return frames.join_chunks(frames.encode_request(18, version, correlation_id, "t", body))


async def test_aiokafka_handshake_sees_exactly_the_registry(broker) -> None:
    async def handshake() -> dict[int, tuple[int, int]]:
        conn = await create_conn(broker.host, broker.port, request_timeout_ms=10000)
        try:
            return dict(conn._versions)
        finally:
            conn.close()

    seen = await trio.to_thread.run_sync(asyncio.run, handshake())
    assert seen == {k: (r.min_version, r.max_version) for k, r in REGISTRY.items()}


async def test_api_versions_every_version(broker) -> None:
    for version in range(0, 5):
        request = _api_versions_request(version)
        frame = await trio.to_thread.run_sync(_roundtrip, broker.port, request)
        correlation_id, body = frames.decode_response(frame, 18, version)
        assert correlation_id == 7
        assert isinstance(body, ApiVersionsResponse)
        assert body.error_code == ErrorCode.NONE
        assert {v.api_key for v in body.api_keys} == set(REGISTRY)


async def test_api_versions_from_the_future_gets_a_v0_unsupported_version(broker) -> None:
    request = bytearray(_api_versions_request(4, correlation_id=99))
    struct.pack_into(">h", request, 6, 42)  # api_version field of the header
    frame = await trio.to_thread.run_sync(_roundtrip, broker.port, bytes(request))
    correlation_id, body = frames.decode_response(frame, 18, 0)
    assert correlation_id == 99
    assert body.error_code == ErrorCode.UNSUPPORTED_VERSION
    assert [(v.api_key, v.min_version, v.max_version) for v in body.api_keys] == [(18, 0, 4)]


async def test_invalid_client_software_name_is_invalid_request(broker) -> None:
    body = ApiVersionsRequest(client_software_name="-bad name-", client_software_version="1")
    payload = frames.join_chunks(frames.encode_request(18, 3, 1, "t", body))
    frame = await trio.to_thread.run_sync(_roundtrip, broker.port, payload)
    _, response = frames.decode_response(frame, 18, 3)
    assert response.error_code == ErrorCode.INVALID_REQUEST


async def test_pipelined_requests_are_answered_in_order(broker) -> None:
    payload = b"".join(_api_versions_request(v % 5, correlation_id=v) for v in range(50))

    def run() -> list[int]:
        ids = []
        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
            sock.sendall(payload)
            for _ in range(50):
                size = struct.unpack(">i", _recv_exact(sock, 4))[0]
                ids.append(struct.unpack(">i", _recv_exact(sock, size)[:4])[0])
        return ids

    assert await trio.to_thread.run_sync(run) == list(range(50))


BAD_INPUTS = {
    "garbage": b"\xde\xad\xbe\xef" * 8,
    "oversized": struct.pack(">i", 200 * 1024 * 1024) + b"x" * 16,
    "negative size": struct.pack(">i", -1) + b"x" * 16,
    "unknown api key": struct.pack(">ihhi", 10, 9999, 0, 5) + b"\xff\xff",
    "unknown version": struct.pack(">ihhi", 10, 3, 999, 5) + b"\xff\xff",
    "undecodable body": struct.pack(">ihhi", 10, 18, 3, 5) + b"\x00\x01",
}


async def test_bad_input_closes_only_that_connection(broker) -> None:
    for name, payload in BAD_INPUTS.items():
        closed = await trio.to_thread.run_sync(_closed_by_peer, broker.port, payload)
        assert closed, name
        # Everyone else is still served.
        frame = await trio.to_thread.run_sync(_roundtrip, broker.port, _api_versions_request(3))
        assert frames.decode_response(frame, 18, 3)[1].error_code == ErrorCode.NONE


async def test_a_client_that_disconnects_mid_frame_does_not_disturb_others(broker) -> None:
    def half_frame() -> None:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
            sock.sendall(_api_versions_request(3)[:7])

    await trio.to_thread.run_sync(half_frame)
    frame = await trio.to_thread.run_sync(_roundtrip, broker.port, _api_versions_request(2))
    assert frames.decode_response(frame, 18, 2)[1].error_code == ErrorCode.NONE
