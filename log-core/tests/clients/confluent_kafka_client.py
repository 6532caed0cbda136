"""confluent-kafka (librdkafka from PyPI) against a Sluice broker: admin, produce, consume.

Usage: python3 confluent_kafka_client.py HOST:PORT   (the broker runs with message.max.bytes=100000)
"""
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic

BOOTSTRAP = sys.argv[1]
TIMEOUT = 30


def admin_checks(admin):
    md = admin.list_topics(timeout=TIMEOUT)
    assert len(md.brokers) == 1, md.brokers
    futures = admin.create_topics([NewTopic("ck-admin", 3, 1, config={"retention.ms": "60000"})])
    futures["ck-admin"].result(TIMEOUT)
    md = admin.list_topics(timeout=TIMEOUT)
    assert len(md.topics["ck-admin"].partitions) == 3
    expected = {
        "ck-admin": KafkaError.TOPIC_ALREADY_EXISTS,
        "bad name!": KafkaError.TOPIC_EXCEPTION,
    }
    for name, code in expected.items():
        try:
            admin.create_topics([NewTopic(name, 1, 1)])[name].result(TIMEOUT)
            raise AssertionError(f"creating {name!r} should fail")
        except KafkaException as err:
            assert err.args[0].code() == code, (name, err)
    for topic, code in [
        (NewTopic("ck-rf", 1, 3), KafkaError.INVALID_REPLICATION_FACTOR),
        (NewTopic("ck-parts", 0, 1), KafkaError.INVALID_PARTITIONS),
        (NewTopic("ck-cfg", 1, 1, config={"retention.ms": "soon"}), KafkaError.INVALID_CONFIG),
    ]:
        try:
            admin.create_topics([topic])[topic.topic].result(TIMEOUT)
            raise AssertionError(f"creating {topic.topic!r} should fail")
        except KafkaException as err:
            assert err.args[0].code() == code, (topic.topic, err)
    configs_checks(admin)
    admin.delete_topics(["ck-admin"])["ck-admin"].result(TIMEOUT)
    assert "ck-admin" not in admin.list_topics(timeout=TIMEOUT).topics
    try:
        admin.delete_topics(["ck-missing"])["ck-missing"].result(TIMEOUT)
        raise AssertionError("deleting a missing topic should fail")
    except KafkaException as err:
        assert err.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err


