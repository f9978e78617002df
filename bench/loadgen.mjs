#!/usr/bin/env node
// Load generator for syncd and the servers it is measured against (bench/README.md).
//
// One Node process drives thousands of y-websocket connections. It speaks the protocol
// directly (no WebsocketProvider): each writer owns a Y.Doc with its own clientID and types
// single characters into a Y.Text and into a y-prosemirror `prosemirror` XmlFragment
// (paragraph > XmlText, the layout y-prosemirror writes). Every update is generated and
// framed before the timed phase starts, so timing only covers sending and receiving.
//
// Latency attribution survives servers that merge several updates into one frame: a
// received update is decoded for the (clientID, clock) ranges it carries (Y.parseUpdateMeta),
// each receiver remembers how far it knows every writer, and every clock that becomes newly
// known is one delivery of the keystroke that produced it, timed against that keystroke's
// send time. One keystroke is one clock, so one delivery per keystroke per receiver.
//
// Each scenario prints ONE JSON line on stdout; progress goes to stderr.
//   node loadgen.mjs fanout|rate|max|conns|coldload|xinstance --target syncd|syncd-hocuspocus|relay|hocuspocus --url ws://127.0.0.1:PORT ...
// `node loadgen.mjs --help` lists the options.

import { createHmac, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'

import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import WebSocket from 'ws'
import { messageYjsSyncStep1, messageYjsSyncStep2, messageYjsUpdate } from 'y-protocols/sync'
import * as Y from 'yjs'

const MSG_SYNC = 0
const MSG_AWARENESS = 1
const MSG_AUTH = 2
const MSG_HOCUS_SYNC_REPLY = 4 // Hocuspocus: a sync message that must not trigger a step 1
const EMPTY_UPDATE = new Uint8Array([0, 0])
const EMPTY_STATE_VECTOR = new Uint8Array([0])
const TEXT = 'the quick brown fox jumps over the lazy dog while the team edits the notes '

const HELP = `usage: node loadgen.mjs SCENARIO [options]
scenarios: fanout | rate | max | conns | coldload | xinstance
  (rate: fanout at a fixed offered delivery rate, receivers not applying updates, reporting
   server CPU %: the issue 15 target "server CPU at 381,000 deliveries/s in 1 room x 50")
  --target syncd|syncd-hocuspocus|relay|hocuspocus   framing and handshake of the server (default syncd;
                                   syncd-hocuspocus: syncd's /hocuspocus endpoint)
  --url ws://127.0.0.1:PORT         server (syncd/relay: /ws/notes/<room> is appended)
  --url-b URL                       xinstance: the instance the readers connect to
  --secret S                        JWT_SECRET of syncd (an HS256 token is minted here)
  --rooms R --clients C --writers W per room; every client also receives
  --rate N                          fanout: keystrokes/s in, all writers together
  --delivery-rate D                 fanout/rate: offered deliveries/s instead (keystrokes/s =
                                   D / (clients - 1)); overrides --rate
  --duration S                      timed seconds (fanout, each max step)
  --warmup S                        untimed seconds at the same rate before fanout
  --apply / --no-apply              receivers apply updates into their own Y.Doc
  --shape both|text|prosemirror     where keystrokes go (default both, alternating)
  --awareness HZ                    cursor moves per writer per second (0 = off)
  --start-rate N --factor F --max-steps K --max-p99 MS   (max: ramp x F per step until a
                                   step fails, a failed step tried once more)
  --resolution R --refine K         (max) then bisect until the failing rate is within x(1+R)
                                   of the passing one (default 0.05), at most K bisections
                                   (default 6); no step starts unless it can end before
                                   --timeout, so a search cut short still reports
  --pacing batched|paced            batched (default): a frame that reaches many receivers is
                                   decoded once, latency from the actual send; paced: as the
                                   independent generator of issue 15 does, every received frame
                                   decoded per receiver and latency from the scheduled send time
  --conns N --concurrency K         (conns, and connect concurrency everywhere)
  --phase seed|cold --docs K --keystrokes N --samples M --run-id ID   (coldload)
  --pids P1,P2                      server pids: CPU seconds and RSS read from /proc
  --clk-tck N                       clock ticks per second of /proc/PID/stat (100)
  --server-core N                   the CPU the server is pinned to: how busy it was in all
                                   (/proc/stat), to tell a starved server from an idle one
  --timeout S                       hard limit of the whole run (default 600)
  --slow-ms MS                      fanout: also report when deliveries slower than MS
                                   arrived (10 ms bins of epoch ms: count, max), to line
                                   them up with a server's own timeline (0 = off)`

// -- options ----------------------------------------------------------------------------

function options() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      help: { type: 'boolean', default: false },
      target: { type: 'string', default: 'syncd' },
      url: { type: 'string', default: 'ws://127.0.0.1:3001' },
      'url-b': { type: 'string' },
      secret: { type: 'string', default: process.env.JWT_SECRET || '' },
      rooms: { type: 'string', default: '1' },
      clients: { type: 'string', default: '10' },
      writers: { type: 'string', default: '2' },
      rate: { type: 'string', default: '100' },
      'delivery-rate': { type: 'string', default: '0' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      apply: { type: 'boolean' },
      'no-apply': { type: 'boolean' },
      shape: { type: 'string', default: 'both' },
      pacing: { type: 'string', default: 'batched' },
      awareness: { type: 'string', default: '0' },
      'start-rate': { type: 'string', default: '200' },
      factor: { type: 'string', default: '1.6' },
      'max-steps': { type: 'string', default: '14' },
      'max-p99': { type: 'string', default: '100' },
      refine: { type: 'string', default: '6' },
      resolution: { type: 'string', default: '0.05' },
      conns: { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '50' },
      phase: { type: 'string', default: 'seed' },
      docs: { type: 'string', default: '5' },
      keystrokes: { type: 'string', default: '10000' },
      samples: { type: 'string', default: '10' },
      'run-id': { type: 'string', default: randomBytes(4).toString('hex') },
      pids: { type: 'string', default: '' },
      'clk-tck': { type: 'string', default: '100' },
      'server-core': { type: 'string', default: '-1' },
      timeout: { type: 'string', default: '600' },
      seed: { type: 'string', default: '1' },
      'slow-ms': { type: 'string', default: '0' },
    },
  })
  if (values.help || positionals.length !== 1) {
    process.stderr.write(HELP + '\n')
    process.exit(values.help ? 0 : 2)
  }
  const num = (name) => {
    const value = Number(values[name])
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a number >= 0`)
    return value
  }
  const scenario = positionals[0]
  if (!['fanout', 'rate', 'max', 'conns', 'coldload', 'xinstance'].includes(scenario)) {
    throw new Error(`unknown scenario ${scenario}`)
  }
  if (!['syncd', 'syncd-hocuspocus', 'relay', 'hocuspocus'].includes(values.target)) {
    throw new Error(`unknown target ${values.target}`)
  }
  if (!['both', 'text', 'prosemirror'].includes(values.shape)) {
    throw new Error(`unknown shape ${values.shape}`)
  }
  if (!['batched', 'paced'].includes(values.pacing)) {
    throw new Error(`unknown pacing ${values.pacing}`)
  }
  // rate: at hundreds of thousands of deliveries/s, applying each into a Y.Doc per receiver
  // would make the load generator the bottleneck; the verifier still checks the server's state
  const applyDefault = scenario === 'fanout' || scenario === 'xinstance'
  const clients = Math.max(1, Math.floor(num('clients')))
  const deliveryRate = num('delivery-rate')
  return {
    scenario,
    target: values.target,
    url: values.url.replace(/\/+$/, ''),
    urlB: values['url-b'] ? values['url-b'].replace(/\/+$/, '') : null,
    secret: values.secret,
    rooms: Math.max(1, Math.floor(num('rooms'))),
    clients,
    writers: Math.max(1, Math.floor(num('writers'))),
    rate: deliveryRate > 0 ? deliveryRate / Math.max(1, clients - 1) : num('rate'),
    deliveryRate,
    duration: num('duration'),
    warmup: num('warmup'),
    apply: values['no-apply'] ? false : values.apply ? true : applyDefault,
    shape: values.shape,
    pacing: values.pacing,
    awareness: num('awareness'),
    startRate: num('start-rate'),
    factor: Math.max(1.05, num('factor')),
    maxSteps: Math.floor(num('max-steps')),
    maxP99: num('max-p99'),
    refine: Math.floor(num('refine')),
    resolution: Math.max(0.005, num('resolution')),
    conns: Math.floor(num('conns')),
    concurrency: Math.max(1, Math.floor(num('concurrency'))),
    phase: values.phase,
    docs: Math.max(1, Math.floor(num('docs'))),
    keystrokes: Math.floor(num('keystrokes')),
    samples: Math.max(1, Math.floor(num('samples'))),
    runId: values['run-id'],
    slowMs: num('slow-ms'),
    pids: values.pids ? values.pids.split(',').filter(Boolean).map(Number) : [],
    clkTck: num('clk-tck') || 100,
    serverCore: Number.isInteger(Number(values['server-core'])) ? Number(values['server-core']) : -1,
    timeout: num('timeout'),
    seed: Math.floor(num('seed')),
  }
}

// -- small utilities ---------------------------------------------------------------------

const log = (...parts) => process.stderr.write(`[loadgen] ${parts.join(' ')}\n`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const round = (value, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits

/** Deterministic PRNG (mulberry32): the same seed types the same text. */
function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function base64url(data) {
  return Buffer.from(data).toString('base64url')
}

/** An HS256 JWT with syncd's claims; role `service` has every right on every note. */
function mintToken(secret) {
  const now = Math.floor(Date.now() / 1000)
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const claims = base64url(
    JSON.stringify({
      sub: 'bench',
      name: 'Bench',
      roles: ['service'],
      iat: now,
      exp: now + 24 * 3600,
      jti: randomBytes(8).toString('hex'),
    }),
  )
  const signature = createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url')
  return `${header}.${claims}.${signature}`
}

/** Bounded latency histogram: 10 µs buckets up to 20 s, exact count, max and mean. */
class Histogram {
  static BUCKETS = 2_000_000

  constructor() {
    this.buckets = new Uint32Array(Histogram.BUCKETS)
    this.reset()
  }

  reset() {
    this.buckets.fill(0)
    this.count = 0
    this.max = 0
    this.sum = 0
  }

  add(ms) {
    let index = (ms * 100) | 0
    if (index < 0) index = 0
    else if (index >= Histogram.BUCKETS) index = Histogram.BUCKETS - 1
    this.buckets[index]++
    this.count++
    this.sum += ms
    if (ms > this.max) this.max = ms
  }

  percentile(p) {
    if (this.count === 0) return null
    const rank = Math.max(1, Math.ceil((p / 100) * this.count))
    let seen = 0
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]
      if (seen >= rank) return (i + 0.5) / 100
    }
    return this.max
  }

  summary() {
    if (this.count === 0) return { count: 0 }
    return {
      count: this.count,
      p50: round(this.percentile(50)),
      p95: round(this.percentile(95)),
      p99: round(this.percentile(99)),
      max: round(this.max),
      mean: round(this.sum / this.count),
    }
  }
}

function quantiles(samples) {
  if (!samples.length) return { count: 0 }
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
  return {
    count: sorted.length,
    p50: round(at(50)),
    min: round(sorted[0]),
    max: round(sorted.at(-1)),
    samples: sorted.map((x) => round(x)),
  }
}

/** CPU seconds (user + system) of the given processes, from /proc/PID/stat. */
function serverCpu(pids, clkTck) {
  let ticks = 0
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {
      return null
    }
  }
  return ticks / clkTck
}

/** Resident memory (bytes) of the given processes, from /proc/PID/status. */
function serverRss(pids) {
  let kb = 0
  for (const pid of pids) {
    try {
      const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      kb += match ? Number(match[1]) : 0
    } catch {
      return null
    }
  }
  return kb * 1024
}

/** [busy, total] clock ticks of one CPU from /proc/stat (null if unknown). */
function coreTicks(core) {
  if (core < 0) return null
  try {
    const line = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`cpu${core} `))
    if (line === undefined) return null
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number)
    const total = ticks.reduce((a, b) => a + b, 0)
    return [total - ticks[3] - ticks[4], total] // idle and iowait are not busy
  } catch {
    return null
  }
}

/** Marks CPU of the load generator and the servers between two points in time. */
class CpuMeter {
  constructor(ctx) {
    this.ctx = ctx
    this.wall = performance.now()
    this.own = process.cpuUsage()
    this.server = serverCpu(ctx.opts.pids, ctx.opts.clkTck)
    this.core = coreTicks(ctx.opts.serverCore)
  }

  read() {
    const wall = (performance.now() - this.wall) / 1000
    const own = process.cpuUsage(this.own)
    const server = serverCpu(this.ctx.opts.pids, this.ctx.opts.clkTck)
    const loadgen = (own.user + own.system) / 1e6
    return {
      wall_s: round(wall),
      loadgen_cpu_s: round(loadgen),
      loadgen_busy: round(loadgen / wall),
      server_cpu_s: server === null || this.server === null ? null : round(server - this.server),
      // how busy the server's core was with everything (a shared machine: other processes
      // there take CPU the server could not have, so its CPU % reads low while it falls behind)
      server_core_busy: this.coreBusy(),
    }
  }

  coreBusy() {
    const now = coreTicks(this.ctx.opts.serverCore)
    if (now === null || this.core === null || now[1] <= this.core[1]) return null
    return round((now[0] - this.core[0]) / (now[1] - this.core[1]))
  }
}

// -- framing: plain y-websocket, or Hocuspocus (every message prefixed with the doc name) --

function message(room, write) {
  const encoder = encoding.createEncoder()
  if (room.hocus) encoding.writeVarString(encoder, room.name)
  write(encoder)
  return encoding.toUint8Array(encoder)
}

const syncMessage = (room, kind, payload) =>
  message(room, (e) => {
    encoding.writeVarUint(e, MSG_SYNC)
    encoding.writeVarUint(e, kind)
    encoding.writeVarUint8Array(e, payload)
  })

const awarenessMessage = (room, payload) =>
  message(room, (e) => {
    encoding.writeVarUint(e, MSG_AWARENESS)
    encoding.writeVarUint8Array(e, payload)
  })

/** Hocuspocus waits for an auth message (token) per document before anything else. */
const hocusAuthMessage = (room, token) =>
  message(room, (e) => {
    encoding.writeVarUint(e, MSG_AUTH)
    encoding.writeVarUint(e, 0) // AuthMessageType.Token
    encoding.writeVarString(e, token)
  })

// -- the load generator's state ----------------------------------------------------------

class Context {
  constructor(opts) {
    this.opts = opts
    this.token = opts.target.startsWith('syncd') ? mintToken(opts.secret) : 'bench'
    this.writersById = new Map()
    this.rooms = []
    this.hists = [new Histogram()] // group 0: every receiver; more groups for xinstance
    this.awareness = new Histogram()
    this.metaCache = new Map()
    this.random = prng(opts.seed)
    this.nextClientId = 100_000 + Math.floor(this.random() * 1_000_000_000)
    this.errors = []
    this.unexpectedCloses = 0
    this.gaps = 0
    this.closing = false
    // --slow-ms: epoch ms bin (10 ms) of arrival -> [count, max latency]
    this.slowMs = opts.slowMs > 0 ? opts.slowMs : Infinity
    this.slowBins = new Map()
  }

  slow(now, ms) {
    const bin = Math.floor((performance.timeOrigin + now) / 10) * 10
    const entry = this.slowBins.get(bin)
    if (entry === undefined) this.slowBins.set(bin, [1, ms])
    else {
      entry[0]++
      if (ms > entry[1]) entry[1] = ms
    }
  }

  url(room, base = this.opts.url) {
    if (this.opts.target === 'hocuspocus') return base
    if (this.opts.target === 'syncd-hocuspocus') return `${base}/hocuspocus`
    return `${base}/ws/notes/${encodeURIComponent(room.name)}?token=${this.token}`
  }

  newRoom(name) {
    const hocus = this.opts.target === 'hocuspocus' || this.opts.target === 'syncd-hocuspocus'
    const room = { name, hocus, writers: [], clients: [] }
    this.rooms.push(room)
    return room
  }

  newClientId() {
    return this.nextClientId++
  }

  error(text) {
    if (this.errors.length < 20) this.errors.push(text)
  }

  /** (clientID, from, to) triples of an update, cached: merged frames repeat per peer. */
  meta(data, start, end) {
    // paced: every receiver decodes every frame it gets itself, as a real client would
    const key =
      end - start <= 1024 && this.opts.pacing !== 'paced'
        ? data.toString('latin1', start, end)
        : null
    if (key !== null) {
      const hit = this.metaCache.get(key)
      if (hit !== undefined) return hit
    }
    const parsed = Y.parseUpdateMeta(data.subarray(start, end))
    const triples = []
    for (const [client, to] of parsed.to) triples.push(client, parsed.from.get(client) ?? 0, to)
    if (key !== null) {
      if (this.metaCache.size > 4096) this.metaCache.clear()
      this.metaCache.set(key, triples)
    }
    return triples
  }
}

/** One y-websocket connection: answers the handshake and attributes every delivery. */
class Client {
  constructor(ctx, room, { writer = null, group = 0, url = null, apply = ctx.opts.apply } = {}) {
    this.ctx = ctx
    this.room = room
    this.writer = writer
    this.hist = ctx.hists[group]
    this.url = url ?? ctx.url(room)
    this.doc = apply ? new Y.Doc() : null
    this.known = new Float64Array(room.writers.length)
    this.awKnown = new Float64Array(room.writers.length)
    if (writer !== null) this.known[writer.slot] = Infinity
    this.ws = null
    this.synced = false
    this.closed = false
    this.closedByUs = false
    this.onSynced = null
  }

  /** Open the socket and resolve once sync step 2 has been applied. */
  connect(timeoutMs = 15_000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no sync step 2 within ${timeoutMs} ms`))
        this.close()
      }, timeoutMs)
      this.onSynced = () => {
        clearTimeout(timer)
        resolve(this)
      }
      const ws = new WebSocket(this.url, {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        handshakeTimeout: timeoutMs,
        // A zero mask makes `ws` skip masking: the server unmasks the same either way.
        generateMask: () => {},
      })
      this.ws = ws
      ws.binaryType = 'nodebuffer'
      ws.on('open', () => {
        if (this.room.hocus) ws.send(hocusAuthMessage(this.room, this.ctx.token))
        const stateVector = this.doc ? Y.encodeStateVector(this.doc) : EMPTY_STATE_VECTOR
        ws.send(syncMessage(this.room, messageYjsSyncStep1, stateVector))
      })
      ws.on('message', (data) => this.receive(data))
      ws.on('error', (error) => {
        this.ctx.error(`${this.room.name}: ${error.message}`)
        clearTimeout(timer)
        reject(error)
      })
      ws.on('close', (code, reason) => {
        this.closed = true
        clearTimeout(timer)
        if (!this.synced) reject(new Error(`closed ${code} ${reason} before sync`))
        else if (!this.ctx.closing && !this.closedByUs) {
          this.ctx.unexpectedCloses++
          this.ctx.error(`${this.room.name}: closed ${code} ${reason}`)
        }
      })
    })
  }

  send(frame) {
    if (!this.closed) this.ws.send(frame)
  }

  close() {
    this.closedByUs = true
    if (this.ws && !this.closed) this.ws.terminate()
    this.closed = true
  }

  receive(data) {
    const now = performance.now()
    if (this.room.hocus && data.length === 1) return // a bare ping (no document name)
    const decoder = decoding.createDecoder(data)
    if (this.room.hocus) decoding.readVarString(decoder)
    const type = decoding.readVarUint(decoder)
    if (type === MSG_SYNC || type === MSG_HOCUS_SYNC_REPLY) {
      const kind = decoding.readVarUint(decoder)
      const length = decoding.readVarUint(decoder)
      const start = decoder.pos
      if (kind === messageYjsSyncStep1) {
        // Nothing of ours is unknown to the server at connect time: answer with nothing.
        this.send(syncMessage(this.room, messageYjsSyncStep2, EMPTY_UPDATE))
        return
      }
      if (kind === messageYjsSyncStep2 || kind === messageYjsUpdate) {
        this.update(data, start, start + length, now)
        if (kind === messageYjsSyncStep2 && !this.synced) {
          this.synced = true
          this.onSynced?.()
        }
      }
    } else if (type === MSG_AWARENESS) {
      decoding.readVarUint(decoder) // payload length
      this.awareness(decoder, now)
    } else if (type === MSG_AUTH) {
      const kind = decoding.readVarUint(decoder)
      if (kind === 0) this.ctx.error(`${this.room.name}: permission denied`)
    }
  }

  update(data, start, end, now) {
    const triples = this.ctx.meta(data, start, end)
    for (let k = 0; k < triples.length; k += 3) {
      const writer = this.ctx.writersById.get(triples[k])
      if (writer === undefined || writer.room !== this.room) continue
      const to = triples[k + 2]
      const known = this.known[writer.slot]
      if (to <= known) continue // an echo, or already known
      let from = triples[k + 1]
      if (from > known) {
        this.ctx.gaps++ // clocks skipped: they will show up as missing
      } else {
        from = known
      }
      const sent = writer.sendTime
      const hist = this.hist
      for (let clock = from; clock < to; clock++) {
        const t = sent[clock]
        if (t > 0) {
          hist.add(now - t)
          if (now - t > this.ctx.slowMs) this.ctx.slow(now, now - t)
        }
      }
      this.known[writer.slot] = to
    }
    if (this.doc !== null) Y.applyUpdate(this.doc, data.subarray(start, end))
  }

  awareness(decoder, now) {
    const count = decoding.readVarUint(decoder)
    for (let i = 0; i < count; i++) {
      const clientId = decoding.readVarUint(decoder)
      const clock = decoding.readVarUint(decoder)
      decoding.readVarUint8Array(decoder) // the state, JSON: not needed for timing
      const writer = this.ctx.writersById.get(clientId)
      if (writer === undefined || writer.room !== this.room || writer.slot === this.writer?.slot) {
        continue
      }
      if (clock <= this.awKnown[writer.slot]) continue
      this.awKnown[writer.slot] = clock
      const t = writer.awTime[clock]
      if (t > 0) this.ctx.awareness.add(now - t)
    }
  }
}

