"""A small synchronous Kafka client on Odradek's own codecs, for the admin CLI.

How this works
--------------
`Connection` is one blocking TCP socket to one broker. On connect it sends ApiVersions
(v4, or the broker's highest ApiVersions version if it answers v4 with UNSUPPORTED_VERSION
in a v0 body, as KIP-511 says) and keeps the broker's version range for every API. Requests
go out one at a time: encode with `protocol.frames.encode_request`, send, read the 4-byte
size and the frame, `decode_response`, check the correlation id.

`AdminClient` holds a bootstrap connection plus one per broker it learns from Metadata,
and routes: `send(api_key, build)` to the bootstrap broker, `send(..., node=id)` to a
partition leader, `send_to_group(...)` to a group's coordinator (FindCoordinator).
`build` is a request body, or a function of the version that makes one, for requests
whose fields change between versions. The version is the highest that our codecs, the
broker, and the caller's `hi` (the newest version the caller knows how to fill) all
allow, and at least the caller's `lo`; when none is, `KafkaError(UNSUPPORTED_VERSION)`.

Edge cases: a bootstrap list is tried in order until one broker answers; a broker
advertised at the bootstrap address reuses the bootstrap connection; COORDINATOR_NOT_AVAILABLE
and COORDINATOR_LOAD_IN_PROGRESS from FindCoordinator are retried (a broker creates
`__consumer_offsets` on the first lookup) until the request timeout.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata as _metadata
from typing import Any

from broker.admin.errors import AdminError, KafkaError, check
from protocol import frames
from protocol.errors import ProtocolError
from protocol.messages import REQUESTS
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.api_versions_response import ApiVersionsResponse
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic

__all__ = ["AdminClient", "Connection", "Node", "parse_bootstrap", "software_version"]

API_VERSIONS = 18
METADATA = 3
FIND_COORDINATOR = 10
UNSUPPORTED_VERSION = 35
_RETRIABLE_COORDINATOR = (14, 15)  # COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE
_SIZE = struct.Struct(">i")
CLIENT_ID = "odradek-cli"


def software_version() -> str:
    """This package's version (``0.1.0``), or ``unknown`` when not installed."""
    try:
        return _metadata.version("odradek")
    except _metadata.PackageNotFoundError:
        return "unknown"


def parse_bootstrap(servers: str) -> list[tuple[str, int]]:
    """``"a:9092,[::1]:9093,b"`` -> ``[("a", 9092), ("::1", 9093), ("b", 9092)]``."""
    out = []
    for item in servers.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.lstrip(":") or "9092"
        else:
            host, sep, port = item.rpartition(":")
            if not sep:
                host, port = item, "9092"
        try:
            out.append((host, int(port)))
        except ValueError:
            raise AdminError(f"invalid bootstrap server {item!r}: port is not a number") from None
    if not out:
        raise AdminError("no bootstrap server given")
    return out


@dataclass(frozen=True, slots=True)
class Node:
    node_id: int
    host: str
    port: int


