// Who is here: avatars from awareness (live, this note's editors and viewers) and the
// presence list from GET /:id/presence (every instance, every client kind).
import { api, notesPath } from './api.js'
import { h, clear, avatar } from './dom.js'

export function awarenessUsers (awareness) {
  const byUser = new Map()
  for (const [clientId, state] of awareness.getStates()) {
    if (!state.user) continue
    const seen = byUser.get(state.user.id)
    if (!seen || clientId === awareness.clientID) byUser.set(state.user.id, { ...state.user, status: state.status || 'viewing' })
  }
  return [...byUser.values()]
}

export function avatarBar (awareness) {
  const el = h('div', { class: 'avatars', 'aria-label': 'People in this note', role: 'group' })
  const render = () => clear(el, awarenessUsers(awareness).map(u => avatar(u, u.status)))
  awareness.on('change', render)
  render()
  return { el, destroy: () => awareness.off('change', render) }
}

export function presenceList (noteId, awareness) {
  const list = h('ul', { class: 'presence-list' })
  const el = h('section', { class: 'panel', 'aria-label': 'Presence' }, h('h3', {}, 'Presence'), list)
  let timer = null
  const load = async () => {
    try {
      const { users } = await api(`${notesPath}/${encodeURIComponent(noteId)}/presence`)
      clear(list, users.map(u => h('li', { dataset: { user: u.userId } },
        avatar({ id: u.userId, name: u.name || u.userId }, u.status), ` ${u.name || u.userId} — ${u.status}`)))
    } catch { /* shown again on the next change */ }
  }
  const later = () => { clearTimeout(timer); timer = setTimeout(load, 500) }
  awareness.on('change', later)
  const interval = setInterval(load, 10000)
  load()
  return { el, destroy: () => { clearTimeout(timer); clearInterval(interval); awareness.off('change', later) } }
}