/** A typist: its own Y.Doc and clientID; keystrokes are generated and framed in advance. */
class Writer {
  constructor(ctx, room, clientId = ctx.newClientId()) {
    this.ctx = ctx
    this.room = room
    this.slot = room.writers.length
    this.clientId = clientId
    this.doc = new Y.Doc()
    this.doc.clientID = clientId
    this.text = this.doc.getText('text')
    this.fragment = this.doc.getXmlFragment('prosemirror')
    this.paragraph = null
    this.typed = 0
    this.random = prng(clientId)
    this.sendTime = new Float64Array(1024)
    this.sentClock = 0 // every clock below this one has been sent
    this.frames = []
    this.updates = []
    this.clockEnd = []
    this.next = 0
    this.awFrames = []
    this.awNext = 0
    this.awClock = 0
    this.awTime = new Float64Array(256)
    this.client = null
    room.writers.push(this)
    ctx.writersById.set(clientId, this)
  }

  clock() {
    return Y.getState(this.doc.store, this.clientId)
  }

  capture(edit) {
    const updates = []
    const onUpdate = (update) => updates.push(update)
    this.doc.on('update', onUpdate)
    this.doc.transact(edit)
    this.doc.off('update', onUpdate)
    if (updates.length === 0) return null
    return updates.length === 1 ? updates[0] : Y.mergeUpdates(updates)
  }

