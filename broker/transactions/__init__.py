"""The transaction coordinator: state machine, `__transaction_state` records, markers,
timers (`state`, `coordinator`, `log`, `service`)."""

from broker.transactions.service import TransactionService

__all__ = ["TransactionService"]
