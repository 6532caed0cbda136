"""aiokafka against a Sluice broker: admin, produce, consume.

Usage: python3 aiokafka_client.py HOST:PORT   (the broker runs with message.max.bytes=100000)
"""
import asyncio
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import MessageSizeTooLargeError, TopicAlreadyExistsError

BOOTSTRAP = sys.argv[1]


async def main():
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    await admin.create_topics([NewTopic("ak-admin", 2, 1, topic_configs={"retention.ms": "60000"})])
    assert "ak-admin" in await admin.list_topics()
    try:
        result = await admin.create_topics([NewTopic("ak-admin", 1, 1)])
        codes = [e[1] for e in result.topic_errors]
        assert codes == [TopicAlreadyExistsError.errno], result
    except TopicAlreadyExistsError:
        pass
    await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "ak-admin", configs={"retention.ms": "9000"})])
    [described] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "ak-admin")])
    [resource] = described.resources
    values = {entry[0]: entry[1] for entry in resource[4]}
    assert values["retention.ms"] == "9000", values
    await admin.delete_topics(["ak-admin"])
    assert "ak-admin" not in await admin.list_topics()
    await admin.create_topics([NewTopic("ak-data", 1, 1)])
    await admin.close()

    expected = []
    for codec in [None, "gzip", "snappy", "lz4", "zstd"]:
        for acks in ["all", 1, 0]:
            producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks=acks, compression_type=codec, linger_ms=5)
            await producer.start()
            values = [f"{codec}-{acks}-{i}".encode() for i in range(50)]
            futures = [await producer.send("ak-data", key=b"k", value=v) for v in values]
            await asyncio.gather(*futures)
            await producer.stop()
            expected += values

    tp = TopicPartition("ak-data", 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None, enable_auto_commit=False)
    await consumer.start()
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    got = []
    deadline = time.monotonic() + 30
    while len(got) < len(expected) and time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            got += [(r.offset, r.value) for r in records]
    assert [v for _, v in got] == expected, (len(got), len(expected))
    assert [o for o, _ in got] == list(range(len(expected)))

    middle_ms = int(time.time() * 1000) + 1
    while int(time.time() * 1000) <= middle_ms:
        pass
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    await producer.send_and_wait("ak-data", b"after")
    found = (await consumer.offsets_for_times({tp: middle_ms}))[tp]
    assert found.offset == len(expected), found

    await producer.send_and_wait("ak-big", b"x" * 99_000)
    try:
        await producer.send_and_wait("ak-big", b"y" * 200_000)
        raise AssertionError("a message over message.max.bytes should fail")
    except MessageSizeTooLargeError:
        pass
    await producer.stop()
    await consumer.stop()
    print("aiokafka: all checks passed")


asyncio.run(main())