  /** The paragraph this writer types into (y-prosemirror layout); sent before timing. */
  setupUpdate() {
    if (this.ctx.opts.shape === 'text') return null
    return this.capture(() => {
      this.paragraph = new Y.XmlElement('paragraph')
      this.paragraph.insert(0, [new Y.XmlText()])
      this.fragment.insert(this.fragment.length, [this.paragraph])
    })
  }

  /** One keystroke into the Y.Text or the paragraph; `backspace` deletes instead. */
  keystroke(backspace = false) {
    const shape = this.ctx.opts.shape
    const useText = shape === 'text' || (shape === 'both' && this.typed % 2 === 0)
    const target = useText ? this.text : this.paragraph.get(0)
    const ch = TEXT[Math.floor(this.random() * TEXT.length)]
    this.typed++
    return this.capture(() => {
      if (backspace && target.length > 0) target.delete(target.length - 1, 1)
      else target.insert(target.length, ch)
    })
  }

  /** Generate and frame `count` keystrokes and `awareness` cursor moves for the next phase. */
  prepare(count, awareness = 0) {
    this.frames = []
    this.updates = []
    this.clockEnd = []
    this.next = 0
    for (let i = 0; i < count; i++) {
      const update = this.keystroke()
      this.frames.push(syncMessage(this.room, messageYjsUpdate, update))
      if (this.ctx.opts.apply) this.updates.push(update)
      this.clockEnd.push(this.clock())
    }
    this.awFrames = []
    this.awNext = 0
    for (let i = 0; i < awareness; i++) this.awFrames.push(this.cursorFrame(i))
  }

