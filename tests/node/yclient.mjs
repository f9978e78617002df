// yclient.mjs: one long-lived Node process hosting many named, STOCK Yjs clients
// (yjs + y-websocket WebsocketProvider over `ws`, y-prosemirror, socket.io-client),
// driven by pytest through tests/support/yjs_node.py.
//
// Protocol (one JSON object per line):
//   stdin  -> {"id": N, "cmd": "...", "client": "name", ...args}
//   stdout <- {"id": N, "ok": true, "result": ...} | {"id": N, "ok": false, "error": "..."}
//   stdout <- {"event": "...", "client": "name", ...}   (unsolicited)
// stdout carries protocol lines only; every log goes to stderr.
//
// Commands are listed in COMMANDS at the bottom of this file.

import readline from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider, messageAuth } from 'y-websocket'
import * as decoding from 'lib0/decoding'
import * as authProtocol from 'y-protocols/auth'
import { Schema, Node as PMNode } from 'prosemirror-model'
import { schema as basicSchema } from 'prosemirror-schema-basic'
import { addListNodes } from '@tiptap/pm/schema-list'
import { EditorState } from 'prosemirror-state'
import {
  updateYFragment,
  initProseMirrorDoc,
  yXmlFragmentToProsemirrorJSON,
  absolutePositionToRelativePosition,
  ySyncPluginKey
} from 'y-prosemirror'
import { io as socketIo } from 'socket.io-client'

// every provider adds a process 'exit' listener; many clients are expected here
process.setMaxListeners(0)

// ---------------------------------------------------------------------------
// stdout is the protocol channel: route every console method to stderr.
for (const m of ['log', 'info', 'debug', 'warn', 'trace']) {
  console[m] = (...args) => console.error(`[yclient:${m}]`, ...args)
}

const send = (obj) => {
  process.stdout.write(JSON.stringify(obj) + '\n')
}
const emit = (client, event, fields = {}) => send({ event, client, ...fields })

process.on('uncaughtException', (err) => {
  console.error('uncaught exception', err)
  send({ event: 'uncaught', error: String(err && err.stack ? err.stack : err) })
})
process.on('unhandledRejection', (err) => {
  console.error('unhandled rejection', err)
  send({ event: 'uncaught', error: String(err && err.stack ? err.stack : err) })
})

// ---------------------------------------------------------------------------
// ProseMirror schema: prosemirror-schema-basic, the lists of prosemirror-schema-list
// (bullet_list, ordered_list, list_item), a task list in Tiptap's shape (taskList of
// taskItem with a boolean `checked`), and an inline atom `mention` node with attrs
// {id, label} (the shape Tiptap's Mention extension produces).
const listNodes = addListNodes(basicSchema.spec.nodes, 'paragraph block*', 'block')
export const schema = new Schema({
  nodes: listNodes.append({
    taskList: {
      group: 'block',
      content: 'taskItem+',
      toDOM: () => ['ul', { 'data-type': 'taskList' }, 0],
      parseDOM: [{ tag: 'ul[data-type="taskList"]', priority: 60 }]
    },
    taskItem: {
      content: 'paragraph block*',
      defining: true,
      attrs: { checked: { default: false } },
      toDOM: (node) => ['li', { 'data-type': 'taskItem', 'data-checked': String(node.attrs.checked) }, 0],
      parseDOM: [{
        tag: 'li[data-type="taskItem"]',
        priority: 60,
        getAttrs: (dom) => ({ checked: dom.getAttribute('data-checked') === 'true' })
      }]
    },
    mention: {
      group: 'inline',
      inline: true,
      atom: true,
      selectable: false,
      attrs: { id: { default: null }, label: { default: null } },
      toDOM: (node) => ['span', {
        'data-type': 'mention',
        'data-id': node.attrs.id,
        'data-label': node.attrs.label
      }, `@${node.attrs.label ?? node.attrs.id}`],
      parseDOM: [{
        tag: 'span[data-type="mention"]',
        getAttrs: (dom) => ({ id: dom.getAttribute('data-id'), label: dom.getAttribute('data-label') })
      }],
      leafText: (node) => `@${node.attrs.label ?? node.attrs.id}`
    }
  }),
  marks: basicSchema.spec.marks
})

