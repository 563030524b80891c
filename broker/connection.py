"""One client connection: read frames, dispatch them in order, answer in order.

Kafka handles the requests of one connection strictly one after another (the network
layer mutes a channel while its request is in flight), and clients depend on responses
arriving in request order. We do the same: the loop reads a frame, runs its handler, writes
the response, and only then looks at the next frame (which may already be buffered, since
clients pipeline).

Failures, as the style guide sets them out:
- a peer that breaks framing (bad size, undecodable request) is disconnected with a log line;
- an ApiVersions request at an unknown version gets the v0 UNSUPPORTED_VERSION answer;
- any other unknown API key or version closes the connection, as Apache Kafka does;
- an exception from a handler is a bug: logged with its traceback, connection closed;
  the broker keeps serving everyone else.
Each response is written whole under the send lock and shielded from cancellation, so a
shutdown never leaves a torn frame on the wire.

Idle connections (`connections.max.idle.ms`) are closed as Kafka's `Selector` does: the
timer counts from the connection's last socket I/O (a frame read, a response written), so
a request parked longer than that (a long-polling Fetch) gets its connection closed too,
and its answer is dropped; the handler itself runs to completion. A watchdog task per
connection does this, so handlers are never cancelled by it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import trio

from broker.context import CloseConnection, RequestContext
from broker.handlers import REGISTRY
from broker.handlers.api_versions import unsupported_version_response
from broker.transport import FrameReader, FramingError, send_chunks
from protocol import frames
from protocol.errors import ProtocolError, UnsupportedVersionError

if TYPE_CHECKING:
    from broker.server import Broker

log = logging.getLogger("odradek.connection")

API_VERSIONS = 18


def _peer_name(stream: trio.abc.Stream) -> str:
    if isinstance(stream, trio.SocketStream):
        try:
            name = stream.socket.getpeername()
        except OSError:
            return "unknown"
        if isinstance(name, tuple):
            return f"{name[0]}:{name[1]}"
        return str(name) or "unix"  # an AF_UNIX peer (benchmarks, tests) has no address
    return type(stream).__name__


class Connection:
    def __init__(self, broker: Broker, stream: trio.abc.Stream, listener: str = "") -> None:
        self.broker = broker
        self.listener = listener
        self.stream = stream
        self.peer = _peer_name(stream)
        self._send_lock = trio.Lock()
        self._reader = FrameReader(stream, broker.config["socket.request.max.bytes"])

    async def serve(self) -> None:
        self._last_io = trio.current_time()
        self._sending = False
        self._expired = False
        connections = self.broker.metrics.connections.labels(self.listener)
        connections.inc()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._close_when_idle)
                await self._serve_requests()
                nursery.cancel_scope.cancel()
        except Exception:
            # A bug in this connection's I/O: this client loses its connection, every other
            # client goes on (handler exceptions are caught in `_handle_frame` already).
            log.exception("closing connection peer=%s reason=internal error", self.peer)
        finally:
            connections.dec()
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    async def _serve_requests(self) -> None:
        try:
            while True:
                frame = await self._reader.read_frame()
                if frame is None:
                    return
                self._last_io = trio.current_time()
                if not await self._handle_frame(frame):
                    return
        except FramingError as exc:
            log.warning("closing connection peer=%s reason=%s", self.peer, exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            if not self._expired:
                log.info("connection lost peer=%s reason=%s", self.peer,
                         exc or type(exc).__name__)

    async def _close_when_idle(self) -> None:
        """Close the stream once no I/O happened for `connections.max.idle.ms`; a blocked
        read then ends with ClosedResourceError, a later response write likewise."""
        idle_seconds = self.broker.config["connections.max.idle.ms"] / 1000
        while True:
            await trio.sleep_until(self._last_io + idle_seconds)
            if self._sending:  # a response going out is activity
                self._last_io = trio.current_time()
            elif trio.current_time() >= self._last_io + idle_seconds:
                break
        self._expired = True
        log.info("closing idle connection peer=%s idle_ms=%d", self.peer,
                 int(idle_seconds * 1000))
        await self.stream.aclose()

    async def _handle_frame(self, frame: bytes | bytearray | memoryview) -> bool:
        """Handle one request; False when the connection must be closed."""
        started = time.perf_counter()
        try:
            request = frames.decode_request(frame)
        except UnsupportedVersionError as exc:
            return await self._unsupported(exc.api_key, exc.api_version, exc.correlation_id)
        except ProtocolError as exc:
            log.warning("closing connection peer=%s reason=malformed request: %s", self.peer, exc)
            return False

        registration = REGISTRY.get(request.api_key)
        if registration is None or not (
            registration.min_version <= request.api_version <= registration.max_version
        ):
            return await self._unsupported(
                request.api_key, request.api_version, request.correlation_id)

        ctx = RequestContext(
            api_key=request.api_key,
            api_version=request.api_version,
            correlation_id=request.correlation_id,
            client_id=request.client_id,
            peer=self.peer,
            broker=self.broker,
            listener=self.listener,
        )
        try:
            response: Any
            if registration.is_async:
                response = await registration.func(ctx, request.body)
            else:
                response = registration.func(ctx, request.body)
            if response is None:
                self.broker.metrics.request_done(request.api_key, request.api_version, started)
                return True
            chunks = frames.encode_response(
                request.api_key, request.api_version, request.correlation_id, response)
        except CloseConnection as exc:
            log.info("closing connection peer=%s api_key=%d reason=%s", self.peer,
                     request.api_key, exc)
            return False
        except Exception:
            log.exception(
                "closing connection peer=%s reason=internal error handling api_key=%d "
                "api_version=%d correlation_id=%d", self.peer, request.api_key,
                request.api_version, request.correlation_id)
            return False
        await self._send(chunks)
        self.broker.metrics.request_done(request.api_key, request.api_version, started)
        return True

    async def _unsupported(self, api_key: int, api_version: int, correlation_id: int) -> bool:
        """Answer an ApiVersions request we cannot serve in v0 (KIP-511); close otherwise."""
        if api_key == API_VERSIONS:
            await self._send(frames.encode_response(
                API_VERSIONS, 0, correlation_id, unsupported_version_response()))
            return True
        log.warning("closing connection peer=%s reason=unsupported api_key=%d api_version=%d",
                    self.peer, api_key, api_version)
        return False

    async def _send(self, chunks: list[Any]) -> None:
        """Write a response whole under the send lock. The request loop is its only user,
        so the lock is taken without a scheduler round trip (`acquire_nowait`) and waited
        for only if that ever changes; `send_chunks` shields every wait of the write from
        cancellation, so a response is never torn."""
        lock = self._send_lock
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            with trio.CancelScope(shield=True):
                await lock.acquire()
        try:
            if self._expired:  # closed while the handler ran: the answer is dropped
                raise trio.ClosedResourceError("closed as idle")
            self._sending = True
            try:
                await send_chunks(self.stream, chunks)
            finally:
                self._sending = False
                self._last_io = trio.current_time()
        finally:
            lock.release()
