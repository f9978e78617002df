// The editor's status, told truthfully: connecting, connected, synced, offline with N
// unsynced edits, and "saved" only once the server holds our edits.
//
// "Saved" comes from a state-vector round trip: after local edits we send a sync step 1
// (our state vector) on the same socket as the edits. syncd answers a step 1 only once
// everything it has applied is durable, and it applies a socket's messages in order, so the
// step 2 answer proves the edits sent before it are stored.
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'

export function trackStatus (provider, doc, onChange) {
  let edits = 0 // local changes made so far
  let saved = 0 // of which the server is known to hold
  let connection = 'connecting'
  let probes = [] // edit counts of the step 1 probes awaiting their answer, in order
  let skipFirst = true // the first step 2 after connecting answers y-websocket's own step 1
  let timer = null
  let socket = null

  const state = () => {
    const unsynced = edits - saved
    if (connection !== 'connected') {
      return { key: 'offline', unsynced, text: connection === 'connecting' && !unsynced ? 'Connecting…' : `Offline — ${unsynced} unsynced edit${unsynced === 1 ? '' : 's'}` }
    }
    if (!provider.synced) return { key: 'connected', unsynced, text: 'Connected, syncing…' }
    if (unsynced > 0) return { key: 'saving', unsynced, text: 'Saving…' }
    return { key: 'saved', unsynced: 0, text: edits ? 'Saved' : 'Synced' }
  }
  const emit = () => onChange(state())

  const probe = () => {
    clearTimeout(timer)
    timer = null
    const ws = provider.ws
    if (!provider.wsconnected || !provider.synced || edits === saved || !ws || ws.readyState !== WebSocket.OPEN) return
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, 0) // y-websocket's messageSync
    syncProtocol.writeSyncStep1(encoder, doc)
    probes.push(edits)
    ws.send(encoding.toUint8Array(encoder))
  }
  const schedule = () => { if (!timer) timer = setTimeout(probe, 250) }

  const onMessage = (event) => {
    const decoder = decoding.createDecoder(new Uint8Array(event.data))
    if (decoding.readVarUint(decoder) !== 0) return
    if (decoding.readVarUint(decoder) !== syncProtocol.messageYjsSyncStep2) return
    if (skipFirst) { skipFirst = false; schedule(); return }
    const upTo = probes.shift()
    if (upTo !== undefined) saved = Math.max(saved, upTo)
    if (edits > saved) schedule()
    emit()
  }

  doc.on('update', (update, origin) => {
    if (origin === provider) return // came from the server
    edits++
    schedule()
    emit()
  })
  provider.on('status', ({ status }) => {
    connection = status
    if (status === 'connected' && provider.ws !== socket) {
      socket = provider.ws
      probes = []
      skipFirst = true
      socket.addEventListener('message', onMessage)
    }
    emit()
  })
  provider.on('sync', () => { schedule(); emit() })
  emit()
  return { state, destroy: () => clearTimeout(timer) }
}
