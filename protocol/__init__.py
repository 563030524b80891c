"""Kafka wire protocol, sans-IO.

Bytes in, typed objects out, and back. Nothing here touches a socket, a file descriptor
or a clock: no trio, socket, os or mmap imports (a test enforces it). Encoders return
lists of chunks; a chunk is a bytes-like object or an opaque sized object (a file slice
from storage) that the broker writes with sendfile.
"""
