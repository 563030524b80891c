'use strict'
/**
 * The @platformatic/kafka driver of the compatibility matrix (compat/SCENARIOS.md).
 *
 * @platformatic/kafka 1.35.0, the newest release that runs on Node 20: the 2.x line needs
 * Node >= 22.22 (it calls Promise.withResolvers, which Node 20 lacks). Default settings,
 * except where a scenario says otherwise. The client is an ES module, loaded with import().
 *
 * What this client presents differently, and how the driver reads it:
 * - every consumer belongs to a group; a consumer that reads "from the beginning" uses the
 *   group's committed offset and falls back to the earliest one (`mode: 'committed'`,
 *   `fallbackMode: 'earliest'`, Kafka's `auto.offset.reset=earliest`), since the client's
 *   own default mode is `latest`;
 * - its zstd codec is Node's zlib zstd, which Node 20 does not have: the client refuses to
 *   write or read zstd there, so the zstd scenarios are n/a on Node 20;
 * - a stream knows it has read a partition to the end from `stream.offsetsToFetch` (the
 *   next offset it will fetch), which also moves past control and aborted records; it is
 *   checked on every message and after every fetch response.
 */

const h = require('../kafkajs/harness')

const CLIENT = 'platformatic-kafka'
let K // the @platformatic/kafka module

function base (ctx) {
  return { clientId: `compat-${CLIENT}`, bootstrapBrokers: [ctx.bootstrap] }
}

function admin (ctx) {
  const a = new K.Admin(base(ctx))
  ctx.defer(() => a.close())
  return a
}

function producer (ctx, options = {}) {
  const p = new K.Producer({ ...base(ctx), ...options })
  ctx.defer(() => p.close(true))
  return p
}

function consumer (ctx, groupId, options = {}) {
  const c = new K.Consumer({ ...base(ctx), groupId, ...options })
  ctx.defer(() => c.close(true))
  return c
}

/** Topics whose records carry 2023 timestamps: never eligible for time retention. */
const KEEP_FOREVER = [{ name: 'retention.ms', value: '-1' }]

async function createTopic (a, topic, partitions = 1, configs = []) {
  await a.createTopics({ topics: [topic], partitions, replicas: 1, configs })
}

/** The topic's partitions' high watermarks, as `{partition: offset}`. */
async function highWatermarks (a, topic, partitions) {
  const [listed] = await a.listOffsets({
    topics: [{ name: topic, partitions: Array.from({ length: partitions }, (_, p) => ({ partitionIndex: p, timestamp: K.ListOffsetTimestamps.LATEST })) }]
  })
  return Object.fromEntries(listed.partitions.map(p => [p.partitionIndex, Number(p.offset)]))
}

/**
 * Read `topic` with a consumer in `groupId` from its committed offsets (the earliest ones
 * when there are none) until every partition's next fetch offset reaches `ends[partition]`;
 * return the messages in arrival order. `options` go to `consume()`.
 */
async function consumeUntil (ctx, topic, groupId, ends, options = {}) {
  const c = consumer(ctx, groupId)
  const stream = await c.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest', ...options })
  ctx.defer(() => stream.close())
  const messages = []
  await new Promise((resolve, reject) => {
    const reached = () => Object.entries(ends).every(([p, end]) => Number(stream.offsetsToFetch.get(`${topic}:${p}`) ?? 0n) >= end)
    const check = () => { if (reached()) resolve() }
    stream.on('data', message => { messages.push(message); check() })
    // 'fetch' is emitted before the response's records are read: look once they have been.
    stream.on('fetch', () => setImmediate(check))
    stream.on('error', reject)
    check()
  })
  await stream.close()
  await c.close()
  return messages
}

/** A consumed message as `{offset, key, value, headers: [[k, v]]}` for the harness checks. */
function plain (m) {
  return { offset: m.offset, key: m.key, value: m.value, headers: Array.from(m.headers.entries()) }
}

function zstdUnavailable (codec) {
  if (codec === 'zstd' && !K.compressionsAlgorithms.zstd.available) {
    throw new h.NotApplicable(`@platformatic/kafka's zstd is Node's zlib zstd, which Node ${process.versions.node} lacks (needs Node >= 22.15)`)
  }
}

