#!/usr/bin/env python3
"""confluent-kafka (librdkafka under Python) figures to compare with `sluice bench produce|consume`.

Produces N records of S bytes as fast as the client takes them, waits for every delivery, then
reads them back with an assigned consumer. Usage:
    bench/confluent-perf.py BOOTSTRAP TOPIC N S [key=value producer settings...]
"""
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def main():
    bootstrap, topic, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    settings = dict(arg.split("=", 1) for arg in sys.argv[5:])
    producer = Producer({"bootstrap.servers": bootstrap, "queue.buffering.max.messages": 1000000,
                         **settings})
    value = b"x" * size
    start = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.001)  # the local queue is full: let deliveries drain
    remaining = producer.flush(120)
    produced = time.perf_counter() - start
    if remaining:
        sys.exit(f"{remaining} records not delivered")

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "confluent-perf",
                         "enable.auto.commit": False, "fetch.max.bytes": 52428800})
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = [TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions]
    consumer.assign(partitions)
    start = time.perf_counter()
    seen = 0
    while seen < n:
        for message in consumer.consume(num_messages=10000, timeout=5):
            if message.error() is None:
                seen += 1
    consumed = time.perf_counter() - start
    consumer.close()
    print(f"confluent-kafka produce: {n / produced:,.0f} records/s ({n * size / 1e6 / produced:.1f} MB/s); "
          f"consume: {n / consumed:,.0f} records/s ({n * size / 1e6 / consumed:.1f} MB/s)")


if __name__ == "__main__":
    main()
