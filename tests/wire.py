"""A minimal Kafka client over our own codecs, for tests that need exact requests.

Real clients are the judge of features; this helper is for what they cannot express:
a given API version, a malformed field, a request a client would never send.
"""

from __future__ import annotations

import struct
from typing import Any

import trio

from protocol import frames


class WireClient:
    def __init__(self, stream: trio.SocketStream, client_id: str = "odradek-tests") -> None:
        self._stream = stream
        self._client_id = client_id
        self._correlation_id = 0
        self._buf = bytearray()

    @classmethod
    async def connect(cls, host: str, port: int) -> WireClient:
        return cls(await trio.open_tcp_stream(host, port))

    async def send(self, api_key: int, api_version: int, body: Any) -> int:
        self._correlation_id += 1
        chunks = frames.encode_request(api_key, api_version, self._correlation_id,
                                       self._client_id, body)
        await self._stream.send_all(frames.join_chunks(chunks))
        return self._correlation_id

    async def receive(self, api_key: int, api_version: int) -> tuple[int, Any]:
        while len(self._buf) < 4:
            self._buf += await self._receive_some()
        size = struct.unpack_from(">i", self._buf)[0]
        while len(self._buf) < 4 + size:
            self._buf += await self._receive_some()
        frame = bytes(self._buf[4:4 + size])
        del self._buf[:4 + size]
        return frames.decode_response(frame, api_key, api_version)

    async def request(self, api_key: int, api_version: int, body: Any) -> Any:
        """Send one request and return the decoded response body."""
        correlation_id = await self.send(api_key, api_version, body)
        got, response = await self.receive(api_key, api_version)
        assert got == correlation_id, (got, correlation_id)
        return response

    async def _receive_some(self) -> bytes:
        data = await self._stream.receive_some(1 << 16)
        if not data:
            raise trio.BrokenResourceError("broker closed the connection")
        return data

    async def aclose(self) -> None:
        await self._stream.aclose()
