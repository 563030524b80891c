"""Primitive encoders and decoders that the generated codecs call.

How the codecs work
-------------------
`python -m protocol.codegen` reads Kafka's JSON message specs and writes one module per spec
into `protocol/messages/` (and `protocol/coordinator/`). Each module holds slotted dataclasses
(the message and its structs, subclasses of `Struct` below) and, for every *distinct wire
layout*, one straight-line encoder and one decoder function per struct. Versions whose layout is
identical (same fields, same compact/nullable/tagged treatment, same nested layouts) share a
function; the class attributes `_ENC` / `_DEC` are tuples indexed by `version - MIN_VERSION`.

Decoding: ``_dec_X_vN(buf, pos) -> (obj, pos)`` where `buf` is a `memoryview` of the frame.
Runs of consecutive fixed-width fields are read by one precompiled `struct.Struct.unpack_from`;
strings, bytes, lengths and varints go through the small `r_*` helpers below, which check every
length against the end of the buffer. `records` fields come back as a zero-copy `memoryview`
slice of the input. Any failure (short buffer, negative length, bad UTF-8, over-long varint, ...)
surfaces from `Struct.decode` / `Struct._decode` as `ProtocolError` and nothing else.

Encoding: ``_enc_X_vN(obj, w)`` appends to a `Writer`: a `bytearray` (`w.buf`) for everything
generated, plus a list of finished chunks (`w.chunks`). A `records` value is never copied: its
length prefix goes into the buffer, the buffer so far becomes a `bytes` chunk and the records
object (bytes, memoryview, or a file-slice placeholder with `__len__`) becomes its own chunk.
`Writer.finish()` returns the chunk list, so a Fetch response is a handful of chunks: metadata
bytes interleaved with record slices the broker can `sendfile`.

Flexible versions: compact strings/bytes/arrays/records (unsigned varint length + 1), and a
tagged-field section at the end of every struct. Known tagged fields are written in tag order
only when they differ from their default; unknown tagged fields read from the wire are kept in
`unknown_tagged_fields` as ``(tag, bytes)`` pairs and written back in tag order, so a decoded
frame re-encodes byte for byte.

A field that does not exist in the version being encoded is dropped silently when it holds its
default or is marked `ignorable`; otherwise encoding raises `FieldVersionError` (a `ValueError`:
it is a bug in the caller, not a peer's framing error), as Kafka's generated Java code does.

Nothing here imports trio, socket, os or mmap: `protocol/` is bytes in, objects out.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, NamedTuple
from uuid import UUID, SafeUUID

from protocol.errors import ProtocolError, UnsupportedVersionError

__all__ = [
    "ZERO_UUID",
    "FieldSpec",
    "FieldVersionError",
    "ProtocolError",
    "Records",
    "Struct",
    "UnsupportedVersionError",
    "Writer",
    "chunk_len",
]

#: Type of a `records` field: decoded as a memoryview; encoded from bytes, bytearray,
#: memoryview or any placeholder object with ``__len__`` (e.g. a storage file slice).
Records = Any

ZERO_UUID = UUID(int=0)
_ZERO_UUID_BYTES = bytes(16)
_MAX_VERSION = 0x7FFF

I8 = struct.Struct(">b")
I16 = struct.Struct(">h")
I32 = struct.Struct(">i")
I64 = struct.Struct(">q")
U16 = struct.Struct(">H")
F64 = struct.Struct(">d")
_I32_NULL = b"\xff\xff\xff\xff"
_I16_NULL = b"\xff\xff"
_i16_unpack = I16.unpack_from
_i32_unpack = I32.unpack_from
_i16_pack = I16.pack
_i32_pack = I32.pack
_setattr = object.__setattr__
_new = object.__new__


class FieldVersionError(ValueError):
    """A non-default, non-ignorable field is set but the version being encoded lacks it."""


_Class = type  # `FieldSpec.type` shadows the builtin inside the class body


class FieldSpec(NamedTuple):
    """Schema metadata for one field, emitted in each generated class's `FIELDS` tuple.

    Version ranges are inclusive ``(low, high)`` pairs (`high` is 32767 when open-ended) or None
    when the field never has that property. Nothing at runtime reads these: they exist for tests
    (generic Hypothesis strategies) and for introspection.
    """

    name: str  # Python attribute name
    kafka_name: str  # name in the JSON spec
    type: str  # int8 int16 uint16 int32 int64 float64 bool string bytes uuid records struct array
    element: str | None  # for arrays: the element type (a primitive name or "struct")
    struct: _Class | None  # the struct class for "struct" fields and arrays of structs
    versions: tuple[int, int] | None
    nullable: tuple[int, int] | None
    tagged: tuple[int, int] | None
    tag: int | None
    ignorable: bool
    flexible: tuple[int, int] | None  # field-level flexibleVersions override; None = the message's
    has_flexible_override: bool


def in_range(r: tuple[int, int] | None, version: int) -> bool:
    """True if `version` lies in the inclusive range `r` (None = empty)."""
    return r is not None and r[0] <= version <= r[1]


class Struct:
    """Base of every generated message and struct class (which are slotted dataclasses)."""

    __slots__ = ()

    MIN_VERSION: ClassVar[int]
    MAX_VERSION: ClassVar[int]
    FLEXIBLE_MIN_VERSION: ClassVar[int | None]
    FIELDS: ClassVar[tuple[FieldSpec, ...]]
    _ENC: ClassVar[tuple[Any, ...]] = ()
    _DEC: ClassVar[tuple[Any, ...]] = ()

    def encode(self, version: int) -> list[Any]:
        """Encode at `version`; returns chunks (bytes, or records objects passed through)."""
        w = Writer()
        self.encode_into(w, version)
        return w.finish()

    def encode_into(self, w: Writer, version: int) -> None:
        """Append this object's encoding at `version` to `w`."""
        cls = type(self)
        if not cls.MIN_VERSION <= version <= cls.MAX_VERSION or not cls._ENC:
            raise UnsupportedVersionError(getattr(cls, "API_KEY", -1), version, -1,
                                          f"{cls.__name__} has no version {version}")
        cls._ENC[version - cls.MIN_VERSION](self, w)

    @classmethod
    def decode(cls, buf: bytes | bytearray | memoryview, version: int) -> Any:
        """Decode a whole buffer at `version`; trailing bytes are a `ProtocolError`."""
        view = as_view(buf)
        obj, pos = cls._decode(view, 0, version)
        if pos != len(view):
            raise ProtocolError(f"{cls.__name__} v{version}: {len(view) - pos} trailing bytes")
        return obj

    @classmethod
    def _decode(cls, buf: bytes | bytearray | memoryview, pos: int,
                version: int) -> tuple[Any, int]:
        """Decode one object starting at `pos`; returns ``(obj, new_pos)``."""
        if not cls.MIN_VERSION <= version <= cls.MAX_VERSION or not cls._DEC:
            raise UnsupportedVersionError(getattr(cls, "API_KEY", -1), version, -1,
                                          f"{cls.__name__} has no version {version}")
        if type(buf) is not memoryview:
            buf = as_view(buf)
        try:
            return cls._DEC[version - cls.MIN_VERSION](buf, pos)  # type: ignore[no-any-return]
        except ProtocolError:
            raise
        except (struct.error, IndexError, ValueError, TypeError, OverflowError,
                MemoryError, RecursionError) as e:
            raise ProtocolError(f"malformed {cls.__name__} v{version}: {e!r}") from e


