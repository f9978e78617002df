// The recipe for a long-lived y-websocket connection with expiring tokens:
// - the token lives in `provider.params`, which y-websocket reads on every (re)connect,
//   so a refreshed token is simply written there;
// - a 4401 close (token expired or invalid) stops y-websocket's reconnect loop; we refresh
//   once and reconnect. Edits made meanwhile stay in the Y.Doc and are sent on reconnect.
import { WebsocketProvider } from 'y-websocket'
import * as auth from './auth.js'
import { wsBase } from './config.js'

export const CLOSE_UNAUTHORIZED = 4401

export function openProvider (noteId, doc, { onClosed } = {}) {
  const provider = new WebsocketProvider(`${wsBase}/ws/notes`, noteId, doc, {
    params: { token: auth.accessToken() },
    maxBackoffTime: 2500
  })
  const stopWatching = auth.onChange((session) => {
    if (session) provider.params = { token: session.accessToken }
  })
  // the token the current connection attempt was opened with
  let usedToken = provider.params.token
  // refresh once per 4401: a session whose fresh token is refused too has ended
  let refreshedUnsynced = false
  provider.on('sync', (synced) => { if (synced) refreshedUnsynced = false })
  provider.on('status', ({ status }) => { if (status === 'connecting') usedToken = provider.params.token })
  provider.on('closed', async ({ code, reason }) => {
    if (code === CLOSE_UNAUTHORIZED) {
      try {
        // a refresh before expiry may already have brought the next token; if not,
        // refresh now.
        const refused = usedToken
        if (auth.accessToken() === refused && !refreshedUnsynced) {
          refreshedUnsynced = true
          await auth.refresh()
        }
        if (auth.accessToken() !== refused) {
          provider.params = { token: auth.accessToken() }
          provider.connect()
          return
        }
      } catch { /* the session is over: fall through */ }
    }
    if (onClosed) onClosed(code, reason)
  })
  return {
    provider,
    destroy () { stopWatching(); provider.destroy() }
  }
}
