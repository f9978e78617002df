// A tiny element builder: h('button', {class: 'x', onclick}, 'text', child)
export function h (tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value)
    else if (key === 'dataset') Object.assign(el.dataset, value)
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value)
    else if (key in el && typeof value !== 'string') el[key] = value
    else el.setAttribute(key, value === true ? '' : value)
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return el
}

export function clear (el, ...children) {
  el.replaceChildren(...children.flat().filter(c => c !== null && c !== undefined && c !== false))
  return el
}

// A stable colour per user id, dark enough for white text (contrast >= 4.5), as #rrggbb
// (y-prosemirror derives the selection highlight from a hex colour)
export function userColor (id) {
  let hash = 0
  for (const ch of String(id)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0
  const hue = hash % 360
  const s = 0.7
  const l = 0.35
  const f = (n) => {
    const k = (n + hue / 30) % 12
    const c = l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1))
    return Math.round(c * 255).toString(16).padStart(2, '0')
  }
  return `#${f(0)}${f(8)}${f(4)}`
}

export function initials (name) {
  return String(name || '?').split(/\s+/).filter(Boolean).slice(0, 2).map(w => w[0].toUpperCase()).join('')
}

export function avatar (user, status) {
  const name = user.name || user.id
  return h('span', {
    class: `avatar ${status || ''}`,
    style: { background: user.color || userColor(user.id) },
    title: status ? `${name} (${status})` : name,
    'aria-label': status ? `${name}, ${status}` : name,
    dataset: { user: user.id }
  }, initials(name))
}

export function formatTime (iso) {
  if (!iso) return ''
  return new Date(iso).toLocaleString()
}