def as_view(buf: bytes | bytearray | memoryview) -> memoryview:
    """A flat unsigned-byte memoryview over `buf` (no copy)."""
    view = buf if type(buf) is memoryview else memoryview(buf)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def chunk_len(chunk: Any) -> int:
    """Length in bytes of one encoded chunk (memoryviews count bytes, not items)."""
    return chunk.nbytes if type(chunk) is memoryview else len(chunk)


class Writer:
    """Encoder output: a growing bytearray plus finished chunks (see module docstring)."""

    __slots__ = ("buf", "chunks", "flushed")

    def __init__(self, prefix: bytes = b"") -> None:
        self.buf = bytearray(prefix)
        self.chunks: list[Any] = []
        self.flushed = 0  # bytes held in `chunks`

    def size(self) -> int:
        """Total bytes written so far."""
        return self.flushed + len(self.buf)

    def finish(self) -> list[Any]:
        """The chunk list; byte chunks are `bytes`, records objects are passed through."""
        chunks = self.chunks
        if self.buf or not chunks:
            chunks.append(bytes(self.buf))
        return chunks

    def getvalue(self) -> bytes:
        """The whole output as bytes (only valid when no records object was written)."""
        if self.chunks:
            return b"".join([*(bytes(c) for c in self.chunks), self.buf])
        return bytes(self.buf)


