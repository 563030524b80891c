"""The two kinds of failure the admin client reports.

`KafkaError`: the broker answered with an error code. It carries Kafka's name for the code
and the message the response gave, or Kafka's default message for that code when the
response had none (`error_messages.ERRORS`), so the CLI prints what Kafka's tools print:
``TOPIC_ALREADY_EXISTS: Topic 'orders' already exists.``

`AdminError`: anything else that stops a command: the broker cannot be reached, closed the
connection, does not serve a version we need, or the command line asks for something
impossible (an unknown partition, a reset without a scope).
"""

from __future__ import annotations

from broker.admin.error_messages import ERRORS

__all__ = ["AdminError", "KafkaError", "check", "error_name"]


def error_name(code: int) -> str:
    """Kafka's name for `code` (``NONE`` for 0, ``UNKNOWN_ERROR_CODE_<n>`` if unassigned)."""
    if code == 0:
        return "NONE"
    entry = ERRORS.get(code)
    return entry[0] if entry else f"UNKNOWN_ERROR_CODE_{code}"


class AdminError(Exception):
    """A failure that is not a Kafka error code."""


class KafkaError(AdminError):
    """An error code from the broker, with Kafka's name and a message."""

    def __init__(self, code: int, message: str | None = None, context: str = "") -> None:
        self.code = code
        self.name = error_name(code)
        default = ERRORS.get(code, ("", "Unexpected error code."))[1]
        self.message = message or default
        self.context = context
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" ({self.context})" if self.context else ""
        return f"{self.name}: {self.message}{where}"


def check(code: int, message: str | None = None, context: str = "") -> None:
    """Raise `KafkaError` unless `code` is 0."""
    if code:
        raise KafkaError(code, message, context)