// Plain text of ProseMirror JSON without a schema (so nodes unknown to our schema
// still count): a node holding inline content (text/mention/hard break) is a
// textblock whose children are concatenated; other containers join children by "\n".
const INLINE_LEAVES = new Set(['mention', 'hard_break', 'hardBreak', 'image'])
const pmJsonText = (node) => {
  if (node == null) return ''
  if (node.type === 'text') return node.text ?? ''
  if (node.type === 'mention') return `@${node.attrs?.label ?? node.attrs?.id ?? ''}`
  if (node.type === 'hard_break' || node.type === 'hardBreak') return '\n'
  const content = node.content ?? []
  const inline = content.some((c) => c.type === 'text' || INLINE_LEAVES.has(c.type))
  return content.map(pmJsonText).join(inline ? '' : '\n')
}

// y-prosemirror's JSON carries `attrs: {}` on marks without attributes; drop empty
// `attrs` objects and `marks` arrays so JSON written by hand compares equal.
const pmNormalize = (node) => {
  if (Array.isArray(node)) return node.map(pmNormalize)
  if (node === null || typeof node !== 'object') return node
  const out = {}
  for (const [k, v] of Object.entries(node)) {
    if ((k === 'attrs' && v && typeof v === 'object' && Object.keys(v).length === 0) ||
        (k === 'marks' && Array.isArray(v) && v.length === 0)) continue
    out[k] = (k === 'content' || k === 'marks') ? pmNormalize(v) : v
  }
  return out
}
const pmJson = (fragment, raw = false) => {
  const json = yXmlFragmentToProsemirrorJSON(fragment)
  return raw ? json : pmNormalize(json)
}

// ---------------------------------------------------------------------------
// helpers

const b64encode = (u8) => Buffer.from(u8).toString('base64')
const b64decode = (s) => new Uint8Array(Buffer.from(s, 'base64'))

// canonical JSON (sorted keys) for deep equality
const canon = (v) => {
  if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']'
  if (v !== null && typeof v === 'object') {
    return '{' + Object.keys(v).sort().filter((k) => v[k] !== undefined)
      .map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}'
  }
  return JSON.stringify(v)
}
const deepEqual = (a, b) => canon(a) === canon(b)

// `pattern` matches `value` if every key of an object pattern matches recursively
// (extra keys in value are allowed); anything else must be deep-equal.
const matches = (pattern, value) => {
  if (pattern !== null && typeof pattern === 'object' && !Array.isArray(pattern)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
    return Object.keys(pattern).every((k) => matches(pattern[k], value[k]))
  }
  return deepEqual(pattern, value)
}

const short = (v, max = 2000) => {
  let s
  try { s = JSON.stringify(v) } catch { s = String(v) }
  if (s === undefined) s = 'undefined'
  return s.length > max ? s.slice(0, max) + `... (${s.length} chars)` : s
}

class CommandError extends Error {}
const fail = (msg) => { throw new CommandError(msg) }
const need = (args, key) => {
  if (args[key] === undefined) fail(`missing argument '${key}'`)
  return args[key]
}

// ---------------------------------------------------------------------------
// clients

/**
 * @typedef {object} Client
 * @property {string} name
 * @property {Y.Doc} doc
 * @property {WebsocketProvider|null} provider
 * @property {any} sio socket.io-client socket or null
 * @property {Array<{code:number, reason:string, was_clean:boolean}>} closes server-side closes
 * @property {string[]} permissionDenied reasons received in auth messages
 * @property {Array<{name:string, args:any[]}>} sioEvents
 * @property {Set<any>} waiters
 */

/** @type {Map<string, Client>} */
const clients = new Map()

const getClient = (args) => {
  const name = need(args, 'client')
  const c = clients.get(name)
  if (!c) fail(`unknown client '${name}'`)
  return c
}
const getProvider = (c) => {
  if (!c.provider) fail(`client '${c.name}' has no y-websocket provider`)
  return c.provider
}

const statusOf = (provider) =>
  provider.wsconnected ? 'connected' : provider.wsconnecting ? 'connecting' : 'disconnected'

// re-evaluate the pending waits of a client (called on every relevant change)
const recheck = (c) => {
  for (const w of [...c.waiters]) w.check()
}

const newClient = (name) => {
  if (clients.has(name)) fail(`client '${name}' already exists (destroy it first)`)
  const doc = new Y.Doc()
  const c = {
    name,
    doc,
    provider: null,
    sio: null,
    closes: [],
    permissionDenied: [],
    sioEvents: [],
    waiters: new Set(),
    reconnect: true
  }
  doc.on('update', () => recheck(c))
  clients.set(name, c)
  return c
}