  cursorFrame(i) {
    const index = Math.max(0, this.text.length - (i % 7))
    const position = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(this.text, index))
    const state = JSON.stringify({
      user: { name: `writer ${this.clientId}`, color: '#30bced' },
      cursor: { anchor: position, head: position },
    })
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, 1)
    encoding.writeVarUint(encoder, this.clientId)
    encoding.writeVarUint(encoder, this.awClock + i + 1)
    encoding.writeVarString(encoder, state)
    return awarenessMessage(this.room, encoding.toUint8Array(encoder))
  }

  sendNext(now) {
    const end = this.clockEnd[this.next]
    if (end >= this.sendTime.length) {
      const grown = new Float64Array(Math.max(end + 1, this.sendTime.length * 2))
      grown.set(this.sendTime)
      this.sendTime = grown
    }
    for (let clock = this.sentClock; clock < end; clock++) this.sendTime[clock] = now
    this.sentClock = end
    this.client.send(this.frames[this.next])
    if (this.client.doc !== null) Y.applyUpdate(this.client.doc, this.updates[this.next])
    this.next++
  }

  sendCursor(now) {
    const clock = ++this.awClock
    if (clock >= this.awTime.length) {
      const grown = new Float64Array(this.awTime.length * 2)
      grown.set(this.awTime)
      this.awTime = grown
    }
    this.awTime[clock] = now
    this.client.send(this.awFrames[this.awNext++])
  }

  /** Send the setup update untimed (its clocks carry no send time, so no delivery). */
  sendSetup() {
    const update = this.setupUpdate()
    if (update === null) return
    this.client.send(syncMessage(this.room, messageYjsUpdate, update))
    if (this.client.doc !== null) Y.applyUpdate(this.client.doc, update)
    this.sentClock = this.clock()
  }
}

