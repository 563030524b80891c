'use strict'
/**
 * The kafkajs driver of the compatibility matrix (compat/SCENARIOS.md).
 *
 * kafkajs 2.2.4 with its default settings. kafkajs itself writes and reads only gzip; the
 * other codecs are plug-ins registered in `CompressionCodecs`, as its documentation says:
 * kafkajs-snappy, kafkajs-lz4, and for zstd a three-line codec over zstd-napi (the
 * documented @kafkajs/zstd depends on cppzst, which no longer compiles against Node 20).
 *
 * What kafkajs presents differently, and how the driver reads it:
 * - it has no consumer without a group: every read goes through a consumer group
 *   `compat-kafkajs-<scenario>-<RID>` that subscribes `fromBeginning`;
 * - `admin.fetchTopicOffsetsByTimestamp` answers a time after the last record with the
 *   latest offset (it substitutes the high watermark for Kafka's -1), so that is what
 *   `list-offsets-by-time` expects for 1700000003000;
 * - a consumer knows it has read a partition to the end from the `END_BATCH_PROCESS`
 *   event, whose `lastOffset` also covers control records and aborted records kafkajs
 *   filtered out.
 */

const { Kafka, CompressionCodecs, CompressionTypes, ConfigResourceTypes, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const LZ4Codec = require('kafkajs-lz4')
const zstd = require('zstd-napi')
const h = require('./harness')

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress (encoder) { return zstd.compress(encoder.buffer) },
  async decompress (buffer) { return zstd.decompress(buffer) }
})

const CLIENT = 'kafkajs'
const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD
}

/** kafkajs logs with console.info (stdout) by default; send its lines to stderr. */
function logCreator () {
  return ({ namespace, level, label, log }) => {
    const { message, ...extra } = log
    h.log(`[kafkajs ${label} ${namespace}] ${message} ${JSON.stringify(extra)}`)
  }
}

function kafka (ctx) {
  return new Kafka({ clientId: `compat-${CLIENT}`, brokers: [ctx.bootstrap], logLevel: logLevel.INFO, logCreator })
}

async function connected (ctx, client) {
  await client.connect()
  ctx.defer(() => client.disconnect())
  return client
}

async function admin (ctx) {
  return connected(ctx, kafka(ctx).admin())
}

/** Topics whose records carry 2023 timestamps: never eligible for time retention. */
const KEEP_FOREVER = [{ name: 'retention.ms', value: '-1' }]

async function createTopic (ctx, admin, topic, numPartitions = 1, configEntries = []) {
  const created = await admin.createTopics({ topics: [{ topic, numPartitions, configEntries }], waitForLeaders: true })
  h.check(created, `createTopics reported ${topic} as already existing`)
}

/**
 * Read `topic` with a consumer in `groupId` from the beginning until every partition's
 * position reaches `ends[partition]`; return the messages in arrival order, each with its
 * partition. `consumerConfig` adds options to the consumer (e.g. `readUncommitted`).
 */
async function consumeUntil (ctx, topic, groupId, ends, consumerConfig = {}) {
  const consumer = kafka(ctx).consumer({ groupId, ...consumerConfig })
  await connected(ctx, consumer)
  const messages = []
  const position = new Map()
  let done
  const finished = new Promise(resolve => { done = resolve })
  const advance = (partition, next) => {
    position.set(partition, Math.max(position.get(partition) ?? 0, next))
    if (Object.entries(ends).every(([p, end]) => (position.get(Number(p)) ?? 0) >= end)) done()
  }
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.topic === topic) advance(payload.partition, Number(payload.lastOffset) + 1)
  })
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      messages.push({ partition, ...message })
      advance(partition, Number(message.offset) + 1)
    }
  })
  if (Object.values(ends).every(end => end === 0)) done()
  await finished
  await consumer.disconnect()
  return messages
}

/** The topic's partitions' high watermarks, as `{partition: offset}`. */
async function highWatermarks (admin, topic) {
  const offsets = await admin.fetchTopicOffsets(topic)
  return Object.fromEntries(offsets.map(o => [o.partition, Number(o.high)]))
}

