'use strict'
/**
 * The scenario harness shared by the JavaScript drivers (kafkajs, platformatic-kafka,
 * confluent-kafka-javascript): command line, one JSON result line per scenario, timeouts,
 * clean-up, and the records the scenarios of compat/SCENARIOS.md write and check.
 *
 * How it works: `main(client, scenarios)` parses `--bootstrap HOST:PORT --run-id RID
 * --scenarios a,b,...`, then runs each named scenario in order. A scenario is an async
 * function `(ctx, arg)` looked up by its full name, or by its prefix for the parameterised
 * ones (`produce-codec-<codec>` gets `<codec>`, `consume-codec-<codec>:<writer>` gets
 * `{codec, writer}`). It passes by returning, fails by throwing, and is n/a by throwing
 * `NotApplicable`. Each scenario has 60 s; on timeout it is reported as a failure and its
 * clean-ups (`ctx.defer`) still run, each bounded to 10 s, so a stuck client cannot hold
 * up the next scenario. stdout carries only the result lines; everything else goes to
 * stderr. The process exits explicitly at the end, so a client that leaves a timer or
 * socket behind cannot keep it alive.
 *
 * Plain Node.js only (no npm dependency), so every driver can require it.
 */

const SCENARIO_TIMEOUT_MS = 60_000
const CLEANUP_TIMEOUT_MS = 10_000
const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd']

/** Thrown by a scenario the client has no API for; reported as `n/a` with the message. */
class NotApplicable extends Error {}

/** Parse the driver's command line; exits with status 2 on a missing or unknown flag. */
function parseArgs (argv) {
  const out = { bootstrap: null, runId: null, scenarios: [] }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    const value = argv[i + 1]
    if (value === undefined) usage(`${flag} needs a value`)
    if (flag === '--bootstrap') out.bootstrap = value
    else if (flag === '--run-id') out.runId = value
    else if (flag === '--scenarios') out.scenarios = value.split(',').filter(Boolean)
    else usage(`unknown argument ${flag}`)
    i++
  }
  if (!out.bootstrap || !out.runId) usage('--bootstrap and --run-id are required')
  const [host, port] = splitHostPort(out.bootstrap)
  out.host = host
  out.port = port
  return out
}

function usage (message) {
  process.stderr.write(`${message}\nusage: driver.js --bootstrap HOST:PORT --run-id RID --scenarios s1,s2,...\n`)
  process.exit(2)
}

function splitHostPort (hostPort) {
  const at = hostPort.lastIndexOf(':')
  return [hostPort.slice(0, at), Number(hostPort.slice(at + 1))]
}

/** Write a line to stderr (stdout is reserved for the result lines). */
function log (...parts) {
  process.stderr.write(parts.map(p => (typeof p === 'string' ? p : inspect(p))).join(' ') + '\n')
}

function inspect (value) {
  try {
    return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v))
  } catch {
    return String(value)
  }
}

/** Fail the scenario with `message` unless `condition` holds. */
function check (condition, message) {
  if (!condition) throw new Error(message)
}

/** Fail unless `actual` equals `expected` (compared as JSON, bigints as strings). */
function checkEqual (actual, expected, what) {
  const a = inspect(actual)
  const e = inspect(expected)
  if (a !== e) throw new Error(`${what}: got ${a}, expected ${e}`)
}

/** A Buffer, string or null as a comparable string: null stays null, bytes become hex. */
function hex (value) {
  if (value === null || value === undefined) return null
  return Buffer.from(value).toString('hex')
}

/**
 * Resolve once `predicate()` is true, polling every `intervalMs`; reject with `what` after
 * `timeoutMs`. Used only where the client offers no event to wait on (committed offsets,
 * group assignments held by the client).
 */
async function waitFor (predicate, what, timeoutMs = 45_000, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await predicate()) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