// -- building and driving rooms ------------------------------------------------------------

async function connectAll(ctx, clients) {
  let next = 0
  let failures = 0
  const worker = async () => {
    while (next < clients.length) {
      const client = clients[next++]
      try {
        await client.connect()
      } catch (error) {
        failures++
        ctx.error(`connect ${client.room.name}: ${error.message}`)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(ctx.opts.concurrency, clients.length) }, worker))
  return failures
}

/** R rooms x C clients, the first W of each room writing; xinstance: readers on url-b. */
async function buildRooms(ctx, prefix) {
  const { rooms, clients, writers } = ctx.opts
  const all = []
  for (let r = 0; r < rooms; r++) {
    const room = ctx.newRoom(`${prefix}-${ctx.opts.runId}-${r}`)
    const typists = Array.from({ length: Math.min(writers, clients) }, () => new Writer(ctx, room))
    for (let c = 0; c < clients; c++) {
      const writer = typists[c] ?? null
      const remote = ctx.opts.scenario === 'xinstance' && writer === null
      const client = new Client(ctx, room, {
        writer,
        group: remote ? 1 : 0,
        url: remote ? ctx.url(room, ctx.opts.urlB) : null,
      })
      if (writer !== null) writer.client = client
      room.clients.push(client)
      all.push(client)
    }
  }
  const failures = await connectAll(ctx, all)
  if (failures) throw new Error(`${failures} of ${all.length} connections failed to sync`)
  for (const room of ctx.rooms) for (const writer of room.writers) writer.sendSetup()
  if (!(await waitDelivered(ctx, 15_000))) throw new Error('setup updates were not delivered')
  return all
}

function missingDeliveries(ctx) {
  let missing = 0
  for (const room of ctx.rooms) {
    for (const client of room.clients) {
      for (const writer of room.writers) {
        const known = client.known[writer.slot]
        if (known < writer.sentClock) missing += writer.sentClock - known
      }
    }
  }
  return missing
}

async function waitDelivered(ctx, timeoutMs) {
  const deadline = performance.now() + timeoutMs
  while (missingDeliveries(ctx) > 0) {
    if (performance.now() > deadline) return false
    await sleep(5)
  }
  return true
}

/**
 * Send every prepared keystroke (and cursor move) on schedule: writer w sends its i-th
 * keystroke at (i + 1 - phase_w) / rate seconds. A 1 ms timer loop; a late tick sends what
 * is due. Batched pacing times a keystroke from when it was sent; paced from when it was
 * due, so a load generator falling behind shows as latency instead of a lower rate.
 */
function drive(ctx, writers, ratePerWriter, seconds, awarenessHz) {
  return new Promise((resolve) => {
    const t0 = performance.now()
    const phases = writers.map(() => ctx.random())
    const total = seconds * 1000
    const paced = ctx.opts.pacing === 'paced'
    const firstIndex = writers.map((w) => w.next)
    const tick = () => {
      const now = performance.now()
      const elapsed = Math.min(now - t0, total) / 1000
      for (let i = 0; i < writers.length; i++) {
        const writer = writers[i]
        const due = Math.min(writer.frames.length, Math.floor(elapsed * ratePerWriter + phases[i]))
        while (writer.next < due) {
          const k = writer.next - firstIndex[i]
          const scheduled = t0 + (1000 * (k + 1 - phases[i])) / ratePerWriter
          writer.sendNext(paced ? Math.min(scheduled, now) : now)
        }
        if (awarenessHz > 0) {
          const cursorDue = Math.min(
            writer.awFrames.length,
            Math.floor(elapsed * awarenessHz + phases[i]),
          )
          while (writer.awNext < cursorDue) writer.sendCursor(now)
        }
      }
      if (now - t0 < total) {
        setTimeout(tick, 1)
        return
      }
      // Send what rounding left over: the next phase's keystrokes build on every one of these.
      for (const writer of writers) {
        while (writer.next < writer.frames.length) writer.sendNext(now)
        while (writer.awNext < writer.awFrames.length) writer.sendCursor(now)
      }
      resolve((now - t0) / 1000)
    }
    tick()
  })
}

