"""kafka-python against a Sluice broker: admin, produce, consume.

Usage: python3 kafka_python_client.py HOST:PORT   (the broker runs with message.max.bytes=100000)
"""
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic
from kafka.errors import (
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

BOOTSTRAP = sys.argv[1]
# kafka-python 3 makes producers idempotent by default; Sluice has no InitProducerId yet (the
# idempotent producer is its own issue), so these producers opt out.
IDEMPOTENCE = {"enable_idempotence": False}
TIMEOUT_MS = 30_000


def expect_error(error_type, call):
    try:
        result = call()
    except error_type:
        return
    # kafka-python returns per-topic errors in the response for some calls.
    errors = [e for e in getattr(result, "topic_errors", []) + getattr(result, "topic_error_codes", []) if e[1] != 0]
    assert errors, f"expected {error_type.__name__}, got {result}"
    assert errors[0][1] == error_type.errno, (errors, error_type)


def describe_values(topic):
    described = admin_client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    return {name: entry["value"] for name, entry in described["topic"][topic].items()}


def main():
    global admin_client
    admin = admin_client = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=TIMEOUT_MS)
    admin.create_topics([NewTopic("kp-admin", 2, 1, topic_configs={"cleanup.policy": "compact"})])
    assert "kp-admin" in admin.list_topics()
    expect_error(TopicAlreadyExistsError, lambda: admin.create_topics([NewTopic("kp-admin", 1, 1)]))
    expect_error(InvalidTopicError, lambda: admin.create_topics([NewTopic("bad name!", 1, 1)]))
    expect_error(InvalidReplicationFactorError, lambda: admin.create_topics([NewTopic("kp-rf", 1, 3)]))
    expect_error(InvalidPartitionsError, lambda: admin.create_topics([NewTopic("kp-parts", 0, 1)]))
    values = describe_values("kp-admin")
    assert values["cleanup.policy"] == "compact", values
    # kafka-python 3 alters incrementally by default (IncrementalAlterConfigs) ...
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-admin", configs={"retention.ms": "7000"})])
    values = describe_values("kp-admin")
    assert values["retention.ms"] == "7000" and values["cleanup.policy"] == "compact", values
    # ... and with AlterConfigs it resends the other overrides itself (AlterConfigs replaces them all).
    admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, "kp-admin", configs={"retention.ms": "8000"})], incremental=False)
    values = describe_values("kp-admin")
    assert values["retention.ms"] == "8000" and values["cleanup.policy"] == "compact", values
    admin.create_partitions({"kp-admin": NewPartitions(4)})
    assert len(admin.describe_topics(["kp-admin"])[0]["partitions"]) == 4
    admin.delete_topics(["kp-admin"])
    assert "kp-admin" not in admin.list_topics()
    expect_error(UnknownTopicOrPartitionError, lambda: admin.delete_topics(["kp-missing"]))
    admin.create_topics([NewTopic("kp-data", 1, 1)])

    expected = []
    for codec in [None, "gzip", "snappy", "lz4", "zstd"]:
        for acks in ["all", 1, 0]:
            producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks=acks, compression_type=codec, linger_ms=5, **IDEMPOTENCE)
            values = [f"{codec}-{acks}-{i}".encode() for i in range(50)]
            futures = [producer.send("kp-data", key=b"k", value=v) for v in values]
            producer.flush(timeout=30)
            for future in futures:
                future.get(timeout=30)
            producer.close()
            expected += values

    tp = TopicPartition("kp-data", 0)
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None, enable_auto_commit=False, request_timeout_ms=TIMEOUT_MS)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    got = []
    deadline = time.monotonic() + 30
    while len(got) < len(expected) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            got += [(r.offset, r.value) for r in records]
    assert [v for _, v in got] == expected, (len(got), len(expected))
    assert [o for o, _ in got] == list(range(len(expected)))

    middle_ms = int(time.time() * 1000) + 1
    while int(time.time() * 1000) <= middle_ms:
        pass
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", **IDEMPOTENCE)
    producer.send("kp-data", b"after").get(timeout=30)
    found = consumer.offsets_for_times({tp: middle_ms})[tp]
    assert found.offset == len(expected), found
    assert consumer.end_offsets([tp])[tp] == len(expected) + 1
    assert consumer.beginning_offsets([tp])[tp] == 0

    producer.send("kp-big", b"x" * 99_000).get(timeout=30)
    try:
        producer.send("kp-big", b"y" * 200_000).get(timeout=30)
        raise AssertionError("a message over message.max.bytes should fail")
    except MessageSizeTooLargeError:
        pass
    producer.close()
    consumer.close()
    admin.close()
    print("kafka-python: all checks passed")


main()
