"""Request and response frames: header + body, with the 4-byte size prefix.

A Kafka frame on the wire is ``int32 size`` followed by `size` bytes: a header and a body.
`decode_request` takes the bytes *after* the size prefix; the encoders return chunks that
*include* it (the first four bytes of the first chunk). Chunks are `bytes`, or records objects
(file-slice placeholders) passed through untouched for the broker to `sendfile`.

Header versions: a request uses RequestHeader v2 when its API version is flexible, else v1
(v0 exists only for ControlledShutdown v0, which is not generated). A response uses
ResponseHeader v1 when flexible, else v0, except ApiVersions, whose response header is always
v0 so that a client that sent a too-new version can still read the answer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from protocol.errors import ProtocolError, UnsupportedVersionError
from protocol.messages import REQUESTS, RESPONSES
from protocol.messages.request_header import RequestHeader
from protocol.messages.response_header import ResponseHeader
from protocol.runtime import Writer, as_view, chunk_len

__all__ = [
    "RequestFrame",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "frame_size",
    "join_chunks",
    "request_header_version",
    "response_header_version",
]

API_VERSIONS_KEY = 18
CONTROLLED_SHUTDOWN_KEY = 7
_FIXED_HEADER = struct.Struct(">hhi")
_SIZE = struct.Struct(">i")
_SIZE_PLACEHOLDER = b"\0\0\0\0"
_DECODE_ERRORS = (struct.error, IndexError, ValueError, TypeError, OverflowError,
                  MemoryError, RecursionError)


def _flexible(table: dict[int, type], api_key: int, api_version: int) -> bool:
    cls: Any = table.get(api_key)
    if cls is None:
        raise UnsupportedVersionError(api_key, api_version, -1)
    fmin = cls.FLEXIBLE_MIN_VERSION
    return fmin is not None and api_version >= fmin


def request_header_version(api_key: int, api_version: int) -> int:
    """2 if the request version is flexible, else 1 (0 for ControlledShutdown v0)."""
    if api_key == CONTROLLED_SHUTDOWN_KEY and api_version == 0:
        return 0
    return 2 if _flexible(REQUESTS, api_key, api_version) else 1


def response_header_version(api_key: int, api_version: int) -> int:
    """1 if the response version is flexible, else 0; ApiVersions responses always use 0."""
    if api_key == API_VERSIONS_KEY:
        return 0
    return 1 if _flexible(RESPONSES, api_key, api_version) else 0


@dataclass(slots=True)
class RequestFrame:
    """A decoded request: the header fields the broker needs, the header and the body."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    header: RequestHeader
    body: Any


def decode_request(frame: bytes | bytearray | memoryview) -> RequestFrame:
    """Decode a request frame (the bytes after the size prefix).

    Raises `UnsupportedVersionError` (carrying api_key, api_version and correlation_id, read
    from the fixed first 8 bytes) for an unknown api key or a version we have no codec for,
    and `ProtocolError` for anything malformed. Bytes after the body are ignored, as Apache
    Kafka ignores them: librdkafka 2.x sends 3 stray bytes after some Metadata v9+ requests
    (confluentinc/librdkafka#5049).
    """
    buf = as_view(frame)
    if len(buf) < 8:
        raise ProtocolError(f"request frame of {len(buf)} bytes is shorter than a header")
    api_key, api_version, correlation_id = _FIXED_HEADER.unpack_from(buf, 0)
    cls: Any = REQUESTS.get(api_key)
    if cls is None or not cls.MIN_VERSION <= api_version <= cls.MAX_VERSION:
        raise UnsupportedVersionError(api_key, api_version, correlation_id)
    hv = request_header_version(api_key, api_version)
    try:
        header, pos = RequestHeader._decode(buf, 0, hv)
        body, pos = cls._DEC[api_version - cls.MIN_VERSION](buf, pos)
    except ProtocolError:
        raise
    except _DECODE_ERRORS as e:
        raise ProtocolError(
            f"malformed {cls.__name__} v{api_version} (correlation {correlation_id}): {e!r}"
        ) from e
    return RequestFrame(api_key, api_version, correlation_id, header.client_id, header, body)


def _finish_frame(w: Writer) -> list[Any]:
    size = _SIZE.pack(w.size() - 4)
    if not w.chunks:
        w.buf[0:4] = size
        return [bytes(w.buf)]
    chunks = w.finish()
    chunks[0] = size + chunks[0][4:]
    return chunks


def encode_response(api_key: int, api_version: int, correlation_id: int, body: Any) -> list[Any]:
    """Chunks of a whole response frame, size prefix first."""
    hv = response_header_version(api_key, api_version)
    w = Writer(_SIZE_PLACEHOLDER)
    if hv == 0:
        w.buf += _SIZE.pack(correlation_id)
    else:
        ResponseHeader(correlation_id).encode_into(w, hv)
    body.encode_into(w, api_version)
    return _finish_frame(w)


def encode_request(api_key: int, api_version: int, correlation_id: int, client_id: str | None,
                   body: Any) -> list[Any]:
    """Chunks of a whole request frame, size prefix first."""
    hv = request_header_version(api_key, api_version)
    w = Writer(_SIZE_PLACEHOLDER)
    RequestHeader(api_key, api_version, correlation_id, client_id).encode_into(w, hv)
    body.encode_into(w, api_version)
    return _finish_frame(w)


def decode_response(frame: bytes | bytearray | memoryview, api_key: int,
                    api_version: int) -> tuple[int, Any]:
    """Decode a response frame (after the size prefix): ``(correlation_id, body)``.

    Stricter than `decode_request`: bytes after the body are a `ProtocolError`, since they
    mean the frame was not the version we expected.
    """
    cls: Any = RESPONSES.get(api_key)
    if cls is None or not cls.MIN_VERSION <= api_version <= cls.MAX_VERSION:
        raise UnsupportedVersionError(api_key, api_version, -1)
    buf = as_view(frame)
    hv = response_header_version(api_key, api_version)
    header, pos = ResponseHeader._decode(buf, 0, hv)
    try:
        body, pos = cls._DEC[api_version - cls.MIN_VERSION](buf, pos)
    except ProtocolError:
        raise
    except _DECODE_ERRORS as e:
        raise ProtocolError(f"malformed {cls.__name__} v{api_version}: {e!r}") from e
    if pos != len(buf):
        raise ProtocolError(f"{cls.__name__} v{api_version}: {len(buf) - pos} trailing bytes")
    return header.correlation_id, body


def frame_size(chunks: list[Any]) -> int:
    """Total bytes in a chunk list (records placeholders count by their ``len``)."""
    return sum(chunk_len(c) for c in chunks)


def join_chunks(chunks: list[Any]) -> bytes:
    """Concatenate bytes-like chunks (a test helper: placeholders cannot be joined)."""
    return b"".join(chunks)
