'use strict'
/**
 * The @confluentinc/kafka-javascript driver of the compatibility matrix (compat/SCENARIOS.md).
 *
 * @confluentinc/kafka-javascript 1.10.1 (librdkafka 2.15.1 inside, built from the package's
 * bundled source by install.sh) through its KafkaJS-compatible API, with librdkafka's
 * defaults. Two things that API lacks come from the same package's node-rdkafka-style API:
 * the broker list (`Producer.getMetadata`) and `AdminClient.createPartitions`.
 *
 * What this client presents differently, and how the driver reads it:
 * - neither API has DescribeConfigs or AlterConfigs, so `topics-admin` checks everything
 *   else (create with retention.ms, 3 partitions led by the broker, grow to 5, delete) and
 *   then reports n/a for the config part; a failure in the rest is a fail;
 * - librdkafka's `message.max.bytes` (1,000,000 by default) caps a produce request, so the
 *   1,000,000-byte record of `produce-consume` needs it raised (the scenario allows that);
 * - `fetchTopicOffsetsByTimestamp` answers a time after the last record with the latest
 *   offset, as kafkajs does, so `list-offsets-by-time` expects 3 for 1700000003000;
 * - every read goes through a consumer group with `fromBeginning` (auto.offset.reset =
 *   earliest); the consumer has read a partition to the end once it has delivered the
 *   record before the end offset;
 * - librdkafka gives the application no sign that it has skipped aborted records and
 *   markers (its position and committed offset stay after the last record it delivered),
 *   so `transactions` appends one plain record after the aborted transaction and reads up
 *   to it: both consumers must see it, and before it exactly the records of their
 *   isolation level;
 * - a zero-length Buffer as key, value or header value reaches librdkafka as a null pointer
 *   and is sent as null (Node 20 gives empty Buffers no data pointer), so the empty record
 *   of `produce-consume` comes back with a null key and value, against Apache Kafka too.
 */

const rdkafka = require('@confluentinc/kafka-javascript')
const h = require('../kafkajs/harness')

const { Kafka, CompressionTypes, logLevel } = rdkafka.KafkaJS
const CLIENT = 'confluent-kafka-javascript'
const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.SNAPPY,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD
}

/** The default logger writes with console.info (stdout); send its lines to stderr. */
const logger = {
  level: logLevel.INFO,
  setLogLevel (level) { this.level = level },
  namespace () { return this },
  info (message, extra) { if (this.level >= logLevel.INFO) h.log('[info]', message, extra || '') },
  warn (message, extra) { if (this.level >= logLevel.WARN) h.log('[warn]', message, extra || '') },
  error (message, extra) { if (this.level >= logLevel.ERROR) h.log('[error]', message, extra || '') },
  debug (message, extra) { if (this.level >= logLevel.DEBUG) h.log('[debug]', message, extra || '') }
}

function kafka (ctx) {
  return new Kafka({ kafkaJS: { clientId: `compat-${CLIENT}`, brokers: [ctx.bootstrap], logger } })
}

async function connected (ctx, client) {
  await client.connect()
  ctx.defer(() => client.disconnect())
  return client
}

function admin (ctx) {
  return connected(ctx, kafka(ctx).admin())
}

function producer (ctx, kafkaJS = {}, rdkafkaConfig = {}) {
  return connected(ctx, kafka(ctx).producer({ kafkaJS, ...rdkafkaConfig }))
}

/** Topics whose records carry 2023 timestamps: never eligible for time retention. */
const KEEP_FOREVER = [{ name: 'retention.ms', value: '-1' }]

async function createTopic (a, topic, numPartitions = 1, configEntries = []) {
  const created = await a.createTopics({ topics: [{ topic, numPartitions, configEntries }] })
  h.check(created, `createTopics reported ${topic} as already existing`)
}

/** Call a node-rdkafka-style method `fn(...args, callback)` and await its result. */
function call (target, fn, ...args) {
  return new Promise((resolve, reject) => {
    target[fn](...args, (err, result) => (err ? reject(err) : resolve(result)))
  })
}

/** Cluster metadata from the node-rdkafka-style Producer: `{brokers, topics}`. */
async function nativeMetadata (ctx, topic) {
  const p = new rdkafka.Producer({ 'bootstrap.servers': ctx.bootstrap, 'client.id': `compat-${CLIENT}` })
  await call(p, 'connect', {})
  ctx.defer(() => new Promise(resolve => p.disconnect(resolve)))
  return call(p, 'getMetadata', { topic, timeout: 10_000 })
}

/** The topic's partitions' high watermarks, as `{partition: offset}`. */
async function highWatermarks (a, topic) {
  const offsets = await a.fetchTopicOffsets(topic)
  return Object.fromEntries(offsets.map(o => [o.partition, Number(o.high)]))
}