function allWriters(ctx) {
  return ctx.rooms.flatMap((room) => room.writers)
}

/** Every receiver knows everything; docs agree (apply mode); the server's state has it all. */
async function convergence(ctx, { verify = ctx.opts.target !== 'relay' } = {}) {
  const drained = await waitDelivered(ctx, 20_000)
  const result = { missing: missingDeliveries(ctx), drained, docs_equal: null, verified: null }
  if (ctx.opts.apply) {
    result.docs_equal = ctx.rooms.every((room) => {
      const [first, ...rest] = room.clients
      const text = first.doc.getText('text').toString()
      const xml = first.doc.getXmlFragment('prosemirror').toString()
      return rest.every(
        (c) =>
          c.doc.getText('text').toString() === text &&
          c.doc.getXmlFragment('prosemirror').toString() === xml,
      )
    })
  }
  if (verify) {
    // A fresh client per room (at most 20): its sync step 2 is the server's whole state.
    let ok = true
    for (const room of ctx.rooms.slice(0, 20)) {
      const verifier = new Client(ctx, room, { apply: true })
      try {
        await verifier.connect()
        for (const writer of room.writers) {
          if (Y.getState(verifier.doc.store, writer.clientId) < writer.sentClock) ok = false
        }
        const reference = room.clients[0].doc
        if (reference !== null) {
          ok &&= verifier.doc.getText('text').toString() === reference.getText('text').toString()
        }
      } catch (error) {
        ctx.error(`verifier ${room.name}: ${error.message}`)
        ok = false
      } finally {
        verifier.close()
      }
    }
    result.verified = ok
  }
  result.converged =
    result.missing === 0 && result.docs_equal !== false && result.verified !== false
  return result
}

function shapeOf(ctx) {
  const { rooms, clients, writers } = ctx.opts
  return { rooms, clients, writers: Math.min(writers, clients), shape: ctx.opts.shape }
}

// -- scenarios ---------------------------------------------------------------------------

async function fanout(ctx) {
  const { rate, duration, warmup, awareness } = ctx.opts
  if (ctx.opts.scenario === 'xinstance') {
    if (!ctx.opts.urlB) throw new Error('xinstance needs --url-b (the readers\u2019 instance)')
    ctx.hists.push(new Histogram())
  }
  await buildRooms(ctx, ctx.opts.scenario)
  const writers = allWriters(ctx)
  const perWriter = rate / writers.length
  if (warmup > 0) {
    for (const w of writers) w.prepare(Math.ceil(perWriter * warmup), Math.ceil(awareness * warmup))
    await drive(ctx, writers, perWriter, warmup, awareness)
    await waitDelivered(ctx, 10_000)
    for (const hist of ctx.hists) hist.reset()
    ctx.awareness.reset()
  }
  for (const w of writers) {
    w.prepare(Math.ceil(perWriter * duration), Math.ceil(awareness * duration))
  }
  const meter = new CpuMeter(ctx)
  const startClocks = writers.map((w) => w.sentClock)
  const wall = await drive(ctx, writers, perWriter, duration, awareness)
  // Server CPU % over the sending window (the offered rate); the drain after it is in `cpu`.
  const sending = meter.read()
  const drained = await waitDelivered(ctx, 10_000)
  const cpu = meter.read()
  const sent = writers.reduce((n, w, i) => n + (w.sentClock - startClocks[i]), 0)
  const receivers = ctx.opts.clients - 1
  const all = mergeHists(ctx.hists)
  const result = {
    ...shapeOf(ctx),
    rate_in: round(rate, 1),
    offered_deliveries_per_s: round(rate * receivers, 1),
    duration_s: round(wall),
    apply: ctx.opts.apply,
    pacing: ctx.opts.pacing,
    sent,
    expected_deliveries: sent * receivers,
    deliveries: all.count,
    deliveries_per_s: round(all.count / wall, 1),
    latency_ms: all.summary(),
    drained,
    ...cpu,
    server_cpu_pct:
      sending.server_cpu_s === null ? null : round((100 * sending.server_cpu_s) / sending.wall_s, 1),
    loadgen_busy_sending: sending.loadgen_busy,
    // the server's core busy in all over the sending window, minus the server itself
    others_on_server_core_pct:
      sending.server_core_busy === null || sending.server_cpu_s === null
        ? null
        : round(Math.max(0, 100 * sending.server_core_busy - (100 * sending.server_cpu_s) / sending.wall_s), 1),
    server_cpu_ms_per_1k_deliveries:
      cpu.server_cpu_s === null || !all.count ? null : round((cpu.server_cpu_s * 1e6) / all.count),
  }
  if (ctx.opts.slowMs > 0) {
    result.slow_deliveries = [...ctx.slowBins].map(([bin, [n, max]]) => [bin, n, round(max)])
  }
  if (ctx.opts.scenario === 'xinstance') {
    result.latency_local_ms = ctx.hists[0].summary()
    result.latency_cross_ms = ctx.hists[1].summary()
  }
  if (awareness > 0) result.awareness_ms = ctx.awareness.summary()
  result.convergence = await convergence(ctx)
  return result
}

function mergeHists(hists) {
  if (hists.length === 1) return hists[0]
  const merged = new Histogram()
  for (const h of hists) {
    for (let i = 0; i < h.buckets.length; i++) merged.buckets[i] += h.buckets[i]
    merged.count += h.count
    merged.sum += h.sum
    merged.max = Math.max(merged.max, h.max)
  }
  return merged
}

