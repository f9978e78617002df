// The session: an access/refresh pair shared by the user's tabs (IndexedDB for the truth,
// localStorage for a synchronous start and its `storage` event to tell the other tabs).
// The access token is refreshed before it expires and, once, when the server refuses it;
// tabs take a Web Lock around the refresh so that only one of them spends the refresh token
// (a second use of a spent refresh token would revoke the whole session).
import { httpBase } from './config.js'
import { readShared, writeShared } from './shared-session.js'

const KEY = 'syncd.session'
const listeners = new Set()
let session = load()
let timer = null
let inflight = null

function decode (jwt) {
  const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
  return JSON.parse(decodeURIComponent(escape(atob(part))))
}

function load () {
  try { return JSON.parse(localStorage.getItem(KEY)) } catch { return null }
}

function fromPair (pair) {
  const claims = decode(pair.accessToken)
  return {
    accessToken: pair.accessToken,
    refreshToken: pair.refreshToken,
    // from the server's expiresIn, on this machine's clock (which may differ from the server's)
    issuedAt: Date.now(),
    expiresAt: Date.now() + pair.expiresIn * 1000,
    user: { id: claims.sub, name: claims.name || claims.sub, email: claims.email || null, roles: claims.roles || [] }
  }
}

function set (next) {
  session = next
  if (next) localStorage.setItem(KEY, JSON.stringify(next))
  else localStorage.removeItem(KEY)
  schedule()
  for (const fn of listeners) fn(session)
}

// Refresh ahead of expiry: 30 s before it, or at 80% of a shorter life; never more often
// than once a second, whatever the clocks say.
function schedule () {
  clearTimeout(timer)
  if (!session) return
  const life = session.expiresAt - session.issuedAt
  const at = session.expiresAt - Math.min(30000, life * 0.2)
  timer = setTimeout(() => refresh().catch(() => {}), Math.max(1000, at - Date.now()))
}

window.addEventListener('storage', (event) => {
  if (event.key !== KEY) return
  session = load()
  schedule()
  for (const fn of listeners) fn(session)
})

export const current = () => session
export const user = () => session && session.user
export const accessToken = () => session && session.accessToken
export function onChange (fn) { listeners.add(fn); return () => listeners.delete(fn) }

async function exchange (refreshToken) {
  const response = await fetch(`${httpBase}/api/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refreshToken })
  })
  const body = await response.json().catch(() => ({}))
  if (!response.ok) {
    const error = new Error((body.error && body.error.message) || `refresh failed (${response.status})`)
    error.status = response.status
    throw error
  }
  return body
}

/** Sign in with the refresh token of a sign-in link (spent by this first use). */
export async function signIn (refreshToken) {
  const next = fromPair(await exchange(refreshToken))
  await writeShared(next).catch(() => {})
  set(next)
}

/** A fresh pair; concurrent callers (and tabs) share one refresh. */
export function refresh () {
  if (!inflight) inflight = refreshOnce().finally(() => { inflight = null })
  return inflight
}

async function refreshOnce () {
  const seen = session && session.refreshToken
  if (!seen) throw new Error('not signed in')
  // under the lock, the shared copy is the truth (see shared-session.js)
  const run = async () => {
    const stored = await readShared().catch(() => load()) // no IndexedDB: best effort
    if (stored && stored.refreshToken !== seen) { // another tab refreshed meanwhile
      set(stored)
      return
    }
    try {
      const next = fromPair(await exchange(seen))
      await writeShared(next).catch(() => {})
      set(next)
    } catch (error) {
      if (error.status === 401) { await writeShared(null).catch(() => {}); set(null) }
      throw error
    }
  }
  if (navigator.locks) await navigator.locks.request('syncd-refresh', run)
  else await run()
}

export async function signOut () {
  const token = session && session.refreshToken
  await writeShared(null).catch(() => {})
  set(null)
  if (token) {
    await fetch(`${httpBase}/api/auth/logout`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: token })
    }).catch(() => {})
  }
}

schedule()