/** Reject after `ms` with `what`, or resolve with `promise`. */
function withTimeout (promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms / 1000} s`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * The record `i` (0-based) of the codec scenarios: key `k<i>`, value
 * `codec <codec> record <i> ` eight times, one header `i` = `<i>`.
 */
function codecRecord (codec, i) {
  return {
    key: `k${i}`,
    value: `codec ${codec} record ${i} `.repeat(8),
    headers: { i: String(i) }
  }
}

/** Check 100 consumed codec records (`{offset, key, value, headers}` with Buffers) in order. */
function checkCodecRecords (codec, records) {
  checkEqual(records.length, 100, `records read from the ${codec} topic`)
  records.forEach((r, i) => {
    const want = codecRecord(codec, i)
    checkEqual(Number(r.offset), i, `offset of record ${i}`)
    checkEqual(Buffer.from(r.key ?? '').toString(), want.key, `key of record ${i}`)
    checkEqual(Buffer.from(r.value ?? '').toString(), want.value, `value of record ${i}`)
    const headers = Object.fromEntries(r.headers.map(([k, v]) => [Buffer.from(k).toString(), Buffer.from(v ?? '').toString()]))
    checkEqual(headers, want.headers, `headers of record ${i}`)
  })
}

/** The large record of `produce-consume`: 1,000,000 bytes. */
const LARGE_VALUE_BYTES = 1_000_000
function largeValue () {
  const value = Buffer.alloc(LARGE_VALUE_BYTES)
  for (let i = 0; i < value.length; i++) value[i] = i % 251
  return value
}

/** The three timestamps of `list-offsets-by-time`. */
const TIMES = [1700000000000, 1700000001000, 1700000002000]

/** Run the scenarios named on the command line against `handlers` and exit. */
async function main (client, handlers) {
  const args = parseArgs(process.argv.slice(2))
  const base = { client, bootstrap: args.bootstrap, host: args.host, port: args.port, runId: args.runId }
  for (const name of args.scenarios) {
    const result = await runOne(base, handlers, name)
    process.stdout.write(JSON.stringify(result) + '\n')
  }
  process.exit(0)
}

function lookup (handlers, name) {
  if (handlers[name]) return [handlers[name], undefined]
  let m = /^produce-codec-([a-z0-9]+)$/.exec(name)
  if (m && CODECS.includes(m[1]) && handlers['produce-codec']) return [handlers['produce-codec'], m[1]]
  m = /^consume-codec-([a-z0-9]+):(.+)$/.exec(name)
  if (m && CODECS.includes(m[1]) && handlers['consume-codec']) {
    return [handlers['consume-codec'], { codec: m[1], writer: m[2] }]
  }
  return [null, undefined]
}

async function runOne (base, handlers, name) {
  const started = process.hrtime.bigint()
  const seconds = () => Math.round(Number(process.hrtime.bigint() - started) / 1e7) / 100
  const [handler, arg] = lookup(handlers, name)
  if (!handler) return { scenario: name, status: 'fail', reason: `unknown scenario ${name}`, seconds: 0 }
  const cleanups = []
  const ctx = {
    ...base,
    scenario: name,
    /** The scenario's topic name: compat-<client>-<scenario>-<RID>. */
    topic: (suffix = name) => `compat-${base.client}-${suffix}-${base.runId}`,
    /** Run `fn` when the scenario ends, pass, fail or time out (last deferred runs first). */
    defer: fn => cleanups.unshift(fn)
  }
  log(`--- ${name}`)
  let status = 'pass'
  let reason = ''
  try {
    await withTimeout(Promise.resolve().then(() => handler(ctx, arg)), SCENARIO_TIMEOUT_MS, name)
  } catch (err) {
    status = err instanceof NotApplicable ? 'n/a' : 'fail'
    reason = describeError(err)
    log(`${name}: ${status}: ${err && err.stack ? err.stack : reason}`)
  }
  for (const fn of cleanups) {
    try {
      await withTimeout(Promise.resolve().then(fn), CLEANUP_TIMEOUT_MS, `${name} clean-up`)
    } catch (err) {
      log(`${name}: clean-up failed: ${describeError(err)}`)
    }
  }
  return { scenario: name, status, reason, seconds: seconds() }
}

/** One line naming the error's class, message and, where the client has them, its Kafka code. */
function describeError (err) {
  if (!(err instanceof Error)) return String(err)
  if (err instanceof NotApplicable || err.constructor === Error) return err.message
  const parts = [`${err.name || err.constructor.name}: ${err.message}`]
  for (const key of ['type', 'code', 'apiCode']) {
    if (err[key] !== undefined && !String(err.message).includes(String(err[key]))) parts.push(`${key}=${err[key]}`)
  }
  const nested = err.errors || (err.partitions || []).map(p => p.error).filter(Boolean)
  if (!nested.length && err.cause) nested.push(err.cause)
  if (Array.isArray(nested) && nested.length) parts.push(`(${nested.map(describeError).join('; ')})`)
  return parts.join(' ').replace(/\s+/g, ' ').slice(0, 600)
}

module.exports = {
  CODECS,
  NotApplicable,
  TIMES,
  LARGE_VALUE_BYTES,
  check,
  checkEqual,
  checkCodecRecords,
  codecRecord,
  describeError,
  hex,
  largeValue,
  log,
  main,
  waitFor,
  withTimeout
}
