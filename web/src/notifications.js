// The notification center: unread badge, list, mark read / all read. Every tab of the
// user shows the same state: new ones arrive through Socket.IO (`notification:new`), reads
// are told to the other tabs (BroadcastChannel) and, where the server sends it, through
// `notification:read`. Browser notifications when the user allowed them.
import { api } from './api.js'
import { h, clear, formatTime } from './dom.js'
import * as realtime from './realtime.js'

export function notificationCenter () {
  let items = []
  let unread = 0
  const channel = 'BroadcastChannel' in window ? new BroadcastChannel('syncd-notifications') : null
  const badge = h('span', { class: 'count', hidden: true, 'aria-hidden': 'true' })
  const button = h('button', { type: 'button', class: 'bell', 'aria-haspopup': 'true', 'aria-expanded': 'false', 'aria-label': 'Notifications' }, 'Notifications', badge)
  const list = h('ul', { class: 'notifications' })
  const allowButton = ('Notification' in window && Notification.permission === 'default')
    ? h('button', { type: 'button', onclick: () => Notification.requestPermission().then(() => allowButton.remove()) }, 'Allow browser notifications')
    : null
  const panel = h('div', { class: 'notification-panel', role: 'region', 'aria-label': 'Notification list', hidden: true },
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => markAll() }, 'Mark all read'), allowButton),
    list)
  const el = h('div', { class: 'notification-center' }, button, panel)

  const render = () => {
    badge.hidden = unread === 0
    badge.textContent = String(unread)
    button.setAttribute('aria-label', unread ? `Notifications, ${unread} unread` : 'Notifications')
    clear(list, items.length ? items.map(n => h('li', { class: n.read ? 'read' : 'unread', dataset: { id: n.id } },
      h('a', { href: n.noteId ? `#/notes/${encodeURIComponent(n.noteId)}` : '#/' }, h('strong', {}, n.title)),
      h('p', {}, n.message), h('small', {}, formatTime(n.createdAt)),
      n.read ? null : h('button', { type: 'button', onclick: () => markRead(n.id) }, 'Mark read'))) : [h('li', {}, 'Nothing yet.')])
  }
  const load = async () => {
    const data = await api('/api/notifications', { query: { limit: 50 } })
    items = data.notifications
    unread = data.unreadCount
    render()
  }
  const readLocally = (id) => {
    if (id === '*') items.forEach(n => { n.read = true })
    const n = items.find(i => i.id === id)
    if (n && !n.read) n.read = true
    unread = items.filter(i => !i.read).length
    render()
  }
  const markRead = async (id) => {
    await api(`/api/notifications/${encodeURIComponent(id)}/read`, { method: 'PUT' })
    readLocally(id)
    if (channel) channel.postMessage({ read: id })
  }
  const markAll = async () => {
    await api('/api/notifications/mark-all-read', { method: 'PUT' })
    readLocally('*')
    if (channel) channel.postMessage({ read: '*' })
  }

  button.addEventListener('click', () => {
    panel.hidden = !panel.hidden
    button.setAttribute('aria-expanded', String(!panel.hidden))
  })
  if (channel) channel.onmessage = ({ data }) => { if (data && data.read) load().catch(() => readLocally(data.read)) }
  const offNew = realtime.on('notification:new', (n) => {
    if (items.some(i => i.id === n.id)) return
    items.unshift(n)
    unread += n.read ? 0 : 1
    render()
    if ('Notification' in window && Notification.permission === 'granted' && document.visibilityState !== 'visible') {
      new Notification(n.title, { body: n.message, tag: n.id }) // eslint-disable-line no-new
    }
  })
  const offRead = realtime.on('notification:read', () => load().catch(() => {}))
  const offConnect = realtime.on('connect', () => load().catch(() => {})) // catch up after a reconnect
  load().catch(() => {})
  return { el, destroy () { offNew(); offRead(); offConnect(); if (channel) channel.close() } }
}
