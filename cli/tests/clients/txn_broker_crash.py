"""A transaction across a broker killed with kill -9 (confluent-kafka).

Usage: txn_broker_crash.py BOOTSTRAP

Opens a transaction and writes 100 records (flushed), prints OPEN, then keeps 1000 more in
flight and prints SENDING. The test kills the broker with SIGKILL and restarts it, then writes
`restarted` on stdin. Checks that the open transaction survived (the last stable offset is
still its first offset), that the producer's retries after the restart wrote nothing twice,
and that after the commit a read_committed consumer reads every record exactly once, in order.
Prints "all checks passed".
"""

import sys
import threading
import time
import uuid

from confluent_kafka import Consumer, IsolationLevel, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

TIMEOUT = 60
TOPIC = "crash-txn"


def offsets(admin):
    tp = TopicPartition(TOPIC, 0)
    out = []
    for level in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
        out.append(admin.list_offsets({tp: OffsetSpec.latest()}, isolation_level=level)[tp].result(TIMEOUT).offset)
    return tuple(out)


def main():
    bootstrap = sys.argv[1]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(TOPIC, 1, 1)]).values():
        f.result(TIMEOUT)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": "crash",
            "message.timeout.ms": 120000,
            "transaction.timeout.ms": 120000,
        }
    )
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    values = [f"v{i:04d}" for i in range(1100)]
    for v in values[:100]:
        producer.produce(TOPIC, value=v)
    assert producer.flush(TIMEOUT) == 0
    lso, end = offsets(admin)
    assert (lso, end) == (0, 100), (lso, end)
    print("OPEN", flush=True)
    for v in values[100:]:
        producer.produce(TOPIC, value=v)
        producer.poll(0)
    print("SENDING", flush=True)
    restarted = threading.Event()

    def wait_for_restart():
        sys.stdin.readline()
        restarted.set()

    threading.Thread(target=wait_for_restart, daemon=True).start()
    deadline = time.time() + TIMEOUT
    while not restarted.is_set():
        producer.poll(0.1)
        assert time.time() < deadline, "no restart"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # The open transaction was restored: read_committed consumers still stop at its start.
    deadline = time.time() + TIMEOUT
    while True:
        try:
            lso, end = offsets(admin)
            break
        except Exception:
            assert time.time() < deadline, "the restarted broker did not answer"
            time.sleep(0.2)
    assert lso == 0, f"last stable offset {lso} after the restart (end {end})"
    assert producer.flush(TIMEOUT) == 0, "records left unsent"
    producer.commit_transaction(TIMEOUT)
    lso, end = offsets(admin)
    assert lso == end == len(values) + 1, (lso, end)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": str(uuid.uuid4()),
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    got = []
    deadline = time.time() + TIMEOUT
    while len(got) < len(values) and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got.append(msg.value().decode())
    consumer.close()
    assert got == values, f"{len(got)} read, {len(set(got))} distinct, {len(values)} written"
    print("all checks passed", flush=True)


if __name__ == "__main__":
    main()