# --------------------------------------------------------------------------- decoding helpers


def _short(what: str) -> ProtocolError:
    return ProtocolError(f"{what} runs past the end of the buffer")


def r_uvarint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Unsigned varint (at most 5 bytes, as Kafka's readUnsignedVarint)."""
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 28:
            raise ProtocolError("unsigned varint longer than 5 bytes")


def r_str(buf: memoryview, pos: int) -> tuple[str, int]:
    (n,) = _i16_unpack(buf, pos)
    pos += 2
    if n < 0:
        raise ProtocolError("non-nullable string is null")
    end = pos + n
    if end > len(buf):
        raise _short("string")
    return str(buf[pos:end], "utf-8"), end


def r_nstr(buf: memoryview, pos: int) -> tuple[str | None, int]:
    (n,) = _i16_unpack(buf, pos)
    pos += 2
    if n < 0:
        if n != -1:
            raise ProtocolError(f"string length {n}")
        return None, pos
    end = pos + n
    if end > len(buf):
        raise _short("string")
    return str(buf[pos:end], "utf-8"), end


def r_cstr(buf: memoryview, pos: int) -> tuple[str, int]:
    n, pos = r_uvarint(buf, pos)
    if n == 0:
        raise ProtocolError("non-nullable compact string is null")
    end = pos + n - 1
    if end > len(buf):
        raise _short("compact string")
    return str(buf[pos:end], "utf-8"), end


def r_ncstr(buf: memoryview, pos: int) -> tuple[str | None, int]:
    n, pos = r_uvarint(buf, pos)
    if n == 0:
        return None, pos
    end = pos + n - 1
    if end > len(buf):
        raise _short("compact string")
    return str(buf[pos:end], "utf-8"), end


def r_bytes(buf: memoryview, pos: int) -> tuple[bytes, int]:
    (n,) = _i32_unpack(buf, pos)
    pos += 4
    if n < 0:
        raise ProtocolError("non-nullable bytes is null")
    end = pos + n
    if end > len(buf):
        raise _short("bytes")
    return bytes(buf[pos:end]), end


def r_nbytes(buf: memoryview, pos: int) -> tuple[bytes | None, int]:
    (n,) = _i32_unpack(buf, pos)
    pos += 4
    if n < 0:
        if n != -1:
            raise ProtocolError(f"bytes length {n}")
        return None, pos
    end = pos + n
    if end > len(buf):
        raise _short("bytes")
    return bytes(buf[pos:end]), end


def r_cbytes(buf: memoryview, pos: int) -> tuple[bytes, int]:
    n, pos = r_uvarint(buf, pos)
    if n == 0:
        raise ProtocolError("non-nullable compact bytes is null")
    end = pos + n - 1
    if end > len(buf):
        raise _short("compact bytes")
    return bytes(buf[pos:end]), end


def r_ncbytes(buf: memoryview, pos: int) -> tuple[bytes | None, int]:
    n, pos = r_uvarint(buf, pos)
    if n == 0:
        return None, pos
    end = pos + n - 1
    if end > len(buf):
        raise _short("compact bytes")
    return bytes(buf[pos:end]), end


def r_records(buf: memoryview, pos: int) -> tuple[memoryview | None, int]:
    """Records with an int32 length (-1 = null): a zero-copy slice of `buf`."""
    (n,) = _i32_unpack(buf, pos)
    pos += 4
    if n < 0:
        if n != -1:
            raise ProtocolError(f"records length {n}")
        return None, pos
    end = pos + n
    if end > len(buf):
        raise _short("records")
    return buf[pos:end], end


def r_crecords(buf: memoryview, pos: int) -> tuple[memoryview | None, int]:
    """Records with a compact length (0 = null): a zero-copy slice of `buf`."""
    n, pos = r_uvarint(buf, pos)
    if n == 0:
        return None, pos
    end = pos + n - 1
    if end > len(buf):
        raise _short("records")
    return buf[pos:end], end


def r_alen(buf: memoryview, pos: int) -> tuple[int, int]:
    """int32 array length; -1 means null. Longer than the remaining bytes is an error."""
    (n,) = _i32_unpack(buf, pos)
    pos += 4
    if n < 0:
        if n != -1:
            raise ProtocolError(f"array length {n}")
        return -1, pos
    if n > len(buf) - pos:
        raise ProtocolError(f"array of {n} elements but only {len(buf) - pos} bytes remain")
    return n, pos


def r_calen(buf: memoryview, pos: int) -> tuple[int, int]:
    """Compact array length (varint n+1); -1 means null."""
    n, pos = r_uvarint(buf, pos)
    n -= 1
    if n > len(buf) - pos:
        raise ProtocolError(f"array of {n} elements but only {len(buf) - pos} bytes remain")
    return n, pos


def null_array() -> ProtocolError:
    return ProtocolError("non-nullable array is null")


def null_struct() -> ProtocolError:
    return ProtocolError("non-nullable struct is null")


def r_farray(buf: memoryview, pos: int, n: int, code: str, size: int) -> tuple[list[Any], int]:
    """`n` fixed-width big-endian values of struct type `code` (`size` bytes each)."""
    end = pos + n * size
    if end > len(buf):
        raise _short("array")
    return list(struct.unpack_from(f">{n}{code}", buf, pos)), end


def uuid_from_bytes(b: bytes) -> UUID:
    """A UUID from 16 bytes, without the (slow) `UUID.__init__` argument checking."""
    if b == _ZERO_UUID_BYTES:
        return ZERO_UUID
    u = _new(UUID)
    _setattr(u, "int", int.from_bytes(b, "big"))
    _setattr(u, "is_safe", SafeUUID.unknown)
    return u


def r_uuid_array(buf: memoryview, pos: int, n: int) -> tuple[list[UUID], int]:
    end = pos + 16 * n
    if end > len(buf):
        raise _short("uuid array")
    raw = bytes(buf[pos:end])
    return [uuid_from_bytes(raw[i : i + 16]) for i in range(0, 16 * n, 16)], end


def r_tag_skip(buf: memoryview, pos: int) -> tuple[int, int, int]:
    """Read a tagged field header: returns ``(tag, start, end)`` of its payload."""
    tag, pos = r_uvarint(buf, pos)
    size, pos = r_uvarint(buf, pos)
    end = pos + size
    if end > len(buf):
        raise _short("tagged field")
    return tag, pos, end


# --------------------------------------------------------------------------- encoding helpers


def w_uvarint(buf: bytearray, n: int) -> None:
    """Unsigned varint, unrolled for the common sizes."""
    if n < 0x80:
        if n < 0:
            raise ValueError(f"unsigned varint of negative value {n}")
        buf.append(n)
    elif n < 0x4000:
        buf += bytes(((n & 0x7F) | 0x80, n >> 7))
    elif n < 0x200000:
        buf += bytes(((n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, n >> 14))
    else:
        while n >= 0x80:
            buf.append((n & 0x7F) | 0x80)
            n >>= 7
        buf.append(n)


def w_str(buf: bytearray, s: str) -> None:
    b = s.encode()
    buf += _i16_pack(len(b))
    buf += b


def w_nstr(buf: bytearray, s: str | None) -> None:
    if s is None:
        buf += _I16_NULL
        return
    b = s.encode()
    buf += _i16_pack(len(b))
    buf += b


def w_cstr(buf: bytearray, s: str) -> None:
    b = s.encode()
    n = len(b) + 1
    if n < 0x80:
        buf.append(n)
    else:
        w_uvarint(buf, n)
    buf += b


def w_ncstr(buf: bytearray, s: str | None) -> None:
    if s is None:
        buf.append(0)
        return
    b = s.encode()
    n = len(b) + 1
    if n < 0x80:
        buf.append(n)
    else:
        w_uvarint(buf, n)
    buf += b


def w_bytes(buf: bytearray, b: bytes) -> None:
    buf += _i32_pack(len(b))
    buf += b


def w_nbytes(buf: bytearray, b: bytes | None) -> None:
    if b is None:
        buf += _I32_NULL
        return
    buf += _i32_pack(len(b))
    buf += b


def w_cbytes(buf: bytearray, b: bytes) -> None:
    w_uvarint(buf, len(b) + 1)
    buf += b


def w_ncbytes(buf: bytearray, b: bytes | None) -> None:
    if b is None:
        buf.append(0)
        return
    w_uvarint(buf, len(b) + 1)
    buf += b


def w_records(w: Writer, rec: Any) -> None:
    """Records with an int32 length; the records object becomes its own chunk (no copy)."""
    buf = w.buf
    if rec is None:
        buf += _I32_NULL
        return
    n = rec.nbytes if type(rec) is memoryview else len(rec)
    buf += _i32_pack(n)
    if n:
        w.flushed += len(buf) + n
        w.chunks += (bytes(buf), rec)
        buf.clear()


def w_crecords(w: Writer, rec: Any) -> None:
    """Records with a compact length; the records object becomes its own chunk (no copy)."""
    buf = w.buf
    if rec is None:
        buf.append(0)
        return
    n = rec.nbytes if type(rec) is memoryview else len(rec)
    w_uvarint(buf, n + 1)
    if n:
        w.flushed += len(buf) + n
        w.chunks += (bytes(buf), rec)
        buf.clear()


def w_alen(buf: bytearray, a: Any) -> None:
    buf += _i32_pack(len(a))


def w_calen(buf: bytearray, a: Any) -> None:
    n = len(a) + 1
    if n < 0x80:
        buf.append(n)
    else:
        w_uvarint(buf, n)


def w_farray(buf: bytearray, code: str, a: list[Any]) -> None:
    buf += struct.pack(f">{len(a)}{code}", *a)


def w_uuid_array(buf: bytearray, a: list[UUID]) -> None:
    for u in a:
        buf += u.bytes


def _tag_key(t: tuple[int, bytes]) -> int:
    return t[0]


def w_tags(buf: bytearray, tags: list[tuple[int, bytes]]) -> None:
    """The tagged-field section: count, then (tag, size, payload) in tag order."""
    if not tags:
        buf.append(0)
        return
    tags.sort(key=_tag_key)
    w_uvarint(buf, len(tags))
    for tag, data in tags:
        w_uvarint(buf, tag)
        w_uvarint(buf, len(data))
        buf += data


def w_unknown_tags(buf: bytearray, unknown: list[tuple[int, bytes]]) -> None:
    """A tagged-field section holding only fields this codebase does not know."""
    w_tags(buf, list(unknown))


def absent(cls_name: str, field: str, version: int) -> FieldVersionError:
    return FieldVersionError(
        f"{cls_name}.{field} is set to a non-default value but does not exist in version {version}"
    )
