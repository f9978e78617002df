// Keys act where the caret is on screen.
//
// ProseMirror learns that the browser moved the caret (a click, Ctrl+End, arrow keys)
// from the `selectionchange` event, which Chromium dispatches asynchronously; a key that
// ProseMirror handles itself (Enter, Backspace, shortcuts: the keymaps) acts on
// `view.state.selection`. When the keydown is handled before that event (the browser runs
// input events first on a busy page, or a person clicks and presses Enter at once), the
// key acts on the old caret. In a shared note the old caret is often the start of the
// document, where the editor put it when it opened: Enter then split the paragraph before
// a co-author's line instead of after it, and what followed was typed at the start of
// their paragraph ("Bob: …Ann: …" in one paragraph under an empty one).
//
// So, before any keymap runs, this plugin reads the DOM selection and, if it is not the
// state's, makes it the state's — what ProseMirror does on `selectionchange`, done first.
import { Plugin, TextSelection } from 'prosemirror-state'

/** The DOM selection as document positions, or null when it is not in this editor. */
function domSelection (view) {
  const sel = view.root.getSelection ? view.root.getSelection() : document.getSelection()
  if (!sel || !sel.anchorNode || !sel.focusNode) return null
  if (!view.dom.contains(sel.anchorNode) || !view.dom.contains(sel.focusNode)) return null
  try {
    return { anchor: view.posAtDOM(sel.anchorNode, sel.anchorOffset), head: view.posAtDOM(sel.focusNode, sel.focusOffset) }
  } catch {
    return null // a DOM position ProseMirror does not map (it reads it itself, later)
  }
}

export function caretFromScreenPlugin () {
  return new Plugin({
    props: {
      handleKeyDown (view, event) {
        // IME composition owns the DOM selection; a node or whole-document selection is
        // ProseMirror's own, not the browser's
        if (event.isComposing || event.keyCode === 229 || !view.hasFocus()) return false
        const current = view.state.selection
        if (!(current instanceof TextSelection)) return false
        const seen = domSelection(view)
        if (!seen || (seen.anchor === current.anchor && seen.head === current.head)) return false
        const { doc } = view.state
        const selection = TextSelection.between(doc.resolve(seen.anchor), doc.resolve(seen.head))
        if (!selection.eq(current)) view.dispatch(view.state.tr.setSelection(selection))
        return false // the key itself is handled by the keymaps, on the caret the user sees
      }
    }
  })
}
