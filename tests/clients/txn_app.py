"""A consume-transform-produce app with confluent-kafka, run as a subprocess by
`test_transactions.py` (which SIGKILLs it mid-stream and starts it again).

`python -m tests.clients.txn_app BOOTSTRAP IN OUT GROUP TXN_ID`: reads IN partition 0 from
the group's committed offset (read_committed), and in one transaction per batch writes
b"T:" + value to OUT and commits the consumed offsets with `send_offsets_to_transaction`.
Exits 0 once its position reaches IN's end; an instance that consumed nothing has no
position in librdkafka (OFFSET_INVALID) and goes by the committed offset instead (it
starts at the end when its predecessor committed the last batch before dying). Each
committed batch prints "committed N".

With `TXN_APP_DEBUG` set (e.g. `TXN_APP_DEBUG=eos,cgrp,protocol`), both clients log
librdkafka's debug contexts of that list to stderr, so a run that stalls shows what the
client was waiting for.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def main(bootstrap: str, source: str, sink: str, group: str, txn_id: str) -> int:
    from confluent_kafka import Consumer, Producer, TopicPartition

    debug: dict[str, Any] = {}
    if os.environ.get("TXN_APP_DEBUG"):
        debug = {"debug": os.environ["TXN_APP_DEBUG"]}
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed", **debug})
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                         "linger.ms": 5, **debug})
    producer.init_transactions(30)
    tp = TopicPartition(source, 0)
    consumer.assign([tp])  # from the committed offset (OffsetFetch with require_stable)
    while True:
        messages = [m for m in consumer.consume(25, timeout=0.5) if m.error() is None]
        if not messages:
            low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            position = consumer.position([tp])[0].offset
            if position < 0:
                # Nothing consumed yet, so librdkafka has no position (OFFSET_INVALID): this
                # instance starts where the last one committed, possibly already at the end.
                position = consumer.committed([tp], timeout=10)[0].offset
                if position < 0:  # nothing committed: auto.offset.reset=earliest
                    position = low
            if debug:
                print(f"idle position={position} high={high}", file=sys.stderr, flush=True)
            if position >= high:
                return 0
            continue
        producer.begin_transaction()
        for m in messages:
            producer.produce(sink, b"T:" + m.value())
        producer.flush(30)
        offsets = [TopicPartition(source, 0, messages[-1].offset() + 1)]
        producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        print(f"committed {messages[-1].offset() + 1}", flush=True)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
