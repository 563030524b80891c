"""Transactions: AddPartitionsToTxn 0-5, AddOffsetsToTxn 0-4, EndTxn 0-4, TxnOffsetCommit 0-4,
DescribeTransactions 0, ListTransactions 0-2.

The state machine is `broker.transactions.coordinator`; these handlers translate requests
and responses per version as Kafka 4.x's `KafkaApis` does. Transactions v1 only (KIP-890
part 1): EndTxn v5 and TxnOffsetCommit v5 belong to transactions v2, which clients use only
when `transaction.version` >= 2 is finalized, and we advertise no such feature.
WriteTxnMarkers (27) is not served: one broker writes its markers itself.

- AddPartitionsToTxn v0-3 (clients): one transaction. An internal topic is
  TOPIC_AUTHORIZATION_FAILED (Kafka leaves internal topics out of the authorized ones), an
  unknown topic or partition UNKNOWN_TOPIC_OR_PARTITION, and then every other partition is
  OPERATION_NOT_ATTEMPTED; otherwise the coordinator's one error for all partitions.
  v4+ (broker-to-broker in Kafka) batches transactions, each either added or, with
  `verify_only`, checked (KIP-890: partitions not in the transaction are
  TRANSACTION_ABORTABLE from v5, INVALID_TXN_STATE in v4, which predates that code).
- AddOffsetsToTxn adds the group's `__consumer_offsets` partition to the transaction.
- TxnOffsetCommit: unknown topics or partitions are UNKNOWN_TOPIC_OR_PARTITION; with
  `transaction.partition.verification.enable` the group's offsets partition must be in the
  transaction (PRODUCER_FENCED answered as INVALID_PRODUCER_EPOCH, a partition not added as
  INVALID_TXN_STATE before v4 and TRANSACTION_ABORTABLE from v4, as Kafka's
  `AddPartitionsToTxnManager` maps them); then the group coordinator validates the member
  (`GroupCoordinator.commit_txn_offsets`) and writes the offsets, pending until the marker.
- Before v2 of AddPartitionsToTxn, AddOffsetsToTxn and EndTxn, PRODUCER_FENCED is answered
  as INVALID_PRODUCER_EPOCH (older clients do not know it).
- DescribeTransactions: per id, TRANSACTIONAL_ID_NOT_FOUND for unknown ids, INVALID_REQUEST
  for an empty one, NOT_COORDINATOR before `__transaction_state` exists.
- ListTransactions: state filters (unknown names come back in `unknown_state_filters`),
  producer ids, v1 a minimum duration, v2 a regular expression matching the whole id
  (INVALID_REGULAR_EXPRESSION when it does not compile).
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.context import RequestContext
from broker.groups.coordinator import OffsetAndMetadata
from broker.groups.records import OFFSETS_TOPIC, partition_for
from broker.handlers import handles
from broker.metadata import INTERNAL_TOPICS
from broker.transactions.state import TopicPartition
from protocol.errors import ErrorCode
from protocol.messages.add_offsets_to_txn_request import AddOffsetsToTxnRequest
from protocol.messages.add_offsets_to_txn_response import AddOffsetsToTxnResponse
from protocol.messages.add_partitions_to_txn_request import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTopic,
    AddPartitionsToTxnTransaction,
)
from protocol.messages.add_partitions_to_txn_response import (
    AddPartitionsToTxnPartitionResult,
    AddPartitionsToTxnResponse,
    AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
)
from protocol.messages.describe_transactions_request import DescribeTransactionsRequest
from protocol.messages.describe_transactions_response import (
    DescribeTransactionsResponse,
    TopicData,
)
from protocol.messages.describe_transactions_response import (
    TransactionState as DescribedState,
)
from protocol.messages.end_txn_request import EndTxnRequest
from protocol.messages.end_txn_response import EndTxnResponse
from protocol.messages.list_transactions_request import ListTransactionsRequest
from protocol.messages.list_transactions_response import ListTransactionsResponse
from protocol.messages.list_transactions_response import TransactionState as ListedState
from protocol.messages.txn_offset_commit_request import TxnOffsetCommitRequest
from protocol.messages.txn_offset_commit_response import (
    TxnOffsetCommitResponse,
    TxnOffsetCommitResponsePartition,
    TxnOffsetCommitResponseTopic,
)

ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT = 24, 25, 26, 28
DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS = 65, 66


def _fenced_for_old(error: ErrorCode, version: int, first_with_fenced: int = 2) -> ErrorCode:
    if error is ErrorCode.PRODUCER_FENCED and version < first_with_fenced:
        return ErrorCode.INVALID_PRODUCER_EPOCH
    return error


def _partition_exists(ctx: RequestContext, topic: str, partition: int) -> bool:
    found = ctx.broker.topics.get(topic)
    return found is not None and 0 <= partition < found.partitions


# -- AddPartitionsToTxn ----------------------------------------------------------------------


def _topic_results(order: list[TopicPartition], errors: dict[TopicPartition, ErrorCode]
                   ) -> list[AddPartitionsToTxnTopicResult]:
    by_topic: dict[str, list[AddPartitionsToTxnPartitionResult]] = {}
    for topic, partition in order:
        by_topic.setdefault(topic, []).append(AddPartitionsToTxnPartitionResult(
            partition_index=partition, partition_error_code=errors[(topic, partition)]))
    return [AddPartitionsToTxnTopicResult(name=name, results_by_partition=results)
            for name, results in by_topic.items()]


def _add_one(ctx: RequestContext, txn: AddPartitionsToTxnTransaction, version: int
             ) -> list[AddPartitionsToTxnTopicResult]:
    order = list(dict.fromkeys((t.name, p) for t in txn.topics for p in t.partitions))
    refused: dict[TopicPartition, ErrorCode] = {}
    for topic, partition in order:
        if version < 4 and topic in INTERNAL_TOPICS:
            refused[(topic, partition)] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        elif not _partition_exists(ctx, topic, partition):
            refused[(topic, partition)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if refused:
        errors = {tp: refused.get(tp, ErrorCode.OPERATION_NOT_ATTEMPTED) for tp in order}
        return _topic_results(order, errors)
    coordinator = ctx.broker.transactions.coordinator
    if txn.verify_only:
        errors = coordinator.verify_partitions(txn.transactional_id, txn.producer_id,
                                               txn.producer_epoch, order)
        if version < 5:
            errors = {tp: ErrorCode.INVALID_TXN_STATE
                      if e is ErrorCode.TRANSACTION_ABORTABLE else e
                      for tp, e in errors.items()}
        return _topic_results(order, errors)
    error = coordinator.add_partitions(txn.transactional_id, txn.producer_id,
                                       txn.producer_epoch, order)
    return _topic_results(order, dict.fromkeys(order, _fenced_for_old(error, version)))


@handles(ADD_PARTITIONS_TO_TXN, 0, 5)
def handle_add_partitions_to_txn(ctx: RequestContext, request: AddPartitionsToTxnRequest
                                 ) -> AddPartitionsToTxnResponse:
    version = ctx.api_version
    if version < 4:
        txn = AddPartitionsToTxnTransaction(
            transactional_id=request.v3_and_below_transactional_id,
            producer_id=request.v3_and_below_producer_id,
            producer_epoch=request.v3_and_below_producer_epoch,
            topics=[AddPartitionsToTxnTopic(name=t.name, partitions=list(t.partitions))
                    for t in request.v3_and_below_topics])
        return AddPartitionsToTxnResponse(results_by_topic_v3_and_below=_add_one(ctx, txn,
                                                                                 version))
    return AddPartitionsToTxnResponse(error_code=ErrorCode.NONE, results_by_transaction=[
        AddPartitionsToTxnResult(transactional_id=txn.transactional_id,
                                 topic_results=_add_one(ctx, txn, version))
        for txn in request.transactions])


# -- AddOffsetsToTxn / EndTxn -------------------------------------------------------------


@handles(ADD_OFFSETS_TO_TXN, 0, 4)
def handle_add_offsets_to_txn(ctx: RequestContext, request: AddOffsetsToTxnRequest
                              ) -> AddOffsetsToTxnResponse:
    partitions = ctx.broker.groups.ensure_offsets_topic()
    tp = (OFFSETS_TOPIC, partition_for(request.group_id, partitions))
    error = ctx.broker.transactions.coordinator.add_partitions(
        request.transactional_id, request.producer_id, request.producer_epoch, [tp])
    return AddOffsetsToTxnResponse(error_code=_fenced_for_old(error, ctx.api_version))


@handles(END_TXN, 0, 4)
def handle_end_txn(ctx: RequestContext, request: EndTxnRequest) -> EndTxnResponse:
    error = ctx.broker.transactions.coordinator.end_txn(
        request.transactional_id, request.producer_id, request.producer_epoch,
        request.committed)
    return EndTxnResponse(error_code=_fenced_for_old(error, ctx.api_version))


# -- TxnOffsetCommit ---------------------------------------------------------------------


def _verify_offsets_partition(ctx: RequestContext, request: TxnOffsetCommitRequest
                              ) -> ErrorCode:
    """KIP-890 verification of the group's offsets partition, with Kafka's error mapping
    for TxnOffsetCommit."""
    if not ctx.broker.config["transaction.partition.verification.enable"]:
        return ErrorCode.NONE
    partitions = ctx.broker.groups.ensure_offsets_topic()
    tp = (OFFSETS_TOPIC, partition_for(request.group_id, partitions))
    error = ctx.broker.transactions.verify_partitions(
        request.transactional_id, request.producer_id, request.producer_epoch, [tp])[tp]
    if error is ErrorCode.PRODUCER_FENCED:
        return ErrorCode.INVALID_PRODUCER_EPOCH
    if error is ErrorCode.TRANSACTION_ABORTABLE and ctx.api_version < 4:
        return ErrorCode.INVALID_TXN_STATE
    return error


@handles(TXN_OFFSET_COMMIT, 0, 4)
def handle_txn_offset_commit(ctx: RequestContext, request: TxnOffsetCommitRequest
                             ) -> TxnOffsetCommitResponse:
    version = ctx.api_version
    now = ctx.broker.clock()
    errors: dict[TopicPartition, ErrorCode] = {}
    to_commit: dict[TopicPartition, OffsetAndMetadata] = {}
    for topic in request.topics:
        for p in topic.partitions:
            tp = (topic.name, p.partition_index)
            if not _partition_exists(ctx, *tp):
                errors[tp] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            to_commit[tp] = OffsetAndMetadata(
                p.committed_offset, p.committed_leader_epoch if version >= 2 else -1,
                p.committed_metadata or "", now)
    if to_commit:
        if not request.group_id:
            errors.update(dict.fromkeys(to_commit, ErrorCode.INVALID_GROUP_ID))
        else:
            error = _verify_offsets_partition(ctx, request)
            if error is not ErrorCode.NONE:
                errors.update(dict.fromkeys(to_commit, error))
            else:
                errors.update(ctx.broker.groups.coordinator.commit_txn_offsets(
                    group_id=request.group_id, producer_id=request.producer_id,
                    producer_epoch=request.producer_epoch,
                    generation_id=request.generation_id if version >= 3 else -1,
                    member_id=request.member_id if version >= 3 else "",
                    group_instance_id=request.group_instance_id if version >= 3 else None,
                    api_version=version, offsets=to_commit))
    return TxnOffsetCommitResponse(topics=[
        TxnOffsetCommitResponseTopic(name=topic.name, partitions=[
            TxnOffsetCommitResponsePartition(
                partition_index=p.partition_index,
                error_code=errors.get((topic.name, p.partition_index), ErrorCode.NONE))
            for p in topic.partitions])
        for topic in request.topics])


# -- DescribeTransactions / ListTransactions -----------------------------------------------


def _topic_data(partitions: Iterable[TopicPartition]) -> list[TopicData]:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(partitions):
        by_topic.setdefault(topic, []).append(partition)
    return [TopicData(topic=t, partitions=ps) for t, ps in by_topic.items()]


@handles(DESCRIBE_TRANSACTIONS, 0, 0)
def handle_describe_transactions(ctx: RequestContext, request: DescribeTransactionsRequest
                                 ) -> DescribeTransactionsResponse:
    coordinator = ctx.broker.transactions.coordinator
    states = []
    for txn_id in request.transactional_ids:
        error, meta = coordinator.describe(txn_id)
        if meta is None:
            states.append(DescribedState(error_code=error, transactional_id=txn_id))
            continue
        states.append(DescribedState(
            error_code=ErrorCode.NONE, transactional_id=txn_id,
            transaction_state=meta.state.display, transaction_timeout_ms=meta.txn_timeout_ms,
            transaction_start_time_ms=meta.txn_start_timestamp, producer_id=meta.producer_id,
            producer_epoch=meta.producer_epoch, topics=_topic_data(meta.partitions)))
    return DescribeTransactionsResponse(transaction_states=states)


@handles(LIST_TRANSACTIONS, 0, 2)
def handle_list_transactions(ctx: RequestContext, request: ListTransactionsRequest
                             ) -> ListTransactionsResponse:
    version = ctx.api_version
    error, unknown, found = ctx.broker.transactions.coordinator.list_transactions(
        request.state_filters, request.producer_id_filters,
        request.duration_filter if version >= 1 else -1,
        request.transactional_id_pattern if version >= 2 else None)
    return ListTransactionsResponse(
        error_code=error, unknown_state_filters=unknown,
        transaction_states=[ListedState(transactional_id=m.transactional_id,
                                        producer_id=m.producer_id,
                                        transaction_state=m.state.display)
                            for m in sorted(found, key=lambda m: m.transactional_id)])