/**
 * Read `topic` with a consumer in `groupId` from the beginning until every partition has
 * delivered the record before `ends[partition]`; return the messages in arrival order.
 * `kafkaJS` adds consumer options (e.g. `readUncommitted`).
 */
async function consumeUntil (ctx, topic, groupId, ends, kafkaJS = {}) {
  const consumer = await connected(ctx, kafka(ctx).consumer({ kafkaJS: { groupId, fromBeginning: true, ...kafkaJS } }))
  const messages = []
  const position = new Map()
  let done
  const finished = new Promise(resolve => { done = resolve })
  await consumer.subscribe({ topics: [topic] })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      messages.push({ partition, ...message })
      position.set(partition, Math.max(position.get(partition) ?? 0, Number(message.offset) + 1))
      if (Object.entries(ends).every(([p, end]) => (position.get(Number(p)) ?? 0) >= end)) done()
    }
  })
  await finished
  await consumer.disconnect()
  return messages
}

function headerPairs (headers) {
  return Object.entries(headers || {}).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v])
}

const scenarios = {
  async metadata (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic, 2)
    const md = await nativeMetadata(ctx, topic)
    h.checkEqual(md.brokers.map(b => `${b.host}:${b.port}`), [`${ctx.host}:${ctx.port}`], 'brokers')
    const [described] = await a.fetchTopicMetadata({ topics: [topic] })
    h.checkEqual(described.name, topic, 'topic in metadata')
    h.checkEqual(described.partitions.length, 2, 'partition count')
    h.check((await a.listTopics()).includes(topic), `${topic} missing from listTopics`)
  },

  async 'topics-admin' (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic, 3, [{ name: 'retention.ms', value: '3600000' }])
    const [broker] = (await nativeMetadata(ctx, topic)).brokers
    let [described] = await a.fetchTopicMetadata({ topics: [topic] })
    h.checkEqual(described.partitions.length, 3, 'partitions after create')
    for (const p of described.partitions) h.checkEqual(p.leader, broker.id, `leader of partition ${p.partitionId}`)
    const nativeAdmin = rdkafka.AdminClient.create({ 'bootstrap.servers': ctx.bootstrap, 'client.id': `compat-${CLIENT}` })
    ctx.defer(() => nativeAdmin.disconnect())
    await call(nativeAdmin, 'createPartitions', topic, 5, 10_000)
    // Kafka answers CreatePartitions before every broker's metadata shows the new ones.
    await h.waitFor(async () => (await a.fetchTopicMetadata({ topics: [topic] }))[0].partitions.length === 5, '5 partitions in the metadata')
    await a.deleteTopics({ topics: [topic] })
    h.check(!(await a.listTopics()).includes(topic), `${topic} still listed after deleteTopics`)
    throw new h.NotApplicable('no DescribeConfigs/AlterConfigs API in @confluentinc/kafka-javascript 1.10.1 ' +
      '(the rest passed: create with retention.ms, 3 partitions led by the broker, grow to 5, delete)')
  },

  async 'produce-consume' (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic)
    // librdkafka's message.max.bytes (1,000,000) would refuse the 1,000,000-byte record.
    const p = await producer(ctx, {}, { 'message.max.bytes': 2_000_000 })
    const sent = [
      { key: Buffer.from('key-0'), value: Buffer.from('value-0'), headers: { h1: Buffer.from('v1'), h2: Buffer.alloc(0) }, timestamp: '1700000000000' },
      { key: null, value: null },
      { key: Buffer.alloc(0), value: Buffer.alloc(0) },
      { key: Buffer.from('large'), value: h.largeValue() }
    ]
    const before = Date.now()
    for (const message of sent) {
      // One send per record: offsets 0..3 in order, the large record alone in its request.
      await p.send({ topic, messages: [{ ...message, partition: 0 }] })
    }
    const after = Date.now()
    const got = await consumeUntil(ctx, topic, ctx.topic('group'), { 0: 4 })
    h.checkEqual(got.length, 4, 'records consumed')
    if (got[2].key === null && got[2].value === null) {
      throw new Error('the empty key and value came back null: this client sends a zero-length Buffer as null (it does so against Apache Kafka 4.4 too)')
    }
    got.forEach((m, i) => {
      const want = sent[i]
      h.checkEqual(Number(m.offset), i, `offset of record ${i}`)
      h.checkEqual(h.hex(m.key), h.hex(want.key), `key of record ${i}`)
      h.checkEqual(h.hex(m.value), h.hex(want.value), `value of record ${i}`)
      h.checkEqual(headerPairs(m.headers).map(([k, v]) => [k, h.hex(v)]), headerPairs(want.headers).map(([k, v]) => [k, h.hex(v)]), `headers of record ${i}`)
      const ts = Number(m.timestamp)
      if (want.timestamp) h.checkEqual(ts, Number(want.timestamp), `timestamp of record ${i}`)
      else h.check(ts >= before - 1 && ts <= after + 1, `timestamp of record ${i}: ${ts} not between ${before} and ${after}`)
    })
  },

  async 'produce-codec' (ctx, codec) {
    const a = await admin(ctx)
    const topic = `compat-codec-${codec}-${CLIENT}-${ctx.runId}`
    await createTopic(a, topic)
    const p = await producer(ctx, { compression: COMPRESSION[codec] })
    const messages = Array.from({ length: 100 }, (_, i) => ({ ...h.codecRecord(codec, i), partition: 0 }))
    await p.send({ topic, messages })
    h.checkEqual(await highWatermarks(a, topic), { 0: 100 }, 'high watermark after producing')
  },

  async 'consume-codec' (ctx, { codec, writer }) {
    const topic = `compat-codec-${codec}-${writer}-${ctx.runId}`
    const got = await consumeUntil(ctx, topic, ctx.topic(`consume-codec-${codec}-${writer}`), { 0: 100 })
    h.checkCodecRecords(codec, got.map(m => ({ ...m, headers: headerPairs(m.headers) })))
  },

  async 'list-offsets-by-time' (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic, 1, KEEP_FOREVER)
    const p = await producer(ctx)
    for (const [i, t] of h.TIMES.entries()) {
      await p.send({ topic, messages: [{ value: `t${i}`, timestamp: String(t), partition: 0 }] })
    }
    const [offsets] = await a.fetchTopicOffsets(topic)
    h.checkEqual([Number(offsets.low), Number(offsets.high)], [0, 3], 'earliest and latest offsets')
    const at = async time => Number((await a.fetchTopicOffsetsByTimestamp(topic, time))[0].offset)
    h.checkEqual(await at(1700000000500), 1, 'offset for 1700000000500')
    h.checkEqual(await at(1700000002000), 2, 'offset for 1700000002000')
    // The KafkaJS-compatible API turns Kafka's -1 ("no such record") into the latest offset.
    h.checkEqual(await at(1700000003000), 3, 'offset for 1700000003000 (shown as the latest offset)')
  },

  async 'consumer-group' (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    const groupId = ctx.topic('group')
    await createTopic(a, topic, 6)
    const p = await producer(ctx)
    for (let partition = 0; partition < 6; partition++) {
      await p.send({ topic, messages: Array.from({ length: 100 }, (_, i) => ({ partition, value: `p${partition}-${i}` })) })
    }
    const seen = new Set()
    const members = []
    const startMember = async name => {
      const consumer = await connected(ctx, kafka(ctx).consumer({ kafkaJS: { groupId, fromBeginning: true } }))
      await consumer.subscribe({ topics: [topic] })
      await consumer.run({ eachMessage: async ({ partition, message }) => { seen.add(`${partition}:${message.offset}`) } })
      const member = { name, consumer, stopped: false }
      members.push(member)
      return member
    }
    const assignment = m => m.consumer.assignment().filter(x => x.topic === topic).map(x => x.partition).sort()
    // Disjoint assignments that cover all six partitions, among the given members.
    const covers = group => {
      const owned = group.map(assignment)
      const all = owned.flat()
      return owned.every(ps => ps.length > 0) && all.length === 6 && new Set(all).size === 6
    }
    await startMember('member-1')
    await h.waitFor(() => covers(members), 'member-1 to be assigned')
    await startMember('member-2')
    await h.waitFor(() => covers(members), 'two members to share the partitions')
    await startMember('member-3')
    await h.waitFor(() => covers(members), 'three members to share the partitions')
    h.log(`assignments: ${members.map(m => `${m.name}=${assignment(m)}`).join(' ')}`)
    const [stopped, ...remaining] = members
    await stopped.consumer.disconnect()
    await h.waitFor(() => covers(remaining), 'the two remaining members to share the six partitions')
    h.log(`assignments: ${remaining.map(m => `${m.name}=${assignment(m)}`).join(' ')}`)
    const committed = async () => {
      const [t] = await a.fetchOffsets({ groupId, topics: [topic] })
      return t.partitions.every(x => Number(x.offset) === 100)
    }
    await h.waitFor(committed, 'committed offsets of 100 on every partition')
    h.checkEqual(seen.size, 600, 'distinct records consumed by the group')
    h.check(covers(remaining), 'final assignment no longer covers the partitions disjointly')
  },

  async 'resume-committed' (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    const groupId = ctx.topic('group')
    await createTopic(a, topic)
    const p = await producer(ctx)
    await p.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: 0, value: `r${i}` })) })

    const first = await connected(ctx, kafka(ctx).consumer({ kafkaJS: { groupId, fromBeginning: true, autoCommit: false } }))
    await first.subscribe({ topics: [topic] })
    let committed
    const committedFour = new Promise(resolve => { committed = resolve })
    await first.run({
      eachMessage: async ({ message }) => {
        if (Number(message.offset) === 3) {
          await first.commitOffsets([{ topic, partition: 0, offset: '4' }])
          committed()
        }
      }
    })
    await committedFour
    await first.disconnect()

    const got = await consumeUntil(ctx, topic, groupId, { 0: 10 })
    h.checkEqual(got.map(m => Number(m.offset)), [4, 5, 6, 7, 8, 9], 'offsets read after resuming')
    h.checkEqual(got.map(m => m.value.toString()), ['r4', 'r5', 'r6', 'r7', 'r8', 'r9'], 'values read after resuming')
  },

  async 'idempotent-producer' (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic, 3)
    // librdkafka's enable.idempotence is off by default; the KafkaJS-compatible flag turns it on.
    const p = await producer(ctx, { idempotent: true })
    for (let start = 0; start < 1000; start += 100) {
      const messages = Array.from({ length: 100 }, (_, j) => ({ partition: (start + j) % 3, value: String(start + j) }))
      await p.send({ topic, messages })
    }
    const ends = await highWatermarks(a, topic)
    h.checkEqual(ends, { 0: 334, 1: 333, 2: 333 }, 'high watermarks')
    const got = await consumeUntil(ctx, topic, ctx.topic('group'), ends)
    h.checkEqual(got.length, 1000, 'records consumed')
    for (let partition = 0; partition < 3; partition++) {
      const values = got.filter(m => m.partition === partition).map(m => Number(m.value.toString()))
      const expected = Array.from({ length: 1000 }, (_, i) => i).filter(i => i % 3 === partition)
      h.checkEqual(values, expected, `values on partition ${partition} in order`)
    }
  },

  async transactions (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic)
    const p = await producer(ctx, { transactionalId: ctx.topic('txn'), idempotent: true })
    const batch = prefix => Array.from({ length: 10 }, (_, i) => ({ partition: 0, value: `${prefix}${i}` }))
    const committed = await p.transaction()
    await committed.send({ topic, messages: batch('committed-') })
    await committed.commit()
    const aborted = await p.transaction()
    await aborted.send({ topic, messages: batch('aborted-') })
    await aborted.abort()
    // The coordinator writes the markers after EndTxn has answered, as Kafka does: wait for
    // the log end to reach 22 (20 records and two markers), then add the end record at 22.
    await h.waitFor(async () => (await highWatermarks(a, topic))[0] === 22, 'the abort marker (log end offset 22)')
    const plain = await producer(ctx)
    await plain.send({ topic, messages: [{ partition: 0, value: 'end' }] })
    const ends = { 0: 23 }
    const values = ms => ms.map(m => m.value.toString())
    const txnRecords = (ms, what) => {
      h.checkEqual([Number(ms[ms.length - 1].offset), ms[ms.length - 1].value.toString()], [22, 'end'], `${what}: last record`)
      return ms.slice(0, -1)
    }
    const readCommitted = txnRecords(await consumeUntil(ctx, topic, ctx.topic('read-committed'), ends, { readUncommitted: false }), 'read_committed')
    h.checkEqual(values(readCommitted), values(batch('committed-')), 'read_committed values')
    h.checkEqual(readCommitted.map(m => Number(m.offset)), [...Array(10).keys()], 'read_committed offsets')
    const readUncommitted = txnRecords(await consumeUntil(ctx, topic, ctx.topic('read-uncommitted'), ends, { readUncommitted: true }), 'read_uncommitted')
    h.checkEqual(values(readUncommitted), values([...batch('committed-'), ...batch('aborted-')]), 'read_uncommitted values')
    h.checkEqual(readUncommitted.map(m => Number(m.offset)), [...Array(10).keys(), ...Array.from({ length: 10 }, (_, i) => 11 + i)], 'read_uncommitted offsets')
  },

  async 'delete-records' (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic)
    const p = await producer(ctx)
    await p.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: 0, value: `d${i}` })) })
    await a.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '5' }] })
    const [offsets] = await a.fetchTopicOffsets(topic)
    h.checkEqual(Number(offsets.low), 5, 'earliest offset after deleteTopicRecords')
    const got = await consumeUntil(ctx, topic, ctx.topic('group'), { 0: 10 })
    h.checkEqual(got.map(m => Number(m.offset)), [5, 6, 7, 8, 9], 'offsets read from the beginning')
  }
}

h.main(CLIENT, scenarios)
