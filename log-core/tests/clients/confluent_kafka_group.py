"""A group of three confluent-kafka consumers over a six-partition topic against a Sluice broker
(started with group.initial.rebalance.delay.ms=0): every partition owned by exactly one member,
rebalances on join, on leave and on a crashed member (session timeout), and no record lost or
consumed twice when offsets are committed in the revoke callback.

Usage: python3 confluent_kafka_group.py HOST:PORT [STRATEGY]   (range by default;
cooperative-sticky checks incremental rebalancing)
"""
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = sys.argv[1]
STRATEGY = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "member" else "range"
if len(sys.argv) > 4:
    STRATEGY = sys.argv[4]
TOPIC = "group-six-" + STRATEGY
GROUP = "group-of-three-" + STRATEGY
COOPERATIVE = STRATEGY == "cooperative-sticky"
DEADLINE = time.monotonic() + 120


def wait_for(what, condition, limit=60):
    end = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


class Member(threading.Thread):
    """A consumer that commits what it processed when partitions are revoked."""

    def __init__(self, name):
        super().__init__(daemon=True)
        self.name = name
        self.seen = []  # (partition, offset, value)
        self.processed = {}  # partition -> next offset to commit
        self.assignment = set()
        self.stop = threading.Event()
        self.crash = threading.Event()
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.consumer = Consumer({
            "bootstrap.servers": BOOTSTRAP,
            "group.id": GROUP,
            "client.id": name,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 300,
            "partition.assignment.strategy": STRATEGY,
        })

    def commit_processed(self, partitions):
        offsets = [TopicPartition(TOPIC, p.partition, self.processed[p.partition])
                   for p in partitions if p.partition in self.processed]
        if offsets:
            self.consumer.commit(offsets=offsets, asynchronous=False)

    def on_assign(self, consumer, partitions):
        # Eager assignors hand over the whole assignment; cooperative ones only what is added.
        with self.lock:
            added = {p.partition for p in partitions}
            self.assignment = self.assignment | added if COOPERATIVE else added
        self.ready.set()

    def on_revoke(self, consumer, partitions):
        self.commit_processed(partitions)
        with self.lock:
            self.assignment -= {p.partition for p in partitions}
            for p in partitions:
                self.processed.pop(p.partition, None)

    def run(self):
        self.consumer.subscribe([TOPIC], on_assign=self.on_assign, on_revoke=self.on_revoke)
        while not self.stop.is_set():
            if self.crash.is_set():
                return  # no close, no leave: the coordinator must notice the session timeout
            msg = self.consumer.poll(0.1)
            if msg is None or msg.error():
                continue
            with self.lock:
                self.seen.append((msg.partition(), msg.offset(), msg.value()))
                self.processed[msg.partition()] = msg.offset() + 1
        self.commit_processed([TopicPartition(TOPIC, p) for p in list(self.processed)])
        self.consumer.close()


class ProcessMember:
    """A member in a child process, so that it can really crash (SIGKILL): no leave, no more
    heartbeats. It reports assignments and records on stdout."""

    def __init__(self, name):
        self.name = name
        self.seen = []
        self.assignment = set()
        self.lock = threading.Lock()
        self.process = subprocess.Popen(
            [sys.executable, __file__, BOOTSTRAP, "member", name, STRATEGY], stdout=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self):
        for line in self.process.stdout:
            kind, _, rest = line.rstrip("\n").partition(" ")
            with self.lock:
                if kind == "ASSIGN":
                    self.assignment = {int(p) for p in rest.split(",") if p}
                elif kind == "SEEN":
                    partition, offset, value = rest.split(" ", 2)
                    self.seen.append((int(partition), int(offset), value.encode()))

    def kill(self):
        self.process.kill()
        self.process.wait(30)
        self.reader.join(30)
        with self.lock:
            self.assignment = set()


def run_member(name):
    """Child-process member: consumes and reports until killed."""
    member = Member(name)

    def report(consumer, partitions):
        with member.lock:
            print("ASSIGN " + ",".join(str(p) for p in sorted(member.assignment)), flush=True)

    original_assign, original_revoke = member.on_assign, member.on_revoke
    member.on_assign = lambda c, ps: (original_assign(c, ps), report(c, ps))
    member.on_revoke = lambda c, ps: (original_revoke(c, ps), report(c, ps))
    member.consumer.subscribe([TOPIC], on_assign=member.on_assign, on_revoke=member.on_revoke)
    while True:
        msg = member.consumer.poll(0.1)
        if msg is None or msg.error():
            continue
        member.processed[msg.partition()] = msg.offset() + 1
        print(f"SEEN {msg.partition()} {msg.offset()} {msg.value().decode()}", flush=True)


def produce(start, count):
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5})
    for i in range(start, start + count):
        producer.produce(TOPIC, key=f"key-{i}".encode(), value=f"value-{i}".encode())
    assert producer.flush(30) == 0


def owners(members):
    owned = {}
    for member in members:
        with member.lock:
            for partition in member.assignment:
                owned.setdefault(partition, []).append(member.name)
    return owned


def exactly_once_each(owned):
    return sorted(owned) == list(range(6)) and all(len(names) == 1 for names in owned.values())


def consumed(members):
    values = []
    for member in members:
        with member.lock:
            values += [v for _, _, v in member.seen]
    return values


def main():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(TOPIC, 6, 1)])[TOPIC].result(30)
    produce(0, 300)

    a, b = Member("a"), Member("b")
    a.start()
    b.start()
    wait_for("a and b to share the partitions", lambda: exactly_once_each(owners([a, b])) and a.assignment and b.assignment)

    c = ProcessMember("c")
    wait_for("a rebalance on join", lambda: exactly_once_each(owners([a, b, c])) and all(m.assignment for m in (a, b, c)))
    produce(300, 300)
    wait_for("the first 600 records", lambda: len(set(consumed([a, b, c]))) >= 600)

    b.stop.set()
    b.join(30)
    wait_for("a rebalance on leave", lambda: exactly_once_each(owners([a, c])))
    produce(600, 300)
    wait_for("900 records", lambda: len(set(consumed([a, b, c]))) >= 900)

    # c crashes (SIGKILL): no leave, no heartbeats; after session.timeout.ms a owns all.
    c.kill()
    produce(900, 300)
    wait_for("a rebalance after c's session timeout", lambda: owners([a]) and sorted(owners([a])) == list(range(6)), limit=60)
    wait_for("all 1200 records", lambda: len(set(consumed([a, b, c]))) >= 1200)
    a.stop.set()
    a.join(30)

    values = consumed([a, b, c])
    expected = {f"value-{i}".encode() for i in range(1200)}
    assert set(values) == expected, f"missing {len(expected - set(values))}"
    # c crashed without committing, so records c processed after its last commit may come again
    # (at-least-once); nobody else may see a record twice.
    duplicates = len(values) - len(set(values))
    c_uncommitted = len(c.seen)
    assert duplicates <= c_uncommitted, (duplicates, c_uncommitted)
    ab = [v for m in (a, b) for _, _, v in m.seen]
    assert len(ab) == len(set(ab)), "a record was consumed twice by members that committed on revoke"
    print(f"confluent-kafka group ({STRATEGY}): all checks passed ({len(values)} deliveries, {duplicates} redelivered after the crash)")


if len(sys.argv) > 2 and sys.argv[2] == "member":
    run_member(sys.argv[3])
else:
    main()
