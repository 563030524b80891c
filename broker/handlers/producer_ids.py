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
- Any other transactional id needs the transaction coordinator, which Odradek does not run
  yet (and FindCoordinator is not served, so real clients cannot get here). We answer
  NOT_COORDINATOR, which is what Kafka 4.4 answers when its transaction state partitions
  are not loaded (before `__transaction_state` exists; checked against a running 4.4).

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
    if transactional_id == "":
        return _error(ErrorCode.INVALID_REQUEST)
    timeout = request.transaction_timeout_ms
    if not 0 < timeout <= ctx.broker.config["transaction.max.timeout.ms"]:
        return _error(ErrorCode.INVALID_TRANSACTION_TIMEOUT)
    return _error(ErrorCode.NOT_COORDINATOR)