/**
 * Ramp the input rate until p99 > max-p99 or deliveries fall behind; then bisect (geometric
 * midpoints) until the failing rate is within x(1 + resolution) of the passing one, so a
 * 10-15% difference between servers shows instead of both landing on the same ramp step.
 * Bounded: at most max-steps ramp steps and `refine` bisections, each step tried at most
 * twice, and no step starts unless it (with its retry) ends before --timeout.
 */
async function max(ctx) {
  const { duration, maxP99, awareness } = ctx.opts
  const started = performance.now()
  await buildRooms(ctx, 'max')
  const writers = allWriters(ctx)
  const receivers = ctx.opts.clients - 1
  const hist = ctx.hists[0]
  const steps = []
  let best = null
  let lastPass = 0
  let firstFail = null

  let slowestStepMs = 0
  const runStep = async (rateIn) => {
    const stepStart = performance.now()
    const perWriter = rateIn / writers.length
    for (const w of writers) {
      w.prepare(Math.ceil(perWriter * duration), Math.ceil(awareness * duration))
    }
    const planned = writers.reduce((n, w) => n + w.frames.length, 0)
    hist.reset()
    ctx.awareness.reset()
    const startClocks = writers.map((w) => w.sentClock)
    const meter = new CpuMeter(ctx)
    const wall = await drive(ctx, writers, perWriter, duration, awareness)
    // Within a second of the last send, everything sent must have arrived.
    const caughtUp = await waitDelivered(ctx, 1000)
    const cpu = meter.read()
    const sent = writers.reduce((n, w, i) => n + (w.sentClock - startClocks[i]), 0)
    const summary = hist.summary()
    const step = {
      rate_in: round(rateIn, 1),
      sent,
      deliveries: hist.count,
      deliveries_per_s: round(hist.count / wall, 1),
      expected_deliveries: sent * receivers,
      caught_up: caughtUp,
      latency_ms: summary,
      ...cpu,
    }
    if (awareness > 0) step.awareness_ms = ctx.awareness.summary()
    step.ok =
      caughtUp &&
      sent >= planned * 0.98 &&
      summary.count > 0 &&
      summary.p99 <= maxP99 &&
      hist.count >= sent * receivers
    step.loadgen_bound = cpu.loadgen_busy > 0.9
    steps.push(step)
    log(
      `step ${rateIn.toFixed(0)}/s in: ${step.deliveries_per_s} deliveries/s, ` +
        `p99 ${summary.p99} ms, ${step.ok ? 'ok' : 'FAIL'}, loadgen ${cpu.loadgen_busy}`,
    )
    const recovered = caughtUp || (await waitDelivered(ctx, 30_000))
    step.step_s = round((performance.now() - stepStart) / 1000)
    slowestStepMs = Math.max(slowestStepMs, performance.now() - stepStart)
    if (!recovered) return null // never recovered
    if (step.ok && (best === null || step.deliveries_per_s > best.deliveries_per_s)) best = step
    return step.ok
  }
  // The guard in main() ends the run at --timeout and loses the whole search: stop starting
  // steps in time. A step costs at most what the slowest so far did, twice (the retry), plus
  // the time its keystrokes take to prepare (grows with the rate: x2 margin), and the
  // convergence check afterwards (20 s drain + verifier) must still fit.
  let stoppedBy = null
  const fits = () => {
    const left = ctx.opts.timeout * 1000 - (performance.now() - started)
    return left > 2 * 2 * slowestStepMs + 30_000
  }

  if (ctx.opts.warmup > 0) {
    // One untimed step at the start rate: JIT, allocator and caches warm on both sides.
    const perWriter = ctx.opts.startRate / writers.length
    for (const w of writers) w.prepare(Math.ceil(perWriter * ctx.opts.warmup))
    await drive(ctx, writers, perWriter, ctx.opts.warmup, 0)
    await waitDelivered(ctx, 10_000)
  }
  // A failed step is tried once more before it counts: a neighbour's burst on the shared
  // machine should not end the ramp, a server at its limit fails twice.
  const attempt = async (rateIn) => {
    const ok = await runStep(rateIn)
    if (ok !== false) return ok
    await sleep(500)
    steps.at(-1).retried = true
    return runStep(rateIn)
  }
  let rate = ctx.opts.startRate
  let bisections = 0
  for (let i = 0; i < ctx.opts.maxSteps; i++) {
    if (!fits()) {
      stoppedBy = 'deadline'
      break
    }
    const ok = await attempt(rate)
    if (ok === null) {
      stoppedBy = 'server never caught up'
      break
    }
    if (!ok) {
      firstFail = rate
      break
    }
    lastPass = rate
    rate *= ctx.opts.factor
  }
  const wide = () => firstFail / lastPass > 1 + ctx.opts.resolution
  while (firstFail !== null && lastPass > 0 && wide() && stoppedBy === null) {
    if (bisections >= ctx.opts.refine) {
      stoppedBy = 'refine limit'
      break
    }
    if (!fits()) {
      stoppedBy = 'deadline'
      break
    }
    bisections++
    const middle = Math.sqrt(lastPass * firstFail)
    const ok = await attempt(middle)
    if (ok === null) {
      stoppedBy = 'server never caught up'
      break
    }
    if (ok) lastPass = middle
    else firstFail = middle
  }
  if (stoppedBy !== null) log(`search stopped: ${stoppedBy}`)
  return {
    ...shapeOf(ctx),
    apply: ctx.opts.apply,
    pacing: ctx.opts.pacing,
    max_p99_ms: maxP99,
    step_s: duration,
    best_deliveries_per_s: best?.deliveries_per_s ?? 0,
    best_rate_in: best?.rate_in ?? 0,
    best_latency_ms: best?.latency_ms ?? null,
    best_server_cpu_s: best?.server_cpu_s ?? null,
    best_loadgen_busy: best?.loadgen_busy ?? null,
    limited_by_loadgen: steps.some((s) => !s.ok && s.loadgen_bound),
    // the search's bracket of input rates: the limit lies between these (keystrokes/s in)
    last_pass_rate_in: lastPass > 0 ? round(lastPass, 1) : null,
    first_fail_rate_in: firstFail === null ? null : round(firstFail, 1),
    bracket: firstFail === null || lastPass <= 0 ? null : round(firstFail / lastPass, 4),
    resolution: ctx.opts.resolution,
    bisections,
    stopped_by: stoppedBy,
    search_s: round((performance.now() - started) / 1000),
    steps,
    convergence: await convergence(ctx),
  }
}

