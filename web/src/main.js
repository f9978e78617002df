// The app shell: sign-in, the top bar (user, notification center) and a hash router between
// the notes list and a note.
import * as auth from './auth.js'
import { h, clear, avatar } from './dom.js'
import { editorScreen } from './editor.js'
import { listScreen } from './list.js'
import { notificationCenter } from './notifications.js'
import * as realtime from './realtime.js'

const app = document.getElementById('app')
let leave = null
let center = null

function signInScreen (message) {
  clear(app, h('main', { class: 'signin' },
    h('h1', {}, 'syncd'),
    h('p', {}, message || 'Open the sign-in link that `syncd serve` printed, or make one with:'),
    h('pre', {}, 'syncd token USER --name "Your Name" --link')))
}

async function route () {
  if (leave) { const done = leave; leave = null; await done() }
  const main = h('main', { id: 'main' })
  clear(app, topBar(), main)
  const match = /^#\/notes\/(.+)$/.exec(location.hash)
  try {
    leave = match ? await editorScreen(main, decodeURIComponent(match[1])) : listScreen(main)
  } catch (e) {
    clear(main, h('p', { class: 'error', role: 'alert' }, e.status === 404 ? 'No such note.' : e.status === 403 ? 'You may not view this note.' : e.message),
      h('a', { href: '#/' }, 'Back to the notes'))
  }
}

function topBar () {
  const me = auth.user()
  if (!center) center = notificationCenter()
  return h('header', { class: 'top' },
    h('a', { href: '#/', class: 'brand' }, 'syncd notes'),
    center.el,
    h('span', { class: 'me' }, avatar(me), ` ${me.name}`),
    h('button', { type: 'button', onclick: () => auth.signOut() }, 'Sign out'))
}

async function start () {
  const link = /^#signin=([^&]+)/.exec(location.hash)
  if (link) {
    history.replaceState(null, '', `${location.pathname}#/`)
    try { await auth.signIn(decodeURIComponent(link[1])) } catch (e) { return signInScreen(`That sign-in link cannot be used: ${e.message}`) }
  }
  if (!auth.current()) return signInScreen()
  auth.onChange((session) => {
    if (!session) { realtime.disconnect(); location.reload() }
  })
  realtime.connect()
  window.addEventListener('hashchange', route)
  route()
}

start()