class Connection:
    """One blocking socket to one broker, with its API version ranges."""

    def __init__(self, host: str, port: int, timeout_s: float, client_id: str = CLIENT_ID
                 ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.client_id = client_id
        self._correlation_id = 0
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as exc:
            raise AdminError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        #: api key -> (min, max) the broker serves.
        self.versions: dict[int, tuple[int, int]] = {}
        self.api_versions: ApiVersionsResponse | None = None
        try:
            self._negotiate()
        except BaseException:
            self.close()
            raise

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _negotiate(self) -> None:
        version = ApiVersionsRequest.MAX_VERSION
        body = ApiVersionsRequest(client_software_name=CLIENT_ID,
                                  client_software_version=software_version())
        for _ in range(2):
            correlation_id = self._send(API_VERSIONS, version, body)
            frame = self._read_frame()
            try:
                got, response = frames.decode_response(frame, API_VERSIONS, version)
            except ProtocolError:
                got, response = frames.decode_response(frame, API_VERSIONS, 0)
            self._check_correlation(got, correlation_id)
            if response.error_code == UNSUPPORTED_VERSION:
                ranges = {k.api_key: k.max_version for k in response.api_keys}
                version = min(ranges.get(API_VERSIONS, 0), version)
                continue
            check(response.error_code, context="ApiVersions")
            self.api_versions = response
            self.versions = {k.api_key: (k.min_version, k.max_version)
                             for k in response.api_keys}
            return
        raise KafkaError(UNSUPPORTED_VERSION, context="ApiVersions")

    def version_for(self, api_key: int, lo: int | None = None, hi: int | None = None) -> int:
        """The highest version of `api_key` that both sides and ``lo..hi`` allow."""
        cls: Any = REQUESTS[api_key]
        broker = self.versions.get(api_key)
        name = cls.__name__.removesuffix("Request")
        if broker is None:
            raise KafkaError(UNSUPPORTED_VERSION,
                             f"The broker at {self.address} does not serve {name}.")
        low = max(cls.MIN_VERSION, broker[0], lo if lo is not None else 0)
        high = min(cls.MAX_VERSION, broker[1], hi if hi is not None else cls.MAX_VERSION)
        if low > high:
            raise KafkaError(UNSUPPORTED_VERSION,
                             f"The broker at {self.address} serves {name} "
                             f"v{broker[0]}-{broker[1]}; this tool needs v{lo or 0}-{hi}.")
        return high

    def request(self, api_key: int, build: Any, *, lo: int | None = None,
                hi: int | None = None) -> Any:
        """Send one request (a body, or a function of the version) and return the body
        of the response."""
        version = self.version_for(api_key, lo, hi)
        body = build(version) if callable(build) else build
        correlation_id = self._send(api_key, version, body)
        got, response = frames.decode_response(self._read_frame(), api_key, version)
        self._check_correlation(got, correlation_id)
        return response

    def send_only(self, api_key: int, build: Any, *, lo: int | None = None,
                  hi: int | None = None) -> None:
        """Send a request that gets no response (Produce with acks=0)."""
        version = self.version_for(api_key, lo, hi)
        self._send(api_key, version, build(version) if callable(build) else build)

    def _send(self, api_key: int, version: int, body: Any) -> int:
        self._correlation_id += 1
        chunks = frames.encode_request(api_key, version, self._correlation_id,
                                       self.client_id, body)
        try:
            self._sock.sendall(frames.join_chunks(chunks))
        except OSError as exc:
            raise AdminError(f"lost the connection to {self.address}: {exc}") from None
        return self._correlation_id

    def _read_exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            try:
                chunk = self._sock.recv(min(size - len(data), 1 << 20))
            except TimeoutError:
                raise AdminError(f"no answer from {self.address} within "
                                 f"{self.timeout_s:g} s") from None
            except OSError as exc:
                raise AdminError(f"lost the connection to {self.address}: {exc}") from None
            if not chunk:
                raise AdminError(f"{self.address} closed the connection")
            data += chunk
        return bytes(data)

    def _read_frame(self) -> bytes:
        (size,) = _SIZE.unpack(self._read_exactly(4))
        if size < 4:
            raise AdminError(f"{self.address} sent a frame of {size} bytes")
        return self._read_exactly(size)

    def _check_correlation(self, got: int, expected: int) -> None:
        if got != expected:
            raise AdminError(f"{self.address} answered correlation id {got}, "
                             f"expected {expected}")

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass


class AdminClient:
    """Connections to a cluster: bootstrap, partition leaders and group coordinators."""

    def __init__(self, bootstrap: str, *, timeout_s: float = 30.0,
                 client_id: str = CLIENT_ID) -> None:
        self.timeout_s = timeout_s
        self.client_id = client_id
        errors = []
        self.bootstrap: Connection | None = None
        for host, port in parse_bootstrap(bootstrap):
            try:
                self.bootstrap = Connection(host, port, timeout_s, client_id)
                break
            except AdminError as exc:
                errors.append(str(exc))
        if self.bootstrap is None:
            raise AdminError("; ".join(errors))
        self._by_address: dict[tuple[str, int], Connection] = {
            (self.bootstrap.host, self.bootstrap.port): self.bootstrap}
        self.nodes: dict[int, Node] = {}
        self.cluster_id: str | None = None
        self.controller_id = -1

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for conn in self._by_address.values():
            conn.close()
        self._by_address.clear()

    @property
    def conn(self) -> Connection:
        assert self.bootstrap is not None
        return self.bootstrap

    def send(self, api_key: int, build: Any, *, node: int | None = None,
             lo: int | None = None, hi: int | None = None) -> Any:
        """Send to the bootstrap broker, or to broker `node` (as Metadata named it)."""
        conn = self.conn if node is None else self.node_connection(node)
        return conn.request(api_key, build, lo=lo, hi=hi)

    # -- metadata ----------------------------------------------------------------------

    def metadata(self, topics: list[str] | None = None, *, auto_create: bool = False) -> Any:
        """A Metadata response for `topics` (None: every topic); remembers the brokers."""
        def build(version: int) -> MetadataRequest:
            wanted = None if topics is None else [MetadataRequestTopic(name=t) for t in topics]
            return MetadataRequest(topics=wanted, allow_auto_topic_creation=auto_create)

        response = self.send(METADATA, build, lo=4, hi=12)
        self.nodes = {b.node_id: Node(b.node_id, b.host, b.port) for b in response.brokers}
        self.cluster_id = response.cluster_id
        self.controller_id = response.controller_id
        return response

    def partition_leaders(self, topic: str) -> dict[int, int]:
        """partition -> leader node id; `KafkaError` if the topic does not exist."""
        response = self.metadata([topic])
        for t in response.topics:
            if t.name == topic:
                check(t.error_code, context=f"topic {topic}")
                return {p.partition_index: p.leader_id for p in t.partitions}
        raise KafkaError(3, context=f"topic {topic}")

    def node_connection(self, node_id: int) -> Connection:
        node = self.nodes.get(node_id)
        if node is None:
            self.metadata([])
            node = self.nodes.get(node_id)
        if node is None:
            raise KafkaError(8, f"Broker {node_id} is not in the cluster metadata.")
        return self._connect(node.host, node.port)

    def _connect(self, host: str, port: int) -> Connection:
        conn = self._by_address.get((host, port))
        if conn is None:
            conn = Connection(host, port, self.timeout_s, self.client_id)
            self._by_address[(host, port)] = conn
        return conn

    # -- groups --------------------------------------------------------------------------

    def coordinator(self, group_id: str) -> Connection:
        """The connection to `group_id`'s coordinator (FindCoordinator, key type 0)."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            def build(version: int) -> FindCoordinatorRequest:
                if version >= 4:
                    return FindCoordinatorRequest(key_type=0, coordinator_keys=[group_id])
                return FindCoordinatorRequest(key=group_id)

            response = self.send(FIND_COORDINATOR, build)
            if response.coordinators:
                found = response.coordinators[0]
                code, message = found.error_code, found.error_message
                host, port = found.host, found.port
            else:
                code, message = response.error_code, response.error_message
                host, port = response.host, response.port
            if code in _RETRIABLE_COORDINATOR and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            check(code, message, f"group {group_id}")
            return self._connect(host, port)

    def send_to_group(self, group_id: str, api_key: int, build: Any, *,
                      lo: int | None = None, hi: int | None = None) -> Any:
        return self.coordinator(group_id).request(api_key, build, lo=lo, hi=hi)


def api_name(api_key: int) -> str:
    """``3`` -> ``Metadata``; unknown keys as ``api_key_<n>``."""
    cls: Callable[..., Any] | None = REQUESTS.get(api_key)
    return cls.__name__.removesuffix("Request") if cls else f"api_key_{api_key}"