const attachProvider = (c, args) => {
  const url = need(args, 'url')
  const room = need(args, 'room')
  const params = { ...(args.params ?? {}) }
  if (args.token != null) params.token = args.token
  const headers = args.headers ?? null
  // `ws` accepts request headers as a third constructor argument; y-websocket only
  // passes (url, protocols), so a subclass supplies them (e.g. Authorization: Bearer).
  const WS = headers
    ? class extends WebSocket {
      constructor (u, protocols) { super(u, protocols, { headers }) }
    }
    : WebSocket
  const opts = {
    WebSocketPolyfill: WS,
    params,
    // required: otherwise clients in this one process sync through
    // BroadcastChannel and hide the server
    disableBc: true,
    connect: args.connect ?? true
  }
  if (args.protocols) opts.protocols = args.protocols
  if (args.max_backoff_ms != null) opts.maxBackoffTime = args.max_backoff_ms
  if (args.resync_interval_ms != null) opts.resyncInterval = args.resync_interval_ms
  c.reconnect = args.reconnect ?? true

  const provider = new WebsocketProvider(url, room, c.doc, opts)
  c.provider = provider

  // Observe the y-protocols auth message ("permission denied"). y-websocket copies
  // its message handler table into each provider (`provider.messageHandlers`), so we
  // wrap this provider's entry for messageAuth: peek at the message with a cloned
  // decoder, record it, then run the stock handler (which console.warns -> stderr).
  const stockAuthHandler = provider.messageHandlers[messageAuth]
  provider.messageHandlers[messageAuth] = (encoder, decoder, prov, emitSynced, messageType) => {
    let reason = null
    try {
      const peek = decoding.clone(decoder)
      if (decoding.readVarUint(peek) === authProtocol.messagePermissionDenied) {
        reason = decoding.readVarString(peek)
      }
    } catch (err) {
      console.error(`client ${c.name}: unreadable auth message`, err)
    }
    if (reason !== null) {
      c.permissionDenied.push(reason)
      emit(c.name, 'permission-denied', { reason, count: c.permissionDenied.length })
      recheck(c)
    }
    stockAuthHandler(encoder, decoder, prov, emitSynced, messageType)
  }

  provider.on('status', ({ status }) => {
    emit(c.name, 'status', { status })
    recheck(c)
  })
  provider.on('sync', (synced) => {
    emit(c.name, 'synced', { synced })
    recheck(c)
  })
  provider.on('connection-error', (event) => {
    emit(c.name, 'connection-error', { message: event?.message ?? String(event?.type ?? event) })
  })
  provider.on('connection-close', (event) => {
    // `event` is null when we closed the socket ourselves (disconnect(), watchdog)
    if (event == null) return
    const close = { code: event.code, reason: event.reason ?? '', was_clean: !!event.wasClean }
    c.closes.push(close)
    const willRetry = c.reconnect && provider.shouldReconnect(event, provider)
    if (!c.reconnect) {
      // stop the reconnect that y-websocket schedules right after this event; the
      // full disconnect() runs after the provider finished handling the close
      provider.shouldConnect = false
      queueMicrotask(() => provider.disconnect())
    }
    emit(c.name, 'close', { ...close, count: c.closes.length, will_reconnect: willRetry })
    recheck(c)
  })
  // y-websocket v3: emitted after a close whose code makes shouldReconnect false
  // (default: 4400-4499); the provider stops reconnecting on its own then.
  provider.on('closed', ({ code, reason }) => {
    emit(c.name, 'terminal-close', { code, reason })
  })
  provider.awareness.on('change', ({ added, updated, removed }, origin) => {
    if (args.awareness_events) {
      emit(c.name, 'awareness-change', { added, updated, removed, local: origin === 'local' })
    }
    recheck(c)
  })
  return provider
}

// ---------------------------------------------------------------------------
// ProseMirror editing, the way y-prosemirror's ySyncPlugin does it: build the
// editor doc (and its Y<->PM mapping) from the fragment, change it with a PM
// transaction, then write it back with updateYFragment inside a transaction
// whose origin is ySyncPluginKey.

const pmFragment = (c, args) => c.doc.getXmlFragment(args.field ?? 'prosemirror')