function toHeaderPairs (headers) {
  return Object.entries(headers || {}).map(([k, v]) => [k, v])
}

const scenarios = {
  async metadata (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    await createTopic(ctx, a, topic, 2)
    const cluster = await a.describeCluster()
    h.checkEqual(cluster.brokers.map(b => `${b.host}:${b.port}`), [`${ctx.host}:${ctx.port}`], 'brokers')
    const { topics } = await a.fetchTopicMetadata({ topics: [topic] })
    h.checkEqual(topics.map(t => t.name), [topic], 'topics in metadata')
    h.checkEqual(topics[0].partitions.length, 2, 'partition count')
    h.check((await a.listTopics()).includes(topic), `${topic} missing from listTopics`)
  },

  async 'topics-admin' (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    await createTopic(ctx, a, topic, 3, [{ name: 'retention.ms', value: '3600000' }])
    const [broker] = (await a.describeCluster()).brokers
    const { topics } = await a.fetchTopicMetadata({ topics: [topic] })
    h.checkEqual(topics[0].partitions.length, 3, 'partitions after create')
    for (const p of topics[0].partitions) h.checkEqual(p.leader, broker.nodeId, `leader of partition ${p.partitionId}`)
    const retention = async () => {
      const described = await a.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }],
        includeSynonyms: false
      })
      const entry = described.resources[0].configEntries.find(e => e.configName === 'retention.ms')
      return entry && entry.configValue
    }
    h.checkEqual(await retention(), '3600000', 'retention.ms after create')
    await a.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '7200000' }] }]
    })
    h.checkEqual(await retention(), '7200000', 'retention.ms after alterConfigs')
    await a.createPartitions({ topicPartitions: [{ topic, count: 5 }] })
    // Kafka answers CreatePartitions before every broker's metadata shows the new ones.
    await h.waitFor(async () => (await a.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions.length === 5, '5 partitions in the metadata')
    await a.deleteTopics({ topics: [topic] })
    h.check(!(await a.listTopics()).includes(topic), `${topic} still listed after deleteTopics`)
  },

  async 'produce-consume' (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    await createTopic(ctx, a, topic)
    const producer = await connected(ctx, kafka(ctx).producer())
    const large = h.largeValue()
    const sent = [
      { key: Buffer.from('key-0'), value: Buffer.from('value-0'), headers: { h1: Buffer.from('v1'), h2: Buffer.alloc(0) }, timestamp: '1700000000000' },
      { key: null, value: null },
      { key: Buffer.alloc(0), value: Buffer.alloc(0) },
      { key: Buffer.from('large'), value: large }
    ]
    const before = Date.now()
    for (const message of sent) {
      // One send per record: offsets 0..3 in order, the large record alone in its request.
      await producer.send({ topic, messages: [{ ...message, partition: 0 }] })
    }
    const after = Date.now()
    const got = await consumeUntil(ctx, topic, ctx.topic('group'), { 0: 4 })
    h.checkEqual(got.length, 4, 'records consumed')
    got.forEach((m, i) => {
      const want = sent[i]
      h.checkEqual(Number(m.offset), i, `offset of record ${i}`)
      h.checkEqual(h.hex(m.key), h.hex(want.key), `key of record ${i}`)
      h.checkEqual(h.hex(m.value), h.hex(want.value), `value of record ${i}`)
      h.checkEqual(toHeaderPairs(m.headers).map(([k, v]) => [k, h.hex(v)]), toHeaderPairs(want.headers).map(([k, v]) => [k, h.hex(v)]), `headers of record ${i}`)
      const ts = Number(m.timestamp)
      if (want.timestamp) h.checkEqual(ts, Number(want.timestamp), `timestamp of record ${i}`)
      else h.check(ts >= before - 1 && ts <= after + 1, `timestamp of record ${i}: ${ts} not between ${before} and ${after}`)
    })
  },

  async 'produce-codec' (ctx, codec) {
    const a = await admin(ctx)
    const topic = `compat-codec-${codec}-${CLIENT}-${ctx.runId}`
    await createTopic(ctx, a, topic)
    const producer = await connected(ctx, kafka(ctx).producer())
    const messages = Array.from({ length: 100 }, (_, i) => ({ ...h.codecRecord(codec, i), partition: 0 }))
    await producer.send({ topic, compression: COMPRESSION[codec], messages })
    h.checkEqual(await highWatermarks(a, topic), { 0: 100 }, 'high watermark after producing')
  },

  async 'consume-codec' (ctx, { codec, writer }) {
    const topic = `compat-codec-${codec}-${writer}-${ctx.runId}`
    const got = await consumeUntil(ctx, topic, ctx.topic(`consume-codec-${codec}-${writer}`), { 0: 100 })
    h.checkCodecRecords(codec, got.map(m => ({ ...m, headers: toHeaderPairs(m.headers) })))
  },

  async 'list-offsets-by-time' (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    await createTopic(ctx, a, topic, 1, KEEP_FOREVER)
    const producer = await connected(ctx, kafka(ctx).producer())
    for (const [i, t] of h.TIMES.entries()) {
      await producer.send({ topic, messages: [{ value: `t${i}`, timestamp: String(t), partition: 0 }] })
    }
    const [offsets] = await a.fetchTopicOffsets(topic)
    h.checkEqual([Number(offsets.low), Number(offsets.high)], [0, 3], 'earliest and latest offsets')
    const at = async time => Number((await a.fetchTopicOffsetsByTimestamp(topic, time))[0].offset)
    h.checkEqual(await at(1700000000500), 1, 'offset for 1700000000500')
    h.checkEqual(await at(1700000002000), 2, 'offset for 1700000002000')
    // kafkajs turns Kafka's -1 ("no such record") into the latest offset.
    h.checkEqual(await at(1700000003000), 3, 'offset for 1700000003000 (kafkajs shows none as the latest offset)')
  },

  async 'consumer-group' (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    const groupId = ctx.topic('group')
    await createTopic(ctx, a, topic, 6)
    const producer = await connected(ctx, kafka(ctx).producer())
    for (let p = 0; p < 6; p++) {
      await producer.send({ topic, messages: Array.from({ length: 100 }, (_, i) => ({ partition: p, value: `p${p}-${i}` })) })
    }
    const seen = new Set()
    const members = []
    const startMember = async name => {
      const consumer = kafka(ctx).consumer({ groupId })
      const member = { name, consumer, assignment: null, stopped: false }
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        member.assignment = (payload.memberAssignment[topic] || []).slice().sort()
        h.log(`${name} joined: partitions ${member.assignment}`)
      })
      await connected(ctx, consumer)
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await consumer.run({ eachMessage: async ({ partition, message }) => { seen.add(`${partition}:${message.offset}`) } })
      members.push(member)
      return member
    }
    // Disjoint assignments that cover all six partitions, among the given members.
    const covers = group => {
      const owned = group.flatMap(m => m.assignment || [])
      return group.every(m => m.assignment && m.assignment.length > 0) &&
        owned.length === 6 && new Set(owned).size === 6
    }
    await startMember('member-1')
    await h.waitFor(() => covers(members), 'member-1 to be assigned')
    await startMember('member-2')
    await h.waitFor(() => covers(members), 'two members to share the partitions')
    await startMember('member-3')
    await h.waitFor(() => covers(members), 'three members to share the partitions')
    const [stopped, ...remaining] = members
    await stopped.consumer.disconnect()
    stopped.stopped = true
    await h.waitFor(() => covers(remaining), 'the two remaining members to share the six partitions')
    const committed = async () => {
      const [t] = await a.fetchOffsets({ groupId, topics: [topic] })
      return t.partitions.every(p => Number(p.offset) === 100)
    }
    await h.waitFor(committed, 'committed offsets of 100 on every partition')
    h.checkEqual(seen.size, 600, 'distinct records consumed by the group')
    h.check(covers(remaining), 'final assignment no longer covers the partitions disjointly')
  },

  async 'resume-committed' (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    const groupId = ctx.topic('group')
    await createTopic(ctx, a, topic)
    const producer = await connected(ctx, kafka(ctx).producer())
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: 0, value: `r${i}` })) })

    const first = kafka(ctx).consumer({ groupId })
    await connected(ctx, first)
    await first.subscribe({ topics: [topic], fromBeginning: true })
    let committed
    const committedFour = new Promise(resolve => { committed = resolve })
    await first.run({
      autoCommit: false,
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
    await createTopic(ctx, a, topic, 3)
    // kafkajs's producer is not idempotent by default; its retries default to unlimited then.
    const producer = await connected(ctx, kafka(ctx).producer({ idempotent: true }))
    for (let start = 0; start < 1000; start += 100) {
      const messages = Array.from({ length: 100 }, (_, j) => ({ partition: (start + j) % 3, value: String(start + j) }))
      await producer.send({ topic, acks: -1, messages })
    }
    const ends = await highWatermarks(a, topic)
    h.checkEqual(ends, { 0: 334, 1: 333, 2: 333 }, 'high watermarks')
    const got = await consumeUntil(ctx, topic, ctx.topic('group'), ends)
    h.checkEqual(got.length, 1000, 'records consumed')
    for (let p = 0; p < 3; p++) {
      const values = got.filter(m => m.partition === p).map(m => Number(m.value.toString()))
      const expected = Array.from({ length: 1000 }, (_, i) => i).filter(i => i % 3 === p)
      h.checkEqual(values, expected, `values on partition ${p} in order`)
    }
  },

  async transactions (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    await createTopic(ctx, a, topic)
    const producer = await connected(ctx, kafka(ctx).producer({ transactionalId: ctx.topic('txn'), idempotent: true, maxInFlightRequests: 1 }))
    const batch = prefix => Array.from({ length: 10 }, (_, i) => ({ partition: 0, value: `${prefix}${i}` }))
    const committed = await producer.transaction()
    await committed.send({ topic, messages: batch('committed-') })
    await committed.commit()
    const aborted = await producer.transaction()
    await aborted.send({ topic, messages: batch('aborted-') })
    await aborted.abort()
    // The coordinator writes the markers after EndTxn has answered, as Kafka does: wait for
    // the log end to reach 22 (20 records and two markers).
    const ends = { 0: 22 }
    await h.waitFor(async () => (await highWatermarks(a, topic))[0] === 22, 'the abort marker (log end offset 22)')
    const readCommitted = await consumeUntil(ctx, topic, ctx.topic('read-committed'), ends)
    h.checkEqual(readCommitted.map(m => m.value.toString()), batch('committed-').map(m => m.value), 'read_committed values')
    h.checkEqual(readCommitted.map(m => Number(m.offset)), [...Array(10).keys()], 'read_committed offsets')
    const readUncommitted = await consumeUntil(ctx, topic, ctx.topic('read-uncommitted'), ends, { readUncommitted: true })
    h.checkEqual(readUncommitted.map(m => m.value.toString()), [...batch('committed-'), ...batch('aborted-')].map(m => m.value), 'read_uncommitted values')
    h.checkEqual(readUncommitted.map(m => Number(m.offset)), [...Array(10).keys(), ...Array.from({ length: 10 }, (_, i) => 11 + i)], 'read_uncommitted offsets')
  },

  async 'delete-records' (ctx) {
    const a = await admin(ctx)
    const topic = ctx.topic()
    await createTopic(ctx, a, topic)
    const producer = await connected(ctx, kafka(ctx).producer())
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: 0, value: `d${i}` })) })
    // deleteTopicRecords looks the leader up in the admin's cached metadata only, which
    // holds a topic once the admin has asked for it.
    await a.fetchTopicMetadata({ topics: [topic] })
    await a.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '5' }] })
    const [offsets] = await a.fetchTopicOffsets(topic)
    h.checkEqual(Number(offsets.low), 5, 'earliest offset after deleteTopicRecords')
    const got = await consumeUntil(ctx, topic, ctx.topic('group'), { 0: 10 })
    h.checkEqual(got.map(m => Number(m.offset)), [5, 6, 7, 8, 9], 'offsets read from the beginning')
  }
}

h.main(CLIENT, scenarios)
