// The rich-text schema: prosemirror-schema-basic plus lists and the `mention` node that
// syncd's content layer knows (attrs id, label), so REST content reads the same doc.
import { Schema } from 'prosemirror-model'
import { schema as basic } from 'prosemirror-schema-basic'
import { addListNodes } from 'prosemirror-schema-list'

const mention = {
  group: 'inline',
  inline: true,
  atom: true,
  selectable: false,
  attrs: { id: {}, label: { default: null } },
  toDOM: (node) => ['span', { class: 'mention', 'data-mention': node.attrs.id }, `@${node.attrs.label || node.attrs.id}`],
  parseDOM: [{ tag: 'span[data-mention]', getAttrs: (dom) => ({ id: dom.dataset.mention, label: dom.textContent.replace(/^@/, '') }) }]
}

export const schema = new Schema({
  nodes: addListNodes(basic.spec.nodes, 'paragraph block*', 'block').append({ mention }),
  marks: basic.spec.marks
})
