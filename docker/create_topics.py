"""Create topics on a running broker (the image's `create-topics` command).

    create-topics [--bootstrap HOST:PORT] [--partitions N] [--config KEY=VALUE]...
                  [--wait SECONDS] TOPIC...

Sends one CreateTopics (v7) request with Odradek's own protocol codecs, retrying the
connection until the broker answers or `--wait` runs out (so a compose one-shot service
may start next to the broker). A topic that already exists counts as created, which keeps
the command idempotent; any other error code is printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import time

from protocol import frames
from protocol.errors import ErrorCode
from protocol.messages.create_topics_request import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from protocol.messages.create_topics_response import CreateTopicsResponse

CREATE_TOPICS = 19
VERSION = 7


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return bytes(data)


def create(host: str, port: int, request: CreateTopicsRequest, timeout_s: float
           ) -> CreateTopicsResponse:
    frame = frames.join_chunks(frames.encode_request(CREATE_TOPICS, VERSION, 1,
                                                     "odradek-create-topics", request))
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(frame)
        (size,) = struct.unpack(">i", read_exactly(sock, 4))
        _, response = frames.decode_response(read_exactly(sock, size), CREATE_TOPICS, VERSION)
    assert isinstance(response, CreateTopicsResponse)
    return response


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="create-topics", description=__doc__.splitlines()[0])
    parser.add_argument("topics", nargs="+", metavar="TOPIC")
    parser.add_argument("--bootstrap", default="localhost:9092", metavar="HOST:PORT")
    parser.add_argument("--partitions", type=int, default=-1,
                        help="partitions per topic (default: the broker's num.partitions)")
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                        help="how long to retry connecting (default 60)")
    args = parser.parse_args(argv)
    host, _, port = args.bootstrap.rpartition(":")
    configs = []
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--config expects KEY=VALUE, got {item!r}")
        configs.append(CreatableTopicConfig(name=key, value=value))
    request = CreateTopicsRequest(
        topics=[CreatableTopic(name=name, num_partitions=args.partitions, replication_factor=-1,
                               configs=configs) for name in args.topics],
        timeout_ms=30_000,
    )
    deadline = time.monotonic() + args.wait
    while True:
        try:
            response = create(host.strip("[]"), int(port), request, timeout_s=35.0)
            break
        except OSError as exc:
            if time.monotonic() >= deadline:
                print(f"create-topics: cannot reach {args.bootstrap}: {exc}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    status = 0
    for result in response.topics:
        code = ErrorCode(result.error_code)
        if code is ErrorCode.NONE:
            print(f"created {result.name} partitions={result.num_partitions}")
        elif code is ErrorCode.TOPIC_ALREADY_EXISTS:
            print(f"exists {result.name}")
        else:
            print(f"create-topics: {result.name}: {code.name}: {result.error_message}",
                  file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
