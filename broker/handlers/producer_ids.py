"""InitProducerId (22), versions 0-5.

Kafka 4.4 advertises 0-5 (v6, two-phase commit, is unstable). What it answers, from
`KafkaApis.handleInitProducerIdRequest` and `TransactionCoordinator.handleInitProducerId`:

- v3+ carries the caller's current producer id and epoch (KIP-360). Both -1 is a first
  request; exactly one of them -1 is INVALID_REQUEST (producer id and epoch -1).
- A null transactional id (an idempotent producer) always gets a brand-new producer id at
  epoch 0, whatever id and epoch it sent: Kafka "blindly accepts" it. Idempotent producers
  bump their epoch themselves and only come back here when the epoch would overflow.
- An empty transactional id is INVALID_REQUEST; a transaction timeout outside
  (0, `transaction.max.timeout.ms`] is INVALID_TRANSACTION_TIMEOUT.
- Any other transactional id goes to the transaction coordinator
  (`broker.transactions`, `TransactionCoordinator.init_producer_id`): a new id starts at
  epoch 0, each InitProducerId bumps the epoch (fencing the previous producer), an open
  transaction is aborted first (CONCURRENT_TRANSACTIONS: the client retries), an exhausted
  epoch rotates to a new producer id, a stale v3+ producer id/epoch is PRODUCER_FENCED, and
  NOT_COORDINATOR until `__transaction_state` exists (FindCoordinator creates it).
- Before v4, PRODUCER_FENCED is answered as INVALID_PRODUCER_EPOCH (older clients do not
  know it), as Kafka's `KafkaApis` does.

Errors carry producer id -1 and epoch -1. Allocation is `broker.producer_ids`
(`broker/producer_ids.py`): ids are never reused, restarts included.
"""

from __future__ import annotations

import logging

from broker.context import RequestContext
from broker.handlers import handles
from broker.producer_ids import ProducerIdsExhausted
from protocol.errors import ErrorCode
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.init_producer_id_response import InitProducerIdResponse

log = logging.getLogger("odradek.init_producer_id")

API_KEY = 22
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1


def _error(code: ErrorCode) -> InitProducerIdResponse:
    return InitProducerIdResponse(
        error_code=code, producer_id=NO_PRODUCER_ID, producer_epoch=NO_PRODUCER_EPOCH)


@handles(API_KEY, 0, 5)
def handle_init_producer_id(ctx: RequestContext, request: InitProducerIdRequest
                            ) -> InitProducerIdResponse:
    producer_id, epoch = request.producer_id, request.producer_epoch
    if (producer_id == NO_PRODUCER_ID) != (epoch == NO_PRODUCER_EPOCH):
        return _error(ErrorCode.INVALID_REQUEST)
    transactional_id = request.transactional_id
    if transactional_id is None:
        try:
            new_id = ctx.broker.producer_ids.generate()
        except ProducerIdsExhausted as exc:
            log.error("%s", exc)
            return _error(ErrorCode.UNKNOWN_SERVER_ERROR)
        return InitProducerIdResponse(error_code=ErrorCode.NONE, producer_id=new_id,
                                      producer_epoch=0)
    expected = None if producer_id == NO_PRODUCER_ID else (producer_id, epoch)
    try:
        result = ctx.broker.transactions.coordinator.init_producer_id(
            transactional_id, request.transaction_timeout_ms, expected)
    except ProducerIdsExhausted as exc:
        log.error("%s", exc)
        return _error(ErrorCode.UNKNOWN_SERVER_ERROR)
    error = result.error
    if error is ErrorCode.PRODUCER_FENCED and ctx.api_version < 4:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    if error is not ErrorCode.NONE:
        return _error(error)
    return InitProducerIdResponse(error_code=ErrorCode.NONE, producer_id=result.producer_id,
                                  producer_epoch=result.producer_epoch)
