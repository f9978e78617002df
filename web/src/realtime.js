// One Socket.IO connection per tab, authenticated with the current access token on every
// (re)connect; list views and the notification center subscribe to its events.
import { io } from 'socket.io-client'
import * as auth from './auth.js'
import { httpBase } from './config.js'

let socket = null
let usedToken = null

export function connect () {
  if (socket) return socket
  socket = io(httpBase, {
    // a function: read again on each reconnect, so a refreshed token is always used
    auth: (cb) => cb({ token: (usedToken = auth.accessToken()) }),
    transports: ['websocket']
  })
  let retried = false
  socket.on('connect', () => { retried = false })
  socket.on('connect_error', async () => {
    if (socket.active || retried) return // a network error: socket.io retries by itself
    // refused (the token expired): refresh once, then try again
    retried = true
    try { await auth.refresh(); socket.connect() } catch { /* signed out */ }
  })
  socket.on('disconnect', (reason) => {
    // the server disconnects a socket when its token expires: come back with a fresh one
    if (reason !== 'io server disconnect') return
    const refused = usedToken
    const renew = auth.accessToken() === refused ? auth.refresh() : Promise.resolve()
    renew.then(() => socket.connect(), () => {})
  })
  return socket
}

export function disconnect () {
  if (socket) socket.disconnect()
  socket = null
}

export const on = (event, fn) => { connect().on(event, fn); return () => socket && socket.off(event, fn) }
