// The note screen: a collaborative ProseMirror editor on the note's `prosemirror` fragment,
// with remote carets, avatars, an honest status, and the share / versions / presence panels.
import * as Y from 'yjs'
import { EditorState } from 'prosemirror-state'
import { EditorView } from 'prosemirror-view'
import { ySyncPlugin, yCursorPlugin, yUndoPlugin } from 'y-prosemirror'
import { api, notesPath } from './api.js'
import * as auth from './auth.js'
import { openProvider } from './connection.js'
import * as realtime from './realtime.js'
import { h, clear, userColor } from './dom.js'
import { mentionPlugin } from './mentions.js'
import { avatarBar, awarenessUsers, presenceList } from './presence.js'
import { schema } from './schema.js'
import { caretFromScreenPlugin } from './selection.js'
import { openShareDialog } from './share.js'
import { trackStatus } from './status.js'
import { keymaps, toolbar } from './toolbar.js'
import { versionsPanel } from './versions.js'

export const FIELD = 'prosemirror'
const IDLE_AFTER = 60000

function rights (note, me) {
  const admin = (me.roles || []).some(r => r === 'admin' || r === 'service')
  const p = note.permissions
  return {
    edit: admin || note.createdBy === me.id || p.canEdit.includes(me.id),
    share: admin || note.createdBy === me.id
  }
}

function cursorLabel (user) {
  return h('span', { class: 'caret', style: { borderColor: user.color }, dataset: { user: user.id } },
    h('span', { class: 'caret-label', style: { background: user.color } }, user.name))
}

export async function editorScreen (root, noteId) {
  const note = await api(`${notesPath}/${encodeURIComponent(noteId)}`)
  const me = auth.user()
  const can = rights(note, me)
  const doc = new Y.Doc()
  const closedBanner = h('p', { class: 'banner', role: 'alert', hidden: true })
  const showProblem = (text) => { closedBanner.hidden = false; closedBanner.textContent = text }
  const { provider, destroy: closeProvider } = openProvider(noteId, doc, {
    onClosed: (code, reason) => {
      showProblem(code === 4403 ? 'You no longer have access to this note.'
        : code === 4404 ? 'This note was deleted.'
          : code === 4401 ? 'Your session ended: sign in again.'
            : `Disconnected: ${reason || code}`)
    }
  })
  const awareness = provider.awareness
  const color = userColor(me.id)
  let status = 'viewing' // editing while typing, idle after a minute without
  awareness.setLocalStateField('user', { id: me.id, name: me.name, color })
  awareness.setLocalStateField('status', status)

  // people to @mention: those the note is shared with, its owner, and whoever is here
  const people = () => {
    const ids = new Set([note.createdBy, ...note.permissions.canView, ...note.permissions.canEdit])
    const found = new Map([...ids].map(id => [id, { id, name: id }]))
    for (const u of awarenessUsers(awareness)) found.set(u.id, { id: u.id, name: u.name })
    found.delete(me.id)
    return [...found.values()]
  }

  const statusEl = h('span', { class: 'status', role: 'status', 'aria-live': 'polite' })
  const tracker = trackStatus(provider, doc, (s) => {
    statusEl.textContent = s.text
    statusEl.dataset.state = s.key
    statusEl.dataset.unsynced = String(s.unsynced)
  })

  const mount = h('div', { class: 'editor', 'aria-label': 'Note content' })
  const view = new EditorView(mount, {
    state: EditorState.create({
      schema,
      plugins: [
        caretFromScreenPlugin(), // first: every key below acts on the caret the user sees
        ySyncPlugin(doc.getXmlFragment(FIELD)),
        yCursorPlugin(awareness, { cursorBuilder: cursorLabel }),
        yUndoPlugin(),
        mentionPlugin(people),
        ...keymaps()
      ]
    }),
    editable: () => can.edit,
    attributes: { role: 'textbox', 'aria-multiline': 'true', 'aria-label': 'Note content', 'aria-readonly': String(!can.edit) }
  })

  // viewing / editing / idle, from the user's activity
  let idleTimer = null
  const active = () => {
    if (!can.edit) return
    clearTimeout(idleTimer)
    if (status !== 'editing') awareness.setLocalStateField('status', (status = 'editing'))
    idleTimer = setTimeout(() => awareness.setLocalStateField('status', (status = 'idle')), IDLE_AFTER)
  }
  mount.addEventListener('keydown', active)

  const avatars = avatarBar(awareness)
  const presence = presenceList(noteId, awareness)
  const panels = h('aside', { class: 'side' }, presence.el)
  let versions = null

  const title = h('input', {
    class: 'title', value: note.title, 'aria-label': 'Title', readOnly: !can.edit,
    onchange: async () => {
      try {
        await api(`${notesPath}/${encodeURIComponent(noteId)}`, { method: 'PUT', body: { title: title.value } })
      } catch (e) { showProblem(`The title was not saved: ${e.message}`) }
    }
  })
  const header = h('header', { class: 'note-header' },
    h('a', { href: '#/', class: 'back' }, '← Notes'),
    title,
    can.edit ? null : h('span', { class: 'badge-readonly' }, 'Read only'),
    statusEl,
    avatars.el,
    can.share ? h('button', { type: 'button', onclick: () => openShareDialog(note) }, 'Share') : null,
    h('button', {
      type: 'button',
      'aria-expanded': 'false',
      onclick: (event) => {
        if (versions) { versions.destroy(); versions.el.remove(); versions = null } else {
          versions = versionsPanel(noteId, can.edit)
          panels.prepend(versions.el)
        }
        event.currentTarget.setAttribute('aria-expanded', String(!!versions))
      }
    }, 'Versions'))

  clear(root, h('div', { class: 'note-screen', dataset: { note: noteId } },
    header, closedBanner,
    h('div', { class: 'note-body' },
      h('div', { class: 'editor-column' }, can.edit ? toolbar(() => view) : null, mount),
      panels)))
  if (can.edit) view.focus()

  // list events keep the header current: a rename shows, a change of my rights re-opens
  // the note (editable or read-only), a deletion is told
  const offUpdated = realtime.on('note:updated', (changed) => {
    if (changed.id !== noteId) return
    if (document.activeElement !== title) title.value = changed.title
    if (rights(changed, me).edit !== can.edit) window.dispatchEvent(new HashChangeEvent('hashchange'))
  })
  const offDeleted = realtime.on('note:deleted', ({ id }) => {
    if (id === noteId) showProblem('This note was deleted, or you may no longer see it.')
  })

  return () => {
    offUpdated()
    offDeleted()
    clearTimeout(idleTimer)
    tracker.destroy()
    avatars.destroy()
    presence.destroy()
    if (versions) versions.destroy()
    view.destroy()
    closeProvider()
    doc.destroy()
  }
}
