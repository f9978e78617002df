// Version history: list, label the current state, view a version, diff it against now,
// restore it (a CRDT update that every open editor receives live).
import { api, notesPath } from './api.js'
import { h, clear, formatTime } from './dom.js'

export function versionsPanel (noteId, canEdit) {
  const base = `${notesPath}/${encodeURIComponent(noteId)}/versions`
  const list = h('ol', { class: 'versions' })
  const detail = h('div', { class: 'version-detail', 'aria-live': 'polite' })
  const label = h('input', { id: 'version-label', placeholder: 'Label', maxLength: 200 })
  const error = h('p', { class: 'error', role: 'alert' })
  const attempt = (fn) => async () => { error.textContent = ''; try { await fn() } catch (e) { error.textContent = e.message } }

  const show = (title, text) => clear(detail, h('h4', {}, title), h('pre', {}, text))
  const load = async () => {
    const { versions } = await api(base)
    clear(list, versions.map(v => h('li', { dataset: { version: v.number } },
      h('div', {}, h('strong', {}, `v${v.number}`), ` ${v.label || (v.automatic ? 'automatic' : '')}`),
      h('small', {}, `${formatTime(v.createdAt)} · ${v.createdBy || ''}`),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: attempt(async () => show(`Version ${v.number}`, (await api(`${base}/${v.number}`)).content)) }, 'View'),
        h('button', { type: 'button', onclick: attempt(async () => show(`Changes from now to v${v.number}`, (await api(`${base}/${v.number}/diff`)).diff || 'No changes')) }, 'Diff'),
        canEdit ? h('button', { type: 'button', onclick: attempt(async () => { await api(`${base}/${v.number}/restore`, { method: 'POST', body: {} }); await load() }) }, 'Restore') : null))))
  }
  const form = canEdit
    ? h('form', {
      class: 'inline',
      onsubmit: (event) => {
        event.preventDefault()
        attempt(async () => {
          await api(base, { method: 'POST', body: label.value ? { label: label.value } : {} })
          label.value = ''
          await load()
        })()
      }
    }, h('label', { for: 'version-label', class: 'sr-only' }, 'Version label'), label, h('button', { type: 'submit' }, 'Save version'))
    : null
  const el = h('section', { class: 'panel', 'aria-label': 'Versions' }, h('h3', {}, 'Versions'), form, error, list, detail)
  attempt(load)()
  return { el, destroy () {} }
}
