"""What a handler knows about the request it is answering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker.server import Broker


class CloseConnection(Exception):
    """Raised by a handler when Kafka would close the connection instead of answering
    (e.g. a failed Produce with acks=0). The connection closes with an info log line."""


@dataclass(slots=True)
class RequestContext:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    peer: str
    broker: Broker
    #: The name of the listener the connection came in on (e.g. "PLAINTEXT").
    listener: str = ""
