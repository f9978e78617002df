// @mentions: typing "@" and letters opens a completion list of the note's people; Enter or
// Tab inserts a `mention` node (which notifies that user), Escape closes the list.
import { Plugin, PluginKey } from 'prosemirror-state'
import { h, clear } from './dom.js'

const key = new PluginKey('mentions')
const TRIGGER = /(?:^|\s)@([\w.-]{0,30})$/

function match (state) {
  const { $from, empty } = state.selection
  if (!empty) return null
  const before = $from.parent.textBetween(0, $from.parentOffset, null, '\ufffc')
  const found = TRIGGER.exec(before)
  if (!found) return null
  return { query: found[1].toLowerCase(), from: $from.pos - found[1].length - 1, to: $from.pos }
}

/** `people()` returns [{id, name}] to complete from. */
export function mentionPlugin (people) {
  let menu = null
  let items = []
  let index = 0
  let range = null

  const close = () => { if (menu) menu.hidden = true; range = null }
  const pick = (view, person) => {
    const node = view.state.schema.nodes.mention.create({ id: person.id, label: person.name || person.id })
    view.dispatch(view.state.tr.replaceWith(range.from, range.to, [node, view.state.schema.text(' ')]))
    close()
    view.focus()
  }
  const render = (view) => {
    clear(menu, items.map((person, i) => h('li', {
      role: 'option',
      id: `mention-${i}`,
      'aria-selected': String(i === index),
      onmousedown: (event) => { event.preventDefault(); pick(view, person) }
    }, `${person.name || person.id} `, h('small', {}, `@${person.id}`))))
    menu.setAttribute('aria-activedescendant', `mention-${index}`)
  }

  return new Plugin({
    key,
    view (view) {
      menu = h('ul', { class: 'mention-menu', role: 'listbox', 'aria-label': 'Mention someone', hidden: true })
      document.body.append(menu)
      return {
        update (view) {
          const found = view.editable && match(view.state)
          if (!found) return close()
          items = people().filter(p => `${p.id} ${p.name || ''}`.toLowerCase().includes(found.query)).slice(0, 8)
          if (!items.length) return close()
          range = found
          index = Math.min(index, items.length - 1)
          const at = view.coordsAtPos(found.to)
          Object.assign(menu.style, { left: `${at.left + window.scrollX}px`, top: `${at.bottom + window.scrollY + 4}px` })
          menu.hidden = false
          render(view)
        },
        destroy () { menu.remove() }
      }
    },
    props: {
      handleKeyDown (view, event) {
        if (!range || menu.hidden) return false
        if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
          index = (index + (event.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length
          render(view)
          return true
        }
        if (event.key === 'Enter' || event.key === 'Tab') { pick(view, items[index]); return true }
        if (event.key === 'Escape') { close(); return true }
        return false
      }
    }
  })
}
