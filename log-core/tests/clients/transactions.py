"""Transactions with the Python clients: confluent-kafka (librdkafka), kafka-python and aiokafka.

Usage: transactions.py BOOTSTRAP

Checks, each against the broker at BOOTSTRAP (started with
transaction.abort.timed.out.transaction.cleanup.interval.ms small):
- committed and aborted transactions: read_committed consumers of every client see only the
  committed records, in order; read_uncommitted ones see all of them;
- a zombie producer (same transactional.id, older epoch) is fenced;
- a transaction left open past transaction.timeout.ms is aborted by the broker, which fences
  its producer and moves the last stable offset past it;
- consume-transform-produce with send_offsets_to_transaction, killed with SIGKILL at random
  points and restarted until done: the output is the input transformed exactly once, and the
  group's committed offset is the input's end.

Exits non-zero on the first failure; prints "all checks passed" at the end.
"""

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid

from confluent_kafka import (
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

TIMEOUT = 30


def await_condition(what, condition, limit=TIMEOUT):
    deadline = time.time() + limit
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def create_topics(bootstrap, names, partitions=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(n, partitions, 1) for n in names]).values():
        future.result(TIMEOUT)


def read_all(bootstrap, topic, isolation, expected, partitions=1):
    """Values of `topic` from the start, until `expected` are read (then a little longer, to
    catch extras) or the time limit."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": str(uuid.uuid4()),
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values = []
    deadline = time.time() + TIMEOUT
    quiet_until = None
    while time.time() < deadline:
        msg = consumer.poll(0.2)
        if msg is None:
            if len(values) >= expected:
                quiet_until = quiet_until or time.time() + 1.0
                if time.time() > quiet_until:
                    break
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise AssertionError(f"consume error: {msg.error()}")
        values.append(msg.value().decode())
    consumer.close()
    return values


def last_stable_offset(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    tp = TopicPartition(topic, 0)
    committed = admin.list_offsets(
        {tp: OffsetSpec.latest()}, isolation_level=IsolationLevel.READ_COMMITTED
    )[tp].result(TIMEOUT)
    uncommitted = admin.list_offsets(
        {tp: OffsetSpec.latest()}, isolation_level=IsolationLevel.READ_UNCOMMITTED
    )[tp].result(TIMEOUT)
    return committed.offset, uncommitted.offset


def check_commit_and_abort(bootstrap):
    topic = "txn-basic"
    create_topics(bootstrap, [topic])
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "basic"})
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, value=f"c{i}")
    producer.commit_transaction(TIMEOUT)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, value=f"a{i}")
    producer.flush(TIMEOUT)  # written, then aborted
    producer.abort_transaction(TIMEOUT)
    producer.begin_transaction()
    for i in range(2):
        producer.produce(topic, value=f"d{i}")
    producer.commit_transaction(TIMEOUT)
    # An open transaction holds the last stable offset at its first record.
    producer.begin_transaction()
    producer.produce(topic, value="open")
    producer.flush(TIMEOUT)
    lso, end = last_stable_offset(bootstrap, topic)
    # 5 + marker + 3 + marker + 2 + marker = 13; the open record is at 13.
    assert (lso, end) == (13, 14), (lso, end)
    committed = ["c0", "c1", "c2", "c3", "c4", "d0", "d1"]
    got = read_all(bootstrap, topic, "read_committed", len(committed))
    assert got == committed, got
    producer.commit_transaction(TIMEOUT)
    committed.append("open")
    got = read_all(bootstrap, topic, "read_committed", len(committed))
    assert got == committed, got
    everything = ["c0", "c1", "c2", "c3", "c4", "a0", "a1", "a2", "d0", "d1", "open"]
    got = read_all(bootstrap, topic, "read_uncommitted", len(everything))
    assert got == everything, got
    return committed


def check_other_clients_read_committed(bootstrap, topic, committed):
    import kafka

    consumer = kafka.KafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    consumer.assign([kafka.TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    got = [m.value.decode() for m in consumer]
    consumer.close()
    assert got == committed, f"kafka-python read_committed: {got}"

    async def aio():
        import aiokafka

        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            tp = aiokafka.TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            got = []
            deadline = time.time() + TIMEOUT
            while len(got) < len(committed) and time.time() < deadline:
                batch = await consumer.getmany(tp, timeout_ms=500)
                got.extend(m.value.decode() for m in batch.get(tp, []))
            extra = await consumer.getmany(tp, timeout_ms=500)
            got.extend(m.value.decode() for m in extra.get(tp, []))
            return got
        finally:
            await consumer.stop()

    got = asyncio.run(aio())
    assert got == committed, f"aiokafka read_committed: {got}"


def check_kafka_python_and_aiokafka_producers(bootstrap):
    import kafka

    topic = "txn-py"
    create_topics(bootstrap, [topic])
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send(topic, b"kp-committed")
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send(topic, b"kp-aborted")
    producer.flush()
    producer.abort_transaction()
    producer.close()
    # kafka-python with its default settings (idempotent since 3.0).
    plain = kafka.KafkaProducer(bootstrap_servers=bootstrap)
    plain.send(topic, b"kp-plain").get(TIMEOUT)
    plain.close()

    async def aio():
        import aiokafka

        producer = aiokafka.AIOKafkaProducer(
            bootstrap_servers=bootstrap, transactional_id="aio"
        )
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send_and_wait(topic, b"aio-committed")
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"aio-aborted")
            await producer.abort_transaction()
        finally:
            await producer.stop()

    asyncio.run(aio())
    expected = ["kp-committed", "kp-plain", "aio-committed"]
    got = read_all(bootstrap, topic, "read_committed", len(expected))
    assert got == expected, got
    got = read_all(bootstrap, topic, "read_uncommitted", 5)
    assert sorted(got) == sorted(expected + ["kp-aborted", "aio-aborted"]), got


def is_fenced(err):
    return err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)


def check_zombie_fencing(bootstrap):
    topic = "txn-zombie"
    create_topics(bootstrap, [topic])
    old = Producer({"bootstrap.servers": bootstrap, "transactional.id": "zombie"})
    old.init_transactions(TIMEOUT)
    old.begin_transaction()
    old.produce(topic, value="from-the-zombie")
    old.flush(TIMEOUT)
    new = Producer({"bootstrap.servers": bootstrap, "transactional.id": "zombie"})
    # Aborts the zombie's open transaction and bumps the epoch.
    new.init_transactions(TIMEOUT)
    try:
        old.commit_transaction(TIMEOUT)
        raise AssertionError("the zombie committed")
    except KafkaException as e:
        err = e.args[0]
        assert is_fenced(err) or err.fatal(), f"unexpected error for the zombie: {err}"
    new.begin_transaction()
    new.produce(topic, value="from-the-new-instance")
    new.commit_transaction(TIMEOUT)
    got = read_all(bootstrap, topic, "read_committed", 1)
    assert got == ["from-the-new-instance"], got


def check_timeout_abort(bootstrap):
    topic = "txn-timeout"
    create_topics(bootstrap, [topic])
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": "slow",
            "transaction.timeout.ms": 2000,
        }
    )
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    producer.produce(topic, value="never-committed")
    producer.flush(TIMEOUT)
    assert last_stable_offset(bootstrap, topic) == (0, 1)
    # The broker aborts it: an ABORT marker at 1, and the LSO moves past it.
    await_condition(
        "the timed-out transaction to be aborted",
        lambda: last_stable_offset(bootstrap, topic) == (2, 2),
    )
    try:
        producer.commit_transaction(TIMEOUT)
        raise AssertionError("a timed-out transaction committed")
    except KafkaException as e:
        assert e.args[0].code() != KafkaError.NO_ERROR, e
    got = read_all(bootstrap, topic, "read_committed", 0)
    assert got == [], got


N_INPUT = 2000


def transform(value):
    return value.upper()


def run_loop(bootstrap, stop_after):
    """The consume-transform-produce loop: copies `eos-in` to `eos-out` transformed, in
    transactions of up to 20 records with the consumed offsets; exits once all input is copied
    (or after `stop_after` transactions)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "eos-loop",
            # A static member: its restart takes over its partitions at once, instead of
            # waiting for the killed instance's session to end.
            "group.instance.id": "eos-loop-1",
            "session.timeout.ms": 6000,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe(["eos-in"])
    producer = Producer(
        {"bootstrap.servers": bootstrap, "transactional.id": "eos-loop", "linger.ms": 5}
    )
    producer.init_transactions(TIMEOUT)
    done = 0
    idle_since = time.time()
    while done < stop_after:
        msgs = consumer.consume(20, 0.5)
        msgs = [m for m in msgs if not m.error()]
        if not msgs:
            assignment = consumer.assignment()
            if assignment:
                # Done once the group's committed offset (this loop's, or a killed
                # instance's) reached the end of the input.
                committed = consumer.committed(assignment, TIMEOUT)
                if sum(max(p.offset, 0) for p in committed) >= N_INPUT:
                    break
            if time.time() - idle_since > TIMEOUT:
                raise AssertionError("the loop made no progress")
            continue
        idle_since = time.time()
        producer.begin_transaction()
        for m in msgs:
            producer.produce("eos-out", key=m.key(), value=transform(m.value().decode()))
        producer.send_offsets_to_transaction(
            consumer.position(consumer.assignment()),
            consumer.consumer_group_metadata(),
            TIMEOUT,
        )
        producer.commit_transaction(TIMEOUT)
        done += 1
        print(f"committed {done}", flush=True)
    consumer.close()