const pmEdit = (c, args, change) => {
  const fragment = pmFragment(c, args)
  // like an editor binding: initProseMirrorDoc may itself delete Y nodes that do
  // not fit the schema (stock y-prosemirror behaviour)
  const { doc: before, meta } = initProseMirrorDoc(fragment, schema)
  const state = EditorState.create({ schema, doc: before })
  const after = change(state)
  c.doc.transact(() => {
    updateYFragment(c.doc, fragment, after, meta)
  }, ySyncPluginKey)
  return after
}

const lastTextblockEnd = (doc) => {
  let end = null
  doc.descendants((node, pos) => {
    if (node.isTextblock) end = pos + node.nodeSize - 1
    return !node.isTextblock
  })
  return end
}

const pmInsert = (state, text, at) => {
  const tr = state.tr
  if (text === '') return state.doc
  if (at === 'end' || at == null) {
    const end = lastTextblockEnd(state.doc)
    if (end === null) {
      tr.insert(state.doc.content.size, schema.nodes.paragraph.create(null, schema.text(text)))
    } else {
      tr.insertText(text, end)
    }
  } else if (at === 'new_paragraph') {
    tr.insert(state.doc.content.size, schema.nodes.paragraph.create(null, schema.text(text)))
  } else if (typeof at === 'number') {
    tr.insertText(text, at)
  } else {
    fail(`bad 'at': ${short(at)} (use "end", "new_paragraph" or a PM position)`)
  }
  return tr.doc
}

// ---------------------------------------------------------------------------
// waits

const DEFAULT_TIMEOUT_MS = 10000

const awarenessStates = (provider) => {
  const out = {}
  for (const [id, state] of provider.awareness.getStates()) out[id] = state
  return out
}

// Returns a function () => [done, value] for the wait condition in `args`.
const waitCondition = (c, args) => {
  const what = need(args, 'what')
  const textCond = (value) => {
    if (args.equals !== undefined) return value === args.equals
    if (args.contains !== undefined) return value.includes(args.contains)
    if (args.min_length !== undefined) return value.length >= args.min_length
    fail(`wait ${what}: give 'equals', 'contains' or 'min_length'`)
  }
  switch (what) {
    case 'synced': {
      const p = getProvider(c)
      const want = args.equals ?? true
      return () => [p.synced === want, p.synced]
    }
    case 'status': {
      const p = getProvider(c)
      const want = need(args, 'equals')
      return () => { const s = statusOf(p); return [s === want, s] }
    }
    case 'text': {
      const t = c.doc.getText(args.field ?? 'text')
      return () => { const v = t.toString(); return [textCond(v), v] }
    }
    case 'pm_text': {
      const f = pmFragment(c, args)
      return () => { const v = pmJsonText(yXmlFragmentToProsemirrorJSON(f)); return [textCond(v), v] }
    }
    case 'pm': {
      const f = pmFragment(c, args)
      const want = need(args, 'equals')
      const wantN = pmNormalize(want)
      return () => { const v = pmJson(f); return [deepEqual(v, wantN), v] }
    }
    case 'closed': {
      const n = args.count ?? 1
      return () => [c.closes.length >= n, c.closes.length >= n ? c.closes[n - 1] : { closes: c.closes }]
    }
    case 'permission_denied': {
      const n = args.count ?? 1
      return () => [c.permissionDenied.length >= n,
        c.permissionDenied.length >= n ? c.permissionDenied[n - 1] : { reasons: c.permissionDenied }]
    }
    case 'awareness': {
      const p = getProvider(c)
      const own = String(c.doc.clientID)
      return () => {
        const states = awarenessStates(p)
        let ok = true
        if (args.count !== undefined) ok = ok && Object.keys(states).length === args.count
        if (args.client_id !== undefined) {
          const st = states[String(args.client_id)]
          if (args.absent) ok = ok && st === undefined
          else ok = ok && st !== undefined && (args.contains === undefined || matches(args.contains, st))
        } else if (args.contains !== undefined) {
          ok = ok && Object.entries(states).some(([id, st]) => id !== own && matches(args.contains, st))
        }
        return [ok, states]
      }
    }
    case 'sio_event': {
      const name = need(args, 'name')
      const n = args.count ?? 1
      return () => {
        const evs = c.sioEvents.filter((e) => e.name === name &&
          (args.contains === undefined || matches(args.contains, e.args[0])))
        return [evs.length >= n, evs.length >= n ? evs[n - 1].args : { seen: evs.length }]
      }
    }
    case 'sio_connected': {
      const want = args.equals ?? true
      return () => { const v = !!c.sio?.connected; return [v === want, v] }
    }
    default:
      fail(`unknown wait '${what}'`)
  }
}

