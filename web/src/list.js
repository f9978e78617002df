// The notes list: search, filters, pagination, create, delete; live through Socket.IO's
// list events (note:created / note:updated / note:deleted).
import { api, notesPath } from './api.js'
import * as auth from './auth.js'
import { h, clear, formatTime } from './dom.js'
import * as realtime from './realtime.js'

const FILTERS = [['q', 'Search'], ['leadId', 'Lead'], ['tag', 'Tag'], ['category', 'Category'], ['priority', 'Priority']]
const LIMIT = 10

export function listScreen (root) {
  const query = { page: 1 }
  const fields = Object.fromEntries(FILTERS.map(([key, label]) => [key, h('input', {
    id: `filter-${key}`, name: key, type: key === 'q' ? 'search' : 'text', placeholder: label,
    oninput: () => { query.page = 1; later() }
  })]))
  const rows = h('ul', { class: 'note-list', 'aria-label': 'Notes' })
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' })
  const error = h('p', { class: 'error', role: 'alert' })
  const newTitle = h('input', { id: 'new-title', placeholder: 'Title of a new note', required: true, maxLength: 500 })

  const load = async () => {
    const params = { ...query, limit: LIMIT }
    for (const [key] of FILTERS) params[key] = fields[key].value.trim()
    try {
      const { notes, pagination } = await api(notesPath, { query: params })
      error.textContent = ''
      const me = auth.user()
      clear(rows, notes.length ? notes.map(n => h('li', { dataset: { note: n.id } },
        h('a', { href: `#/notes/${encodeURIComponent(n.id)}`, class: 'note-title' }, n.title || 'Untitled'),
        h('p', { class: 'excerpt' }, (n.content || '').slice(0, 140)),
        h('small', {}, [n.metadata.category, n.metadata.priority, ...n.metadata.tags].filter(Boolean).join(' · '),
          ` — ${n.createdBy === me.id ? 'mine' : `by ${n.createdBy}`}, ${formatTime(n.lastModified)}`),
        (n.createdBy === me.id || n.permissions.canDelete.includes(me.id))
          ? h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${n.title}`, onclick: () => remove(n) }, 'Delete')
          : null)) : [h('li', { class: 'empty' }, 'No notes.')])
      clear(pager,
        h('button', { type: 'button', disabled: pagination.page <= 1, onclick: () => { query.page--; load() } }, 'Previous'),
        h('span', {}, `Page ${pagination.page} of ${Math.max(1, pagination.pages)} (${pagination.total} notes)`),
        h('button', { type: 'button', disabled: pagination.page >= pagination.pages, onclick: () => { query.page++; load() } }, 'Next'))
    } catch (e) { error.textContent = e.message }
  }
  let timer = null
  const later = () => { clearTimeout(timer); timer = setTimeout(load, 200) }
  const remove = async (note) => {
    if (!window.confirm(`Delete “${note.title}”?`)) return
    try { await api(`${notesPath}/${encodeURIComponent(note.id)}`, { method: 'DELETE' }); later() } catch (e) { error.textContent = e.message }
  }
  const create = async (event) => {
    event.preventDefault()
    try {
      const note = await api(notesPath, { method: 'POST', body: { title: newTitle.value } })
      location.hash = `#/notes/${encodeURIComponent(note.id)}`
    } catch (e) { error.textContent = e.message }
  }

  clear(root, h('div', { class: 'list-screen' },
    h('form', { class: 'inline create', onsubmit: create },
      h('label', { for: 'new-title' }, 'New note'), newTitle, h('button', { type: 'submit', class: 'primary' }, 'Create')),
    h('form', { class: 'filters', role: 'search', onsubmit: (e) => { e.preventDefault(); load() } },
      FILTERS.map(([key, label]) => h('label', { for: `filter-${key}` }, label, fields[key]))),
    error, rows, pager))
  const offs = ['note:created', 'note:updated', 'note:deleted'].map(event => realtime.on(event, later))
  offs.push(realtime.on('connect', later))
  load()
  return () => { clearTimeout(timer); offs.forEach(off => off()) }
}
