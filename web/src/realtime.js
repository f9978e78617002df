// One Socket.IO connection per tab, authenticated with the current access token on every
// (re)connect; list views and the notification center subscribe to its events.
import { io } from 'socket.io-client'
import * as auth from './auth.js'
import { httpBase } from './config.js'

let socket = null

export function connect () {
  if (socket) return socket
  socket = io(httpBase, {
    // a function: read again on each reconnect, so a refreshed token is always used
    auth: (cb) => cb({ token: auth.accessToken() }),
    transports: ['websocket']
  })
  socket.on('connect_error', async (error) => {
    if (socket.active) return // a network error: socket.io retries by itself
    // refused (expired token): refresh once, then try again
    try { await auth.refresh(); socket.connect() } catch { /* signed out */ }
    void error
  })
  socket.on('disconnect', (reason) => {
    // the server disconnects a socket when its token expires: come back with a fresh one
    if (reason === 'io server disconnect') auth.refresh().then(() => socket.connect(), () => {})
  })
  return socket
}

export function disconnect () {
  if (socket) socket.disconnect()
  socket = null
}

export const on = (event, fn) => { connect().on(event, fn); return () => socket && socket.off(event, fn) }
