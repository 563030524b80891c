"""Odradek's admin tools: a small synchronous Kafka client on our own codecs and the
`odradek` client commands built on it.

- `client`: connections, ApiVersions negotiation, routing to leaders and coordinators.
- `topics`, `groups`, `transfer`: what the commands do, as functions of a client.
- `formats`: console producer/consumer line formats; `dumplog`: segment files offline.
- `cli_*`: the typer commands (`broker/cli.py` assembles them).
"""

from broker.admin.client import AdminClient
from broker.admin.errors import AdminError, KafkaError

__all__ = ["AdminClient", "AdminError", "KafkaError"]
