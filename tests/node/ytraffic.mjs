// ytraffic.mjs: random editing sessions with stock yjs, printed as the Yjs payloads they
// produce (v1 updates and state vectors), for tests of syncd's frame walker and fuzzer.
//
// usage: node ytraffic.mjs SEED [STEPS]  ->  one JSON object on stdout:
//   {"updates": [base64...], "stateVectors": [base64...]}
// Three docs edit text (with formats and embeds), maps (every kind of value), arrays,
// XML (as y-prosemirror writes it) and subdocs, delete (so GC structs appear), and sync
// now and then, so updates carry other clients' structs; merged and diffed updates
// (with skips) are included too. The same SEED always prints the same payloads.

import * as Y from 'yjs'

const seed = Number(process.argv[2] ?? 1)
const steps = Number(process.argv[3] ?? 300)

// mulberry32: a small seeded PRNG, so a seed names one session
let state = seed >>> 0
const rand = () => {
  state = (state + 0x6D2B79F5) >>> 0
  let t = state
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const int = (n) => Math.floor(rand() * n)
const pick = (xs) => xs[int(xs.length)]
const word = () => pick(['a', 'hello', ' ', 'wörld', '😀', '\n', 'x'.repeat(1 + int(40)), '中文', '\u0000'])

const anyValue = (depth = 0) => {
  const kinds = ['int', 'float', 'string', 'bool', 'null', 'bytes', 'big', 'neg']
  if (depth < 4) kinds.push('object', 'array')
  switch (pick(kinds)) {
    case 'int': return int(1000)
    case 'neg': return -int(1 << 30)
    case 'big': return 2 ** 40 + int(1000)
    case 'float': return rand() * 100
    case 'string': return word()
    case 'bool': return rand() < 0.5
    case 'null': return null
    case 'bytes': return new Uint8Array([int(256), int(256), int(256)])
    case 'object': return Object.fromEntries(Array.from({ length: int(4) }, () => [word(), anyValue(depth + 1)]))
    default: return Array.from({ length: int(4) }, () => anyValue(depth + 1))
  }
}

const docs = [0, 1, 2].map((i) => new Y.Doc({ guid: `doc-${seed}` }))
docs.forEach((doc, i) => { doc.clientID = 1000 * seed + i + 1 })
const updates = []
const stateVectors = []
for (const doc of docs) doc.on('update', (update) => updates.push(update))

const edit = (doc) => {
  const text = doc.getText('text')
  const map = doc.getMap('map')
  const array = doc.getArray('array')
  const fragment = doc.getXmlFragment('prosemirror')
  switch (int(10)) {
    case 0: text.insert(int(text.length + 1), word(), rand() < 0.3 ? { bold: true } : undefined); break
    case 1: if (text.length) { const at = int(text.length); text.delete(at, 1 + int(Math.min(5, text.length - at))) } break
    case 2: if (text.length) text.format(int(text.length), 1 + int(3), { italic: rand() < 0.5 ? true : null, link: { href: word() } }); break
    case 3: text.insertEmbed(int(text.length + 1), { image: word() }); break
    case 4: map.set(word(), anyValue()); break
    case 5: map.set(word(), rand() < 0.5 ? new Y.Map([['k', anyValue()]]) : new Y.Array()); break
    case 6: array.insert(int(array.length + 1), Array.from({ length: 1 + int(3) }, () => anyValue())); break
    case 7: if (array.length) array.delete(int(array.length)); break
    case 8: {
      const paragraph = new Y.XmlElement(pick(['paragraph', 'heading', 'bullet_list']))
      paragraph.setAttribute('level', String(1 + int(3)))
      const inner = new Y.XmlText()
      paragraph.insert(0, [inner])
      fragment.insert(int(fragment.length + 1), [paragraph])
      inner.insert(0, word(), rand() < 0.5 ? { strong: {} } : {})
      break
    }
    default:
      if (rand() < 0.3) map.set('sub-' + int(3), new Y.Doc())
      else if (fragment.length) fragment.delete(int(fragment.length))
  }
}

const sync = (a, b) => {
  const sv = Y.encodeStateVector(b)
  stateVectors.push(sv)
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a, sv))
}

for (let step = 0; step < steps; step++) {
  const doc = pick(docs)
  if (rand() < 0.7) doc.transact(() => { for (let n = 1 + int(3); n > 0; n--) edit(doc) })
  else sync(doc, pick(docs))
}
for (const doc of docs) {
  stateVectors.push(Y.encodeStateVector(doc))
  updates.push(Y.encodeStateAsUpdate(doc))
}
updates.push(Y.mergeUpdates(updates.filter(() => rand() < 0.3)))
updates.push(Y.diffUpdate(Y.encodeStateAsUpdate(docs[0]), Y.encodeStateVector(docs[1])))

const b64 = (bytes) => Buffer.from(bytes).toString('base64')
process.stdout.write(JSON.stringify({ updates: updates.map(b64), stateVectors: stateVectors.map(b64) }) + '\n')
