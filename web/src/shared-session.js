// The session as every tab sees it *now*. localStorage is not that: Chromium gives each tab
// process its own copy, synced later, so a tab could read a refresh token another tab has
// just spent, present it again, and revoke the whole session. IndexedDB transactions go
// through one store, so what a tab committed is what the next reader gets.
const DB = 'syncd'
const STORE = 'session'

function open () {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1)
    request.onupgradeneeded = () => request.result.createObjectStore(STORE)
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
}

async function run (mode, action) {
  const db = await open()
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode)
      const request = action(tx.objectStore(STORE))
      tx.oncomplete = () => resolve(request.result)
      tx.onerror = tx.onabort = () => reject(tx.error)
    })
  } finally { db.close() }
}

export const readShared = () => run('readonly', (store) => store.get('current')).then((v) => v || null)
export const writeShared = (session) => run('readwrite', (store) => session ? store.put(session, 'current') : store.delete('current'))