const waitFor = (c, args) => new Promise((resolve, reject) => {
  const cond = waitCondition(c, args)
  const timeoutMs = args.timeout_ms ?? DEFAULT_TIMEOUT_MS
  const w = {}
  const finish = () => { clearTimeout(w.timer); c.waiters.delete(w) }
  w.check = () => {
    let done, value
    try { [done, value] = cond() } catch (err) { finish(); reject(err); return }
    if (done) { finish(); resolve(value) }
  }
  w.timer = setTimeout(() => {
    finish()
    let value
    try { value = cond()[1] } catch (err) { value = `<${err}>` }
    reject(new CommandError(
      `wait '${args.what}' on client '${c.name}' timed out after ${timeoutMs} ms ` +
      `(condition ${short(condSummary(args))}); current value: ${short(value)}`))
  }, timeoutMs)
  w.cancel = (why) => { finish(); reject(new CommandError(why)) }
  c.waiters.add(w)
  w.check()
})

const condSummary = (args) => {
  const out = {}
  for (const k of ['field', 'equals', 'contains', 'min_length', 'count', 'client_id', 'absent', 'name']) {
    if (args[k] !== undefined) out[k] = args[k]
  }
  return out
}

// ---------------------------------------------------------------------------
// socket.io

const sioConnect = (c, args) => new Promise((resolve, reject) => {
  if (c.sio) fail(`client '${c.name}' already has a socket.io connection`)
  const url = need(args, 'url')
  const opts = {
    transports: args.transports ?? ['websocket'],
    reconnection: args.reconnection ?? false,
    forceNew: true,
    timeout: args.timeout_ms ?? DEFAULT_TIMEOUT_MS
  }
  if (args.path) opts.path = args.path
  if (args.token != null || args.auth) opts.auth = { ...(args.auth ?? {}), ...(args.token != null ? { token: args.token } : {}) }
  if (args.query) opts.query = args.query
  const socket = socketIo(url, opts)
  c.sio = socket
  socket.onAny((name, ...evArgs) => {
    c.sioEvents.push({ name, args: evArgs })
    emit(c.name, 'sio', { name, args: evArgs })
    recheck(c)
  })
  socket.on('disconnect', (reason) => {
    emit(c.name, 'sio-disconnect', { reason })
    recheck(c)
  })
  let settled = false
  socket.on('connect', () => {
    emit(c.name, 'sio-connect', { id: socket.id })
    recheck(c)
    if (!settled) { settled = true; resolve({ id: socket.id }) }
  })
  socket.on('connect_error', (err) => {
    emit(c.name, 'sio-connect-error', { message: err?.message ?? String(err), data: err?.data ?? null })
    if (!settled && !opts.reconnection) {
      settled = true
      reject(new CommandError(`socket.io connect failed: ${err?.message ?? err}` +
        (err?.data ? ` ${short(err.data)}` : '')))
    }
  })
})

const sioEmit = (c, args) => {
  if (!c.sio) fail(`client '${c.name}' has no socket.io connection`)
  const name = need(args, 'event')
  const data = args.data === undefined ? [] : [args.data]
  if (!args.ack) {
    c.sio.emit(name, ...data)
    return Promise.resolve(null)
  }
  return c.sio.timeout(args.timeout_ms ?? DEFAULT_TIMEOUT_MS).emitWithAck(name, ...data)
    .catch((err) => { throw new CommandError(`socket.io ack for '${name}' failed: ${err?.message ?? err}`) })
}

// ---------------------------------------------------------------------------
// commands

const destroyClient = (c) => {
  for (const w of [...c.waiters]) w.cancel(`client '${c.name}' destroyed`)
  if (c.provider) c.provider.destroy()
  if (c.sio) c.sio.disconnect()
  c.doc.destroy()
  clients.delete(c.name)
}