const scenarios = {
  async metadata (ctx) {
    const a = admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic, 2)
    const md = await a.metadata({ topics: [topic] })
    const brokers = Array.from(md.brokers.values()).map(b => `${b.host}:${b.port}`)
    h.checkEqual(brokers, [`${ctx.host}:${ctx.port}`], 'brokers')
    h.checkEqual(md.topics.get(topic)?.partitionsCount, 2, 'partition count')
    h.check((await a.listTopics()).includes(topic), `${topic} missing from listTopics`)
  },

  async 'topics-admin' (ctx) {
    const a = admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic, 3, [{ name: 'retention.ms', value: '3600000' }])
    const md = await a.metadata({ topics: [topic] })
    const [brokerId] = Array.from(md.brokers.keys())
    h.checkEqual(md.topics.get(topic).partitionsCount, 3, 'partitions after create')
    md.topics.get(topic).partitions.forEach((p, i) => h.checkEqual(p.leader, brokerId, `leader of partition ${i}`))
    const retention = async () => {
      const [described] = await a.describeConfigs({
        resources: [{ resourceType: K.ConfigResourceTypes.TOPIC, resourceName: topic, configurationKeys: ['retention.ms'] }]
      })
      return described.configs.find(c => c.name === 'retention.ms')?.value
    }
    h.checkEqual(await retention(), '3600000', 'retention.ms after create')
    await a.alterConfigs({
      resources: [{ resourceType: K.ConfigResourceTypes.TOPIC, resourceName: topic, configs: [{ name: 'retention.ms', value: '7200000' }] }]
    })
    h.checkEqual(await retention(), '7200000', 'retention.ms after alterConfigs')
    await a.createPartitions({ topics: [{ name: topic, count: 5 }] })
    // Kafka answers CreatePartitions before every broker's metadata shows the new ones.
    await h.waitFor(async () => (await a.metadata({ topics: [topic], forceUpdate: true })).topics.get(topic).partitionsCount === 5, '5 partitions in the metadata')
    await a.deleteTopics({ topics: [topic] })
    h.check(!(await a.listTopics()).includes(topic), `${topic} still listed after deleteTopics`)
  },

  async 'produce-consume' (ctx) {
    const a = admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic)
    const p = producer(ctx)
    const sent = [
      { key: Buffer.from('key-0'), value: Buffer.from('value-0'), headers: new Map([[Buffer.from('h1'), Buffer.from('v1')], [Buffer.from('h2'), Buffer.alloc(0)]]), timestamp: 1700000000000n },
      { key: undefined, value: undefined },
      { key: Buffer.alloc(0), value: Buffer.alloc(0) },
      { key: Buffer.from('large'), value: h.largeValue() }
    ]
    const before = Date.now()
    for (const message of sent) {
      // One send per record: offsets 0..3 in order, the large record alone in its request.
      await p.send({ messages: [{ ...message, topic, partition: 0 }] })
    }
    const after = Date.now()
    const got = await consumeUntil(ctx, topic, ctx.topic('group'), { 0: 4 })
    h.checkEqual(got.length, 4, 'records consumed')
    got.forEach((m, i) => {
      const want = sent[i]
      h.checkEqual(Number(m.offset), i, `offset of record ${i}`)
      h.checkEqual(h.hex(m.key), h.hex(want.key), `key of record ${i}`)
      h.checkEqual(h.hex(m.value), h.hex(want.value), `value of record ${i}`)
      const headers = pairs => Array.from(pairs || []).map(([k, v]) => [h.hex(k), h.hex(v)])
      h.checkEqual(headers(m.headers.entries()), headers(want.headers && want.headers.entries()), `headers of record ${i}`)
      const ts = Number(m.timestamp)
      if (want.timestamp) h.checkEqual(ts, Number(want.timestamp), `timestamp of record ${i}`)
      else h.check(ts >= before - 1 && ts <= after + 1, `timestamp of record ${i}: ${ts} not between ${before} and ${after}`)
    })
  },

  async 'produce-codec' (ctx, codec) {
    zstdUnavailable(codec)
    const a = admin(ctx)
    const topic = `compat-codec-${codec}-${CLIENT}-${ctx.runId}`
    await createTopic(a, topic)
    const p = producer(ctx)
    const messages = Array.from({ length: 100 }, (_, i) => {
      const r = h.codecRecord(codec, i)
      return { topic, partition: 0, key: Buffer.from(r.key), value: Buffer.from(r.value), headers: new Map([[Buffer.from('i'), Buffer.from(r.headers.i)]]) }
    })
    await p.send({ messages, compression: codec })
    h.checkEqual(await highWatermarks(a, topic, 1), { 0: 100 }, 'high watermark after producing')
  },

  async 'consume-codec' (ctx, { codec, writer }) {
    zstdUnavailable(codec)
    const topic = `compat-codec-${codec}-${writer}-${ctx.runId}`
    const got = await consumeUntil(ctx, topic, ctx.topic(`consume-codec-${codec}-${writer}`), { 0: 100 })
    h.checkCodecRecords(codec, got.map(plain))
  },

  async 'list-offsets-by-time' (ctx) {
    const a = admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic, 1, KEEP_FOREVER)
    const p = producer(ctx)
    for (const [i, t] of h.TIMES.entries()) {
      await p.send({ messages: [{ topic, partition: 0, value: Buffer.from(`t${i}`), timestamp: BigInt(t) }] })
    }
    const at = async timestamp => {
      const [listed] = await a.listOffsets({ topics: [{ name: topic, partitions: [{ partitionIndex: 0, timestamp }] }] })
      return Number(listed.partitions[0].offset)
    }
    h.checkEqual(await at(K.ListOffsetTimestamps.EARLIEST), 0, 'earliest offset')
    h.checkEqual(await at(K.ListOffsetTimestamps.LATEST), 3, 'latest offset')
    h.checkEqual(await at(1700000000500n), 1, 'offset for 1700000000500')
    h.checkEqual(await at(1700000002000n), 2, 'offset for 1700000002000')
    h.checkEqual(await at(1700000003000n), -1, 'offset for 1700000003000')
  },

  async 'consumer-group' (ctx) {
    const a = admin(ctx)
    const topic = ctx.topic()
    const groupId = ctx.topic('group')
    await createTopic(a, topic, 6)
    const p = producer(ctx)
    for (let partition = 0; partition < 6; partition++) {
      await p.send({ messages: Array.from({ length: 100 }, (_, i) => ({ topic, partition, value: Buffer.from(`p${partition}-${i}`) })) })
    }
    const seen = new Set()
    const members = []
    const startMember = async name => {
      const c = consumer(ctx, groupId)
      const member = { name, consumer: c, assignment: null, stream: null }
      c.on('consumer:group:join', ({ assignments }) => {
        member.assignment = (assignments || []).filter(x => x.topic === topic).flatMap(x => x.partitions).sort()
        h.log(`${name} joined: partitions ${member.assignment}`)
      })
      member.stream = await c.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest' })
      ctx.defer(() => member.stream.close())
      member.stream.on('data', m => seen.add(`${m.partition}:${m.offset}`))
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
    await stopped.stream.close()
    await stopped.consumer.close()
    await h.waitFor(() => covers(remaining), 'the two remaining members to share the six partitions')
    const committed = async () => {
      const [group] = await a.listConsumerGroupOffsets({ groups: [groupId] })
      const t = group.topics.find(x => x.name === topic)
      return !!t && t.partitions.length === 6 && t.partitions.every(x => Number(x.committedOffset) === 100)
    }
    await h.waitFor(committed, 'committed offsets of 100 on every partition')
    h.checkEqual(seen.size, 600, 'distinct records consumed by the group')
    h.check(covers(remaining), 'final assignment no longer covers the partitions disjointly')
  },

  async 'resume-committed' (ctx) {
    const a = admin(ctx)
    const topic = ctx.topic()
    const groupId = ctx.topic('group')
    await createTopic(a, topic)
    const p = producer(ctx)
    await p.send({ messages: Array.from({ length: 10 }, (_, i) => ({ topic, partition: 0, value: Buffer.from(`r${i}`) })) })

    const first = consumer(ctx, groupId)
    const stream = await first.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false })
    await new Promise((resolve, reject) => {
      stream.on('error', reject)
      stream.on('data', message => {
        // message.commit() commits this message's offset + 1: offset 4 after record 3.
        if (Number(message.offset) === 3) Promise.resolve(message.commit()).then(resolve, reject)
      })
    })
    await stream.close()
    await first.close()

    const got = await consumeUntil(ctx, topic, groupId, { 0: 10 })
    h.checkEqual(got.map(m => Number(m.offset)), [4, 5, 6, 7, 8, 9], 'offsets read after resuming')
    h.checkEqual(got.map(m => m.value.toString()), ['r4', 'r5', 'r6', 'r7', 'r8', 'r9'], 'values read after resuming')
  },

  async 'idempotent-producer' (ctx) {
    const a = admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic, 3)
    // Idempotence is off by default in this client; on, it sets acks=all itself.
    const p = producer(ctx, { idempotent: true })
    for (let start = 0; start < 1000; start += 100) {
      const messages = Array.from({ length: 100 }, (_, j) => ({ topic, partition: (start + j) % 3, value: Buffer.from(String(start + j)) }))
      await p.send({ messages })
    }
    const ends = await highWatermarks(a, topic, 3)
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
    const a = admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic)
    const p = producer(ctx, { idempotent: true, transactionalId: ctx.topic('txn') })
    const batch = prefix => Array.from({ length: 10 }, (_, i) => ({ topic, partition: 0, value: Buffer.from(`${prefix}${i}`) }))
    const committed = await p.beginTransaction()
    await committed.send({ messages: batch('committed-') })
    await committed.commit()
    const aborted = await p.beginTransaction()
    await aborted.send({ messages: batch('aborted-') })
    await aborted.abort()
    // The coordinator writes the markers after EndTxn has answered, as Kafka does: wait for
    // the log end to reach 22 (20 records and two markers).
    const ends = { 0: 22 }
    await h.waitFor(async () => (await highWatermarks(a, topic, 1))[0] === 22, 'the abort marker (log end offset 22)')
    const values = ms => ms.map(m => m.value.toString())
    const readCommitted = await consumeUntil(ctx, topic, ctx.topic('read-committed'), ends, { isolationLevel: K.FetchIsolationLevels.READ_COMMITTED })
    h.checkEqual(values(readCommitted), values(batch('committed-')), 'read_committed values')
    h.checkEqual(readCommitted.map(m => Number(m.offset)), [...Array(10).keys()], 'read_committed offsets')
    const readUncommitted = await consumeUntil(ctx, topic, ctx.topic('read-uncommitted'), ends, { isolationLevel: K.FetchIsolationLevels.READ_UNCOMMITTED })
    h.checkEqual(values(readUncommitted), values([...batch('committed-'), ...batch('aborted-')]), 'read_uncommitted values')
    h.checkEqual(readUncommitted.map(m => Number(m.offset)), [...Array(10).keys(), ...Array.from({ length: 10 }, (_, i) => 11 + i)], 'read_uncommitted offsets')
  },

  async 'delete-records' (ctx) {
    const a = admin(ctx)
    const topic = ctx.topic()
    await createTopic(a, topic)
    const p = producer(ctx)
    await p.send({ messages: Array.from({ length: 10 }, (_, i) => ({ topic, partition: 0, value: Buffer.from(`d${i}`) })) })
    const [deleted] = await a.deleteRecords({ topics: [{ name: topic, partitions: [{ partition: 0, offset: 5n }] }] })
    h.checkEqual(Number(deleted.partitions[0].lowWatermark), 5, 'low watermark returned by deleteRecords')
    const [listed] = await a.listOffsets({ topics: [{ name: topic, partitions: [{ partitionIndex: 0, timestamp: K.ListOffsetTimestamps.EARLIEST }] }] })
    h.checkEqual(Number(listed.partitions[0].offset), 5, 'earliest offset after deleteRecords')
    const got = await consumeUntil(ctx, topic, ctx.topic('group'), { 0: 10 })
    h.checkEqual(got.map(m => Number(m.offset)), [5, 6, 7, 8, 9], 'offsets read from the beginning')
  }
}

import('@platformatic/kafka').then(mod => {
  K = mod
  return h.main(CLIENT, scenarios)
}, err => {
  process.stderr.write(`cannot load @platformatic/kafka: ${err.stack}\n`)
  process.exit(1)
})