def check_killed_consume_transform_produce(bootstrap):
    create_topics(bootstrap, ["eos-in", "eos-out"])
    seed = Producer({"bootstrap.servers": bootstrap})
    inputs = [f"record-{i:05d}" for i in range(N_INPUT)]
    for value in inputs:
        seed.produce("eos-in", key=value, value=value)
    assert seed.flush(TIMEOUT) == 0
    rng = random.Random(int(os.environ.get("SLUICE_TEST_SEED", "7")))
    kills = 0
    for attempt in range(40):
        child = subprocess.Popen(
            [sys.executable, __file__, bootstrap, "--loop"],
            stdout=subprocess.PIPE,
            text=True,
        )
        if attempt < 6:
            # Killed after a few transactions, at a random moment of the next one.
            commits = rng.randint(1, 8)
            lines = 0
            for line in child.stdout:
                if line.startswith("committed"):
                    lines += 1
                    if lines >= commits:
                        break
            time.sleep(rng.uniform(0, 0.05))
            child.kill()  # SIGKILL
            child.wait()
            kills += 1
            continue
        try:
            child.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            child.kill()
            raise AssertionError("the loop did not finish")
        assert child.returncode == 0, f"the loop failed ({child.returncode})"
        break
    else:
        raise AssertionError("the loop never finished")
    assert kills > 0, "the loop was never killed"
    expected = [transform(v) for v in inputs]
    got = read_all(bootstrap, "eos-out", "read_committed", len(expected))
    assert got == expected, (
        f"{len(got)} outputs, {len(set(got))} distinct, "
        f"{len(expected)} expected; first difference at "
        f"{next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)}"
    )
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "eos-loop"})
    committed = consumer.committed([TopicPartition("eos-in", 0)], TIMEOUT)
    consumer.close()
    assert committed[0].offset == N_INPUT, committed
    print(f"consume-transform-produce: killed {kills} times, {len(got)} outputs, exactly once")


def main():
    bootstrap = sys.argv[1]
    if "--loop" in sys.argv:
        run_loop(bootstrap, stop_after=10**9)
        return
    committed = check_commit_and_abort(bootstrap)
    check_other_clients_read_committed(bootstrap, "txn-basic", committed)
    check_kafka_python_and_aiokafka_producers(bootstrap)
    check_zombie_fencing(bootstrap)
    check_timeout_abort(bootstrap)
    check_killed_consume_transform_produce(bootstrap)
    print("all checks passed")


if __name__ == "__main__":
    main()
