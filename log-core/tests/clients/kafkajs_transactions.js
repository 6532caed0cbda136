// kafkajs (npm) against the broker: an idempotent producer, transactions (commit, abort,
// offsets sent to a transaction), a fenced zombie, and read_committed / read_uncommitted
// consumers. Usage: node kafkajs_transactions.js BOOTSTRAP. Prints "all checks passed".
'use strict';

const { Kafka, logLevel } = require('kafkajs');

const bootstrap = process.argv[2];
if (!bootstrap) {
  console.error('usage: node kafkajs_transactions.js BOOTSTRAP');
  process.exit(2);
}
// Bounded: the whole script, whatever hangs.
setTimeout(() => {
  console.error('timed out after 120 s');
  process.exit(1);
}, 120_000).unref();

const kafka = new Kafka({
  clientId: 'sluice-kafkajs-test',
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  retry: { retries: 5 },
});

function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

// Every value of `topic` a consumer in `groupId` reads from the beginning, until `last` is
// among them (or 20 s passed), with the given isolation.
async function readValues(topic, groupId, readUncommitted, last) {
  const consumer = kafka.consumer({ groupId, readUncommitted, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const values = [];
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const value = message.value.toString();
      values.push(value);
      if (value === last) {
        done();
      }
    },
  });
  const timer = setTimeout(done, 20_000);
  await finished;
  clearTimeout(timer);
  await consumer.disconnect();
  return values;
}

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: 'kjs-idempotent', numPartitions: 1 },
      { topic: 'kjs-txn', numPartitions: 1 },
      { topic: 'kjs-ctp-in', numPartitions: 1 },
    ],
  });

  // An idempotent producer: InitProducerId without a transactional id, sequence numbers.
  const idempotent = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await idempotent.connect();
  for (let i = 0; i < 3; i++) {
    await idempotent.send({ topic: 'kjs-idempotent', acks: -1, messages: [{ value: `idem-${i}` }] });
  }
  await idempotent.disconnect();
  const idem = await readValues('kjs-idempotent', 'kjs-idem-reader', false, 'idem-2');
  check(JSON.stringify(idem) === JSON.stringify(['idem-0', 'idem-1', 'idem-2']), `idempotent records ${idem}`);

  // Transactions: committed, aborted, committed.
  const producer = kafka.producer({ transactionalId: 'kjs-txn-id', idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let txn = await producer.transaction();
  await txn.send({ topic: 'kjs-txn', messages: [{ value: 'committed-1' }, { value: 'committed-2' }] });
  await txn.commit();
  txn = await producer.transaction();
  await txn.send({ topic: 'kjs-txn', messages: [{ value: 'aborted-1' }, { value: 'aborted-2' }] });
  await txn.abort();
  txn = await producer.transaction();
  await txn.send({ topic: 'kjs-txn', messages: [{ value: 'committed-3' }] });
  await txn.commit();

  const committed = await readValues('kjs-txn', 'kjs-read-committed', false, 'committed-3');
  check(
    JSON.stringify(committed) === JSON.stringify(['committed-1', 'committed-2', 'committed-3']),
    `read_committed sees only committed records: ${committed}`,
  );
  const everything = await readValues('kjs-txn', 'kjs-read-uncommitted', true, 'committed-3');
  check(
    JSON.stringify(everything) ===
      JSON.stringify(['committed-1', 'committed-2', 'aborted-1', 'aborted-2', 'committed-3']),
    `read_uncommitted sees the aborted records too: ${everything}`,
  );

  // Offsets sent to a transaction are the group's only if it commits.
  txn = await producer.transaction();
  await txn.send({ topic: 'kjs-txn', messages: [{ value: 'with-offsets' }] });
  await txn.sendOffsets({
    consumerGroupId: 'kjs-ctp-group',
    topics: [{ topic: 'kjs-ctp-in', partitions: [{ partition: 0, offset: '7' }] }],
  });
  await txn.abort();
  let offsets = await admin.fetchOffsets({ groupId: 'kjs-ctp-group', topics: ['kjs-ctp-in'] });
  check(offsets[0].partitions[0].offset === '-1', `aborted offsets are not committed: ${JSON.stringify(offsets)}`);
  txn = await producer.transaction();
  await txn.send({ topic: 'kjs-txn', messages: [{ value: 'with-offsets' }] });
  await txn.sendOffsets({
    consumerGroupId: 'kjs-ctp-group',
    topics: [{ topic: 'kjs-ctp-in', partitions: [{ partition: 0, offset: '7' }] }],
  });
  await txn.commit();
  offsets = await admin.fetchOffsets({ groupId: 'kjs-ctp-group', topics: ['kjs-ctp-in'] });
  check(offsets[0].partitions[0].offset === '7', `committed offsets: ${JSON.stringify(offsets)}`);

  // A zombie: a new producer with the same transactional id fences the old one.
  const zombieTxn = await producer.transaction();
  await zombieTxn.send({ topic: 'kjs-txn', messages: [{ value: 'zombie' }] });
  const successor = kafka.producer({ transactionalId: 'kjs-txn-id', idempotent: true, maxInFlightRequests: 1 });
  await successor.connect();
  // (kafkajs sends InitProducerId at a producer's first transaction: that fences the zombie.)
  const successorTxn = await successor.transaction();
  let fenced = null;
  try {
    await zombieTxn.commit();
  } catch (err) {
    fenced = err;
  }
  check(fenced !== null, 'the zombie could commit');
  check(
    /PRODUCER_FENCED|INVALID_PRODUCER_EPOCH|fenced|epoch/i.test(`${fenced.type} ${fenced.message}`),
    `the zombie's error names the fencing: ${fenced.type} ${fenced.message}`,
  );
  await successorTxn.send({ topic: 'kjs-txn', messages: [{ value: 'successor' }] });
  await successorTxn.commit();
  const after = await readValues('kjs-txn', 'kjs-read-committed-2', false, 'successor');
  check(!after.includes('zombie'), `the zombie's record is never committed: ${after}`);
  check(after[after.length - 1] === 'successor', `the successor's record is: ${after}`);

  await successor.disconnect();
  await producer.disconnect().catch(() => {});
  await admin.disconnect();
  console.log('all checks passed');
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
  },
);