// One plain `ws` connection that sends one binary frame (`head`, base64, then `fill` bytes
// of 0xff) and reports how the server closed it; code 1006: no close frame arrived.
const sendFrameAndClose = (args) => new Promise((resolve, reject) => {
  const head = b64decode(args.head ?? '')
  const frame = Buffer.alloc(head.length + (args.fill ?? 0), 0xff)
  frame.set(head, 0)
  const ws = new WebSocket(need(args, 'url'))
  const timer = setTimeout(() => { ws.terminate(); reject(new Error('no close within the timeout')) },
    args.timeout_ms ?? 20000)
  ws.on('open', () => ws.send(frame))
  ws.on('error', () => {}) // a reset ends in 'close' with 1006, which is the answer
  ws.on('close', (code, reason) => { clearTimeout(timer); resolve({ code, reason: reason.toString() }) })
})

const COMMANDS = {
  ping: () => 'pong',
  send_frame_and_close: sendFrameAndClose,
  clients: () => [...clients.keys()],

  // --- lifecycle ---------------------------------------------------------
  connect: (args) => {
    const c = newClient(need(args, 'client'))
    try {
      attachProvider(c, args)
    } catch (err) {
      destroyClient(c)
      throw err
    }
    return { client_id: c.doc.clientID, url: c.provider.url }
  },
  // a client with a Y.Doc but no provider (offline editing, socket.io only, ...)
  create: (args) => ({ client_id: newClient(need(args, 'client')).doc.clientID }),
  disconnect: (args) => { getProvider(getClient(args)).disconnect(); return null },
  reconnect: (args) => {
    const c = getClient(args)
    if (args.reconnect !== undefined) c.reconnect = args.reconnect
    if (args.params) getProvider(c).params = { ...getProvider(c).params, ...args.params }
    if (args.token !== undefined) getProvider(c).params = { ...getProvider(c).params, token: args.token }
    getProvider(c).connect()
    return null
  },
  destroy: (args) => { destroyClient(getClient(args)); return null },
  info: (args) => {
    const c = getClient(args)
    const p = c.provider
    return {
      client_id: c.doc.clientID,
      status: p ? statusOf(p) : null,
      synced: p ? p.synced : null,
      should_connect: p ? p.shouldConnect : null,
      url: p ? p.url : null,
      closes: c.closes,
      permission_denied: c.permissionDenied,
      sio_connected: c.sio ? c.sio.connected : null
    }
  },
  client_id: (args) => getClient(args).doc.clientID,

  // --- Y.Text ------------------------------------------------------------
  insert: (args) => {
    const t = getClient(args).doc.getText(args.field ?? 'text')
    const index = args.index ?? t.length
    if (index < 0 || index > t.length) fail(`index ${index} out of range 0..${t.length}`)
    t.insert(index, need(args, 'text'), args.attributes ?? undefined)
    return t.length
  },
  delete: (args) => {
    const t = getClient(args).doc.getText(args.field ?? 'text')
    const index = need(args, 'index')
    const length = need(args, 'length')
    if (index < 0 || index + length > t.length) fail(`range ${index}+${length} out of 0..${t.length}`)
    t.delete(index, length)
    return t.length
  },
  // one transaction (one update message) per character, like a person typing
  type: async (args) => {
    const c = getClient(args)
    const t = c.doc.getText(args.field ?? 'text')
    let index = args.index ?? t.length
    const interval = args.interval_ms ?? 0
    for (const ch of need(args, 'text')) {
      if (!clients.has(c.name)) fail(`client '${c.name}' destroyed while typing`)
      index = Math.min(index, t.length)
      t.insert(index, ch)
      index += ch.length
      if (interval > 0) await new Promise((resolve) => setTimeout(resolve, interval))
    }
    return t.length
  },
  text: (args) => getClient(args).doc.getText(args.field ?? 'text').toString(),

  // --- ProseMirror / Y.XmlFragment ---------------------------------------
  pm_set: (args) => {
    const c = getClient(args)
    const json = need(args, 'json')
    let node
    try { node = PMNode.fromJSON(schema, json) } catch (err) { fail(`invalid ProseMirror JSON: ${err.message}`) }
    pmEdit(c, args, () => node)
    return null
  },
  pm_insert_text: (args) => {
    const c = getClient(args)
    const text = need(args, 'text')
    const after = pmEdit(c, args, (state) => pmInsert(state, text, args.at ?? 'end'))
    return after.content.size
  },
  // one editor transaction (one update message) per character
  pm_type: async (args) => {
    const c = getClient(args)
    const interval = args.interval_ms ?? 0
    let at = args.at ?? 'end'
    for (const ch of need(args, 'text')) {
      if (!clients.has(c.name)) fail(`client '${c.name}' destroyed while typing`)
      pmEdit(c, args, (state) => pmInsert(state, ch, at))
      if (typeof at === 'number') at += ch.length
      else if (at === 'new_paragraph') at = 'end'
      if (interval > 0) await new Promise((resolve) => setTimeout(resolve, interval))
    }
    return null
  },
  pm_get: (args) => pmJson(pmFragment(getClient(args), args), !!args.raw),
  pm_text: (args) => pmJsonText(yXmlFragmentToProsemirrorJSON(pmFragment(getClient(args), args))),
  // publish a y-prosemirror cursor (awareness field "cursor" = relative positions),
  // as yCursorPlugin does for a selection anchor..head (PM positions)
  pm_cursor: (args) => {
    const c = getClient(args)
    const p = getProvider(c)
    const fragment = pmFragment(c, args)
    const { meta } = initProseMirrorDoc(fragment, schema)
    const anchor = need(args, 'anchor')
    const head = args.head ?? anchor
    p.awareness.setLocalStateField(args.state_field ?? 'cursor', {
      anchor: absolutePositionToRelativePosition(anchor, fragment, meta.mapping),
      head: absolutePositionToRelativePosition(head, fragment, meta.mapping)
    })
    return null
  },

  // --- awareness -----------------------------------------------------------
  awareness_set: (args) => { getProvider(getClient(args)).awareness.setLocalState(args.state ?? null); return null },
  awareness_set_field: (args) => {
    getProvider(getClient(args)).awareness.setLocalStateField(need(args, 'field'), args.value ?? null)
    return null
  },
  awareness_get: (args) => awarenessStates(getProvider(getClient(args))),

  // --- raw Yjs state -------------------------------------------------------
  state_update: (args) => b64encode(Y.encodeStateAsUpdate(getClient(args).doc,
    args.state_vector ? b64decode(args.state_vector) : undefined)),
  state_vector: (args) => b64encode(Y.encodeStateVector(getClient(args).doc)),
  apply_update: (args) => { Y.applyUpdate(getClient(args).doc, b64decode(need(args, 'base64')), 'yclient'); return null },

  // --- waiting -------------------------------------------------------------
  wait: (args) => waitFor(getClient(args), args),

  // --- socket.io -----------------------------------------------------------
  sio_connect: (args) => {
    const name = need(args, 'client')
    const c = clients.get(name) ?? newClient(name)
    return sioConnect(c, args)
  },
  sio_emit: (args) => sioEmit(getClient(args), args),
  sio_disconnect: (args) => {
    const c = getClient(args)
    if (c.sio) c.sio.disconnect()
    c.sio = null
    return null
  },
  sio_events: (args) => getClient(args).sioEvents,

  exit: () => {
    for (const c of [...clients.values()]) destroyClient(c)
    setImmediate(() => process.exit(0))
    return null
  }
}

