// hpclient.mjs: stock @hocuspocus/provider clients (and a headless Tiptap editor with the
// Collaboration extension) driven by pytest through tests/support/hocuspocus_node.py.
// Same JSON-lines protocol as yclient.mjs:
//   stdin  -> {"id": N, "cmd": "...", ...args}
//   stdout <- {"id": N, "ok": true, "result": ...} | {"id": N, "ok": false, "error": "..."}
//   stdout <- {"event": "...", ...}   (unsolicited)
// A "socket" is one HocuspocusProviderWebsocket; a "client" is one HocuspocusProvider (one
// document) attached to a socket. Every client's token comes from a function, so a token
// the server asks for again is read anew (`set_token`).

import readline from 'node:readline'
import { Window } from 'happy-dom'
import * as Y from 'yjs'
import WebSocket from 'ws'

for (const m of ['log', 'info', 'debug', 'warn', 'trace']) {
  console[m] = (...args) => console.error(`[hpclient:${m}]`, ...args)
}
const send = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
process.on('uncaughtException', (err) => send({ event: 'uncaught', error: String(err?.stack ?? err) }))
process.on('unhandledRejection', (err) => send({ event: 'uncaught', error: String(err?.stack ?? err) }))

// Tiptap needs a DOM; happy-dom gives it one in Node.
const window = new Window()
for (const key of ['window', 'document', 'navigator', 'Node', 'HTMLElement', 'Element',
  'MutationObserver', 'getComputedStyle', 'DOMParser', 'Text', 'DocumentFragment',
  'requestAnimationFrame', 'cancelAnimationFrame']) {
  if (!(key in globalThis)) globalThis[key] = key === 'window' ? window : window[key]
}
const { HocuspocusProvider, HocuspocusProviderWebsocket } = await import('@hocuspocus/provider')
const { Editor } = await import('@tiptap/core')
const { default: StarterKit } = await import('@tiptap/starter-kit')
const { default: Collaboration } = await import('@tiptap/extension-collaboration')

class CommandError extends Error {}
const fail = (msg) => { throw new CommandError(msg) }
const sockets = new Map()
const clients = new Map()
const get = (map, name, what) => map.get(name) ?? fail(`no ${what} '${name}'`)

const state = (c) => ({
  synced: c.provider.synced,
  authenticated: c.provider.isAuthenticated,
  scope: c.provider.authorizedScope ?? null,
  unsynced: c.provider.unsyncedChanges,
  text: c.doc.getText('text').toString(),
  tiptap: c.editor ? c.editor.getText() : null,
  tokenCalls: c.tokenCalls,
  denied: c.denied,
  closes: c.closes,
  stateless: c.stateless,
  awareness: [...c.provider.awareness.getStates().entries()]
    .filter(([id]) => id !== c.doc.clientID).map(([, s]) => s)
})

// A condition is a JS expression over the state `s` (the tests own both ends).
const waitFor = (c, expr, timeoutMs) => new Promise((resolve, reject) => {
  const test = new Function('s', `return (${expr})`)
  const check = () => {
    const s = state(c)
    if (test(s)) { done(); resolve(s) }
  }
  const timer = setTimeout(() => { done(); reject(new CommandError(`timeout waiting for ${expr}: ${JSON.stringify(state(c))}`)) }, timeoutMs)
  const poll = setInterval(check, 20)
  const done = () => { clearTimeout(timer); clearInterval(poll) }
  check()
})

const COMMANDS = {
  socket: ({ socket, url }) => {
    const ws = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: WebSocket, delay: 100, minDelay: 100, maxDelay: 1000 })
    sockets.set(socket, ws)
  },
  open: ({ client, socket, doc, token, tiptap = false, user = null }) => {
    const c = { doc: new Y.Doc(), token, tokenCalls: 0, denied: [], closes: [], stateless: [], editor: null }
    c.provider = new HocuspocusProvider({
      websocketProvider: get(sockets, socket, 'socket'),
      name: doc,
      document: c.doc,
      token: async () => { c.tokenCalls += 1; return c.token },
      onAuthenticationFailed: ({ reason }) => c.denied.push(reason),
      onClose: ({ event }) => c.closes.push(event.reason),
      onStateless: ({ payload }) => c.stateless.push(payload)
    })
    c.provider.attach()
    if (user) c.provider.setAwarenessField('user', user)
    if (tiptap) {
      c.editor = new Editor({
        extensions: [StarterKit.configure({ undoRedo: false }), Collaboration.configure({ document: c.doc, field: 'prosemirror' })]
      })
    }
    clients.set(client, c)
  },
  set_token: ({ client, token }) => { get(clients, client, 'client').token = token },
  insert: ({ client, text }) => {
    const t = get(clients, client, 'client').doc.getText('text')
    t.insert(t.length, text)
  },
  type: ({ client, text }) => {
    const t = get(clients, client, 'client').doc.getText('text')
    for (const ch of text) t.insert(t.length, ch)
  },
  tiptap_type: ({ client, text }) => {
    const c = get(clients, client, 'client')
    c.editor.commands.insertContentAt(c.editor.state.doc.content.size - 1, text)
  },
  stateless: ({ client, payload }) => get(clients, client, 'client').provider.sendStateless(payload),
  state: ({ client }) => state(get(clients, client, 'client')),
  wait: ({ client, expr, within = 10 }) => waitFor(get(clients, client, 'client'), expr, within * 1000),
  destroy: ({ client }) => {
    const c = get(clients, client, 'client')
    c.editor?.destroy()
    c.provider.destroy()
    clients.delete(client)
  },
  exit: () => setTimeout(() => process.exit(0), 10)
}

const handle = async ({ id, cmd, ...args }) => {
  try {
    const fn = COMMANDS[cmd] ?? fail(`unknown command '${cmd}'`)
    const result = await fn(args)
    send({ id, ok: true, result: result ?? null })
  } catch (err) {
    send({ id, ok: false, error: err instanceof CommandError ? err.message : String(err?.stack ?? err) })
  }
}
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on('line', (line) => { if (line.trim()) handle(JSON.parse(line)) })
rl.on('close', () => process.exit(0))
send({ event: 'ready', pid: process.pid, node: process.version })
