// The formatting toolbar and keymaps of the editor (keyboard first: every button has a
// shortcut and a label).
import { toggleMark, setBlockType, baseKeymap } from 'prosemirror-commands'
import { wrapInList, splitListItem, liftListItem, sinkListItem } from 'prosemirror-schema-list'
import { keymap } from 'prosemirror-keymap'
import { undo, redo } from 'y-prosemirror'
import { h } from './dom.js'
import { schema } from './schema.js'

const { marks, nodes } = schema

function promptLink (state, dispatch) {
  if (state.selection.empty) return false
  if (dispatch) {
    const href = window.prompt('Link address')
    if (!href) return true
    dispatch(state.tr.addMark(state.selection.from, state.selection.to, marks.link.create({ href })))
  }
  return true
}

const BUTTONS = [
  ['Bold', 'B', toggleMark(marks.strong), 'Mod-b'],
  ['Italic', 'I', toggleMark(marks.em), 'Mod-i'],
  ['Code', '</>', toggleMark(marks.code), 'Mod-`'],
  ['Link', 'Link', promptLink, 'Mod-k'],
  ['Paragraph', '¶', setBlockType(nodes.paragraph), 'Shift-Ctrl-0'],
  ['Heading 1', 'H1', setBlockType(nodes.heading, { level: 1 }), 'Shift-Ctrl-1'],
  ['Heading 2', 'H2', setBlockType(nodes.heading, { level: 2 }), 'Shift-Ctrl-2'],
  ['Bullet list', '•', wrapInList(nodes.bullet_list), 'Shift-Ctrl-8'],
  ['Numbered list', '1.', wrapInList(nodes.ordered_list), 'Shift-Ctrl-9']
]

export function keymaps () {
  const keys = { 'Mod-z': undo, 'Mod-y': redo, 'Mod-Shift-z': redo }
  for (const [, , command, shortcut] of BUTTONS) keys[shortcut] = command
  keys.Enter = splitListItem(nodes.list_item)
  keys['Mod-['] = liftListItem(nodes.list_item)
  keys['Mod-]'] = sinkListItem(nodes.list_item)
  return [keymap(keys), keymap(baseKeymap)]
}

export function toolbar (getView) {
  return h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Formatting' },
    BUTTONS.map(([label, text, command, shortcut]) => h('button', {
      type: 'button',
      'aria-label': `${label} (${shortcut})`,
      title: `${label} (${shortcut})`,
      onmousedown: (event) => event.preventDefault(),
      onclick: () => { const view = getView(); command(view.state, view.dispatch, view); view.focus() }
    }, text)))
}