/** N idle synced connections over R rooms: connect rate and server memory per connection. */
async function conns(ctx) {
  const { conns: n, rooms } = ctx.opts
  const roomList = Array.from({ length: rooms }, (_, r) => ctx.newRoom(`conns-${ctx.opts.runId}-${r}`))
  const clients = Array.from(
    { length: n },
    (_, i) => new Client(ctx, roomList[i % rooms], { apply: false }),
  )
  for (const [i, client] of clients.entries()) roomList[i % rooms].clients.push(client)
  const before = serverRss(ctx.opts.pids)
  const t0 = performance.now()
  const failures = await connectAll(ctx, clients)
  const seconds = (performance.now() - t0) / 1000
  await sleep(3000) // let the server settle (allocator, lazy structures) before reading
  const after = serverRss(ctx.opts.pids)
  const open = clients.filter((c) => c.synced && !c.closed).length
  return {
    conns: n,
    rooms,
    failures,
    open,
    connect_s: round(seconds),
    connects_per_s: round((n - failures) / seconds, 1),
    rss_before: before,
    rss_after: after,
    bytes_per_conn: before === null || after === null ? null : Math.round((after - before) / n),
  }
}

/** A doc with N keystrokes of history (1 in 20 a backspace), typed by one writer. */
function historyWriter(ctx, room, index) {
  const writer = new Writer(ctx, room, 7_000_000 + index)
  const setup = writer.setupUpdate()
  const updates = setup ? [setup] : []
  for (let i = 0; i < ctx.opts.keystrokes; i++) {
    updates.push(writer.keystroke(i % 20 === 19))
  }
  return { writer, updates }
}

/** Connect a fresh client and time connect -> sync step 2 applied. */
async function timeColdSync(ctx, room) {
  const client = new Client(ctx, room, { apply: true })
  const t0 = performance.now()
  await client.connect()
  const ms = performance.now() - t0
  return { ms, client }
}

function sameContent(a, b) {
  return (
    a.getText('text').toString() === b.getText('text').toString() &&
    a.getXmlFragment('prosemirror').toString() === b.getXmlFragment('prosemirror').toString()
  )
}

/**
 * seed: type K docs of N keystrokes each (one update per keystroke, so the server keeps the
 * whole history), then time fresh clients while the doc is in memory (a holder stays
 * connected) and, unless the target keeps no state, once more after everyone left.
 * cold: after the runner restarted the server, time the first client of each doc.
 */
async function coldload(ctx) {
  const { docs, samples, phase } = ctx.opts
  const memory = []
  const unloaded = []
  const cold = []
  let verified = true
  let docBytes = 0
  for (let i = 0; i < docs; i++) {
    const room = ctx.newRoom(`cold-${ctx.opts.runId}-${i}`)
    const { writer, updates } = historyWriter(ctx, room, i)
    docBytes = Y.encodeStateAsUpdate(writer.doc).length
    if (phase === 'cold') {
      const { ms, client } = await timeColdSync(ctx, room)
      cold.push(ms)
      verified &&= sameContent(client.doc, writer.doc)
      client.close()
      continue
    }
    const holder = new Client(ctx, room, { apply: false })
    await holder.connect()
    for (let k = 0; k < updates.length; k++) {
      holder.send(syncMessage(room, messageYjsUpdate, updates[k]))
      if (k % 500 === 499) await sleep(1) // let the socket drain, as typing would
    }
    // Wait until the server holds all of it (a fresh client sees the whole doc).
    let ok = false
    for (let attempt = 0; attempt < 100 && !ok; attempt++) {
      const { client } = await timeColdSync(ctx, room)
      ok = sameContent(client.doc, writer.doc)
      client.close()
      if (!ok) await sleep(50)
    }
    verified &&= ok
    for (let s = 0; s < samples; s++) {
      const { ms, client } = await timeColdSync(ctx, room)
      memory.push(ms)
      verified &&= sameContent(client.doc, writer.doc)
      client.close()
    }
    if (ctx.opts.target.startsWith('syncd')) {
      // Everyone leaves: the room is stored and unloaded; the next client loads it again.
      holder.close()
      await sleep(1500)
      const { ms, client } = await timeColdSync(ctx, room)
      unloaded.push(ms)
      verified &&= sameContent(client.doc, writer.doc)
      client.close()
      await sleep(200)
    } else {
      holder.close()
    }
  }
  const result = { phase, docs, keystrokes: ctx.opts.keystrokes, doc_bytes: docBytes, verified }
  if (phase === 'cold') result.after_restart_ms = quantiles(cold)
  else {
    result.memory_ms = quantiles(memory)
    if (unloaded.length) result.unloaded_ms = quantiles(unloaded)
  }
  return result
}

// -- main --------------------------------------------------------------------------------

async function main() {
  const opts = options()
  const ctx = new Context(opts)
  if (opts.target.startsWith('syncd') && !opts.secret) throw new Error('--secret (JWT_SECRET) is required')
  const guard = setTimeout(() => {
    process.stdout.write(
      JSON.stringify({ scenario: opts.scenario, target: opts.target, error: 'timeout' }) + '\n',
    )
    process.exit(3)
  }, opts.timeout * 1000)
  const t0 = performance.now()
  let result
  try {
    const run = { fanout, rate: fanout, xinstance: fanout, max, conns, coldload }[opts.scenario]
    result = await run(ctx)
  } catch (error) {
    result = { error: error.message }
  }
  ctx.closing = true
  for (const room of ctx.rooms) for (const client of room.clients) client.close()
  const line = {
    scenario: opts.scenario,
    target: opts.target,
    awareness_hz: opts.awareness,
    ...result,
    unexpected_closes: ctx.unexpectedCloses,
    gaps: ctx.gaps,
    errors: ctx.errors,
    run_s: round((performance.now() - t0) / 1000),
  }
  process.stdout.write(JSON.stringify(line) + '\n')
  clearTimeout(guard)
  setTimeout(() => process.exit(result.error ? 1 : 0), 50)
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ error: error.message }) + '\n')
  process.exit(1)
})