const handle = async (msg) => {
  const { id, cmd } = msg
  try {
    const fn = COMMANDS[cmd]
    if (!fn) fail(`unknown command '${cmd}'`)
    const result = await fn(msg)
    send({ id, ok: true, result: result === undefined ? null : result })
  } catch (err) {
    if (!(err instanceof CommandError)) console.error(`command ${cmd} failed`, err)
    send({ id, ok: false, error: err instanceof CommandError ? err.message : String(err && err.stack ? err.stack : err) })
  }
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on('line', (line) => {
  if (!line.trim()) return
  let msg
  try {
    msg = JSON.parse(line)
  } catch (err) {
    send({ event: 'protocol-error', error: `bad JSON on stdin: ${err.message}` })
    return
  }
  handle(msg)
})
// the driver went away: do not linger as an orphan
rl.on('close', () => {
  for (const c of [...clients.values()]) {
    try { destroyClient(c) } catch {}
  }
  process.exit(0)
})

const pkgVersion = async (name) => {
  try {
    const { readFile } = await import('node:fs/promises')
    const url = new URL(`./node_modules/${name}/package.json`, import.meta.url)
    return JSON.parse(await readFile(url, 'utf8')).version
  } catch { return null }
}
send({
  event: 'ready',
  pid: process.pid,
  node: process.version,
  versions: Object.fromEntries(await Promise.all(
    ['yjs', 'y-websocket', 'y-protocols', 'y-prosemirror', 'ws', 'socket.io-client']
      .map(async (n) => [n, await pkgVersion(n)])))
})
