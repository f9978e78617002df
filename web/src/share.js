// The share dialog: who may view, edit and delete the note (user ids, comma separated).
import { api, notesPath } from './api.js'
import { h } from './dom.js'

const FIELDS = [['canView', 'Can view'], ['canEdit', 'Can edit'], ['canDelete', 'Can delete']]

const parse = (text) => [...new Set(text.split(/[\s,]+/).map(s => s.trim()).filter(Boolean))]

export function openShareDialog (note) {
  const inputs = Object.fromEntries(FIELDS.map(([key]) => [key, h('input', {
    id: `share-${key}`, name: key, value: note.permissions[key].join(', '), autocomplete: 'off'
  })]))
  const error = h('p', { class: 'error', role: 'alert' })
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'share-title' },
    h('form', {
      method: 'dialog',
      onsubmit: async (event) => {
        event.preventDefault()
        const permissions = Object.fromEntries(FIELDS.map(([key]) => [key, parse(inputs[key].value)]))
        try {
          const updated = await api(`${notesPath}/${encodeURIComponent(note.id)}`, { method: 'PUT', body: { permissions } })
          note.permissions = updated.permissions
          dialog.close()
        } catch (e) { error.textContent = e.message }
      }
    },
    h('h2', { id: 'share-title' }, `Share “${note.title}”`),
    h('p', { class: 'hint' }, 'User ids, separated by commas. Editors can also view.'),
    FIELDS.map(([key, label]) => h('p', {}, h('label', { for: `share-${key}` }, label), inputs[key])),
    error,
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary' }, 'Save'))))
  dialog.addEventListener('close', () => dialog.remove())
  document.body.append(dialog)
  dialog.showModal()
  inputs.canView.focus()
}
