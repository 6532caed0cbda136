"""Static membership (KIP-345) with confluent-kafka against a Sluice broker: a second consumer
with the same group.instance.id fences the first (FENCED_INSTANCE_ID, fatal to it, not
UNKNOWN_MEMBER_ID, which would have the two displace each other for ever); and a closed static
member, which does not leave its group, is expired within a few hundred ms of its
session.timeout.ms, after which its group can be deleted.

Usage: python3 confluent_kafka_static.py HOST:PORT
"""
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = sys.argv[1]
TIMEOUT = 30


def consumer(group, instance, session_ms=6000, errors=None):
    c = Consumer({
        "error_cb": lambda err: errors is not None and errors.append(err),
        "bootstrap.servers": BOOTSTRAP,
        "group.id": group,
        "group.instance.id": instance,
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": 200,
        "auto.offset.reset": "earliest",
    })
    c.subscribe(["static"])
    return c


def consume_one(c):
    end = time.monotonic() + TIMEOUT
    while time.monotonic() < end:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            return m
    raise AssertionError("nothing consumed")


def main():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic("static", 1, 1)])["static"].result(TIMEOUT)
    p = Producer({"bootstrap.servers": BOOTSTRAP})
    for i in range(10):
        p.produce("static", value=f"v{i}".encode())
    assert p.flush(TIMEOUT) == 0

    # Fencing: the newer instance wins; the older one learns it is fenced, fatally.
    errors = []
    first = consumer("fenced", "instance-1", errors=errors)
    consume_one(first)
    second = consumer("fenced", "instance-1")
    consume_one(second)
    # librdkafka hands the fatal error to poll() as _FATAL.
    end = time.monotonic() + TIMEOUT
    fatal = None
    while fatal is None and time.monotonic() < end:
        m = first.poll(0.2)
        if m is not None and m.error() is not None and m.error().code() == KafkaError._FATAL:
            fatal = m.error()
    assert fatal is not None, f"the fenced consumer was not told: {errors}"
    assert "fenced" in fatal.str().lower(), fatal.str()
    first.close()
    second.close()

    # Expiry: a static member that closes stays until its session times out, then goes.
    member = consumer("expiring", "instance-2", session_ms=6000)
    consume_one(member)
    member.close()
    closed = time.monotonic()
    states = []
    while time.monotonic() - closed < 15:
        group = admin.describe_consumer_groups(["expiring"])["expiring"].result(TIMEOUT)
        states.append((round(time.monotonic() - closed, 2), str(group.state), len(group.members)))
        if not group.members:
            break
        time.sleep(0.1)
    gone = time.monotonic() - closed
    assert 5.5 < gone < 6.6, f"expired {gone:.2f} s after close, not at the 6 s session timeout: {states}"
    admin.delete_consumer_groups(["expiring"])["expiring"].result(TIMEOUT)
    print("confluent-kafka static membership: all checks passed")


main()
