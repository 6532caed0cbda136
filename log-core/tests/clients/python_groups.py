"""kafka-python and aiokafka consumer groups against a Sluice broker: each joins a group,
consumes a topic, commits, and a second consumer of the group resumes after the commit;
ListGroups and DescribeGroups through their admin clients.

Usage: python3 python_groups.py HOST:PORT   (broker started with group.initial.rebalance.delay.ms=0)
"""
import asyncio
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

BOOTSTRAP = sys.argv[1]


def produce(topic, values):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=False)
    for value in values:
        producer.send(topic, value)
    producer.flush(30)
    producer.close()


def consume_n(consumer, n):
    got = []
    deadline = time.monotonic() + 60
    while len(got) < n:
        assert time.monotonic() < deadline, f"only {len(got)} of {n} records"
        for records in consumer.poll(timeout_ms=500).values():
            got += [r.value for r in records]
    return got


def kafka_python():
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics([NewTopic("kp-group", 3, 1)])
    produce("kp-group", [f"a-{i}".encode() for i in range(30)])
    consumer = KafkaConsumer("kp-group", bootstrap_servers=BOOTSTRAP, group_id="kp", auto_offset_reset="earliest",
                             enable_auto_commit=False)
    first = consume_n(consumer, 30)
    assert sorted(first) == sorted(f"a-{i}".encode() for i in range(30))
    consumer.commit()
    listed = admin.list_groups()
    assert any("kp" in str(group) for group in listed), listed
    described = admin.describe_groups(["kp"])
    assert "Stable" in str(described), described
    consumer.close()
    produce("kp-group", [f"b-{i}".encode() for i in range(10)])
    resumed = KafkaConsumer("kp-group", bootstrap_servers=BOOTSTRAP, group_id="kp", auto_offset_reset="earliest",
                            enable_auto_commit=False)
    second = consume_n(resumed, 10)
    assert sorted(second) == sorted(f"b-{i}".encode() for i in range(10)), second
    resumed.close()
    offsets = admin.list_group_offsets({"kp": None})
    assert sum(m.offset for m in offsets["kp"].values()) == 30, offsets  # the resumed one did not commit
    admin.close()


async def aiokafka_group():
    from aiokafka import AIOKafkaConsumer
    produce("ak-group", [f"c-{i}".encode() for i in range(20)])
    consumer = AIOKafkaConsumer("ak-group", bootstrap_servers=BOOTSTRAP, group_id="ak", auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    got = []
    deadline = time.monotonic() + 60
    while len(got) < 20:
        assert time.monotonic() < deadline, f"only {len(got)} records"
        for records in (await consumer.getmany(timeout_ms=500)).values():
            got += [r.value for r in records]
    await consumer.commit()
    committed = await consumer.committed(next(iter(consumer.assignment())))
    assert committed == 20, committed
    await consumer.stop()


kafka_python()
asyncio.run(aiokafka_group())
print("python groups: all checks passed")