def configs_checks(admin):
    topic = ConfigResource("topic", "ck-admin")
    described = admin.describe_configs([topic])[topic].result(TIMEOUT)
    assert described["retention.ms"].value == "60000"
    assert described["retention.ms"].source == 1  # DYNAMIC_TOPIC_CONFIG
    assert described["segment.bytes"].value == "1073741824"
    change = ConfigResource("topic", "ck-admin", incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    admin.incremental_alter_configs([change])[change].result(TIMEOUT)
    described = admin.describe_configs([topic])[topic].result(TIMEOUT)
    assert described["cleanup.policy"].value == "compact"
    assert described["retention.ms"].source == 5, described["retention.ms"]  # back to the default
    bad = ConfigResource("topic", "ck-admin", incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    try:
        admin.incremental_alter_configs([bad])[bad].result(TIMEOUT)
        raise AssertionError("a bad config value should fail")
    except KafkaException as err:
        assert err.args[0].code() == KafkaError.INVALID_CONFIG, err
    broker = ConfigResource("broker", "1")
    described = admin.describe_configs([broker])[broker].result(TIMEOUT)
    assert described["message.max.bytes"].value == "100000", described["message.max.bytes"]
    admin.create_partitions([NewPartitions("ck-admin", 5)])["ck-admin"].result(TIMEOUT)
    assert len(admin.list_topics(timeout=TIMEOUT).topics["ck-admin"].partitions) == 5
    try:
        admin.create_partitions([NewPartitions("ck-admin", 2)])["ck-admin"].result(TIMEOUT)
        raise AssertionError("shrinking partitions should fail")
    except KafkaException as err:
        assert err.args[0].code() == KafkaError.INVALID_PARTITIONS, err
    cluster = admin.describe_cluster().result(TIMEOUT)
    assert [node.id for node in cluster.nodes] == [1], cluster


def produce(topic, values, acks, codec, extra=None):
    config = {"bootstrap.servers": BOOTSTRAP, "acks": acks, "compression.type": codec, "linger.ms": 5}
    config.update(extra or {})
    producer = Producer(config)
    errors = []
    for value in values:
        producer.produce(topic, value=value, key=b"k", on_delivery=lambda err, msg: err and errors.append(err))
    assert producer.flush(TIMEOUT) == 0
    return errors


def consume(topic, start, count):
    consumer = Consumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": "unused-assign-only",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    })
    consumer.assign([TopicPartition(topic, 0, start)])
    got = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < count and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        got.append((msg.offset(), msg.value()))
    consumer.close()
    return got


def main():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin_checks(admin)
    admin.create_topics([NewTopic("ck-data", 1, 1)])["ck-data"].result(TIMEOUT)
    expected = []
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        for acks in ["all", "1", "0"]:
            values = [f"{codec}-{acks}-{i}".encode() for i in range(50)]
            assert produce("ck-data", values, acks, codec) == []
            expected += values
    got = consume("ck-data", -2, len(expected))  # OFFSET_BEGINNING
    assert [v for _, v in got] == expected, (len(got), len(expected))
    assert [o for o, _ in got] == list(range(len(expected)))

    middle_ms = int(time.time() * 1000) + 1
    while int(time.time() * 1000) <= middle_ms:
        pass
    assert produce("ck-data", [b"after-1", b"after-2"], "all", "lz4") == []
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "unused"})
    [found] = consumer.offsets_for_times([TopicPartition("ck-data", 0, middle_ms)], timeout=TIMEOUT)
    consumer.close()
    assert found.offset == len(expected), found
    assert [v for _, v in consume("ck-data", found.offset, 2)] == [b"after-1", b"after-2"]

    # An idempotent producer (librdkafka's enable.idempotence): InitProducerId, then batches
    # with sequence numbers, each partition's records stored once and in order.
    admin.create_topics([NewTopic("ck-idem", 1, 1)])["ck-idem"].result(TIMEOUT)
    values = [f"idem-{i}".encode() for i in range(3000)]
    assert produce("ck-idem", values, "all", "lz4", {"enable.idempotence": True, "linger.ms": 1}) == []
    got = consume("ck-idem", -2, len(values))
    assert [v for _, v in got] == values, (len(got), len(values))
    assert [o for o, _ in got] == list(range(len(values)))

    # Near message.max.bytes (100000 on this broker) is fine; over it comes back as an error.
    assert produce("ck-big", [b"x" * 99_000], "all", "none") == []
    errors = produce("ck-big", [b"y" * 200_000], "all", "none", {"message.max.bytes": 1_000_000})
    assert [e.code() for e in errors] == [KafkaError.MSG_SIZE_TOO_LARGE], errors
    assert len(consume("ck-big", -2, 1)[0][1]) == 99_000

    # A keyless record on a compacted topic fails at once with INVALID_RECORD (KIP-467); a
    # retriable error such as CORRUPT_MESSAGE would be retried until the delivery timeout.
    admin.create_topics([NewTopic("ck-compact", 1, 1, config={"cleanup.policy": "compact"})])[
        "ck-compact"].result(TIMEOUT)
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 0, "delivery.timeout.ms": 120000})
    outcomes = []
    producer.produce("ck-compact", value=b"no key", on_delivery=lambda err, msg: outcomes.append(err))
    started = time.monotonic()
    assert producer.flush(TIMEOUT) == 0
    assert time.monotonic() - started < 10, "the keyless record was retried"
    [err] = outcomes
    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
    assert produce("ck-compact", [b"keyed"], "all", "none") == []
    print("confluent-kafka: all checks passed")


main()
