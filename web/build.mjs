// Bundles src/ into ../syncd/webapp/static (shipped inside the Python package).
import * as esbuild from 'esbuild'
import { copyFile, mkdir, rm } from 'node:fs/promises'

const out = new URL('../syncd/webapp/static/', import.meta.url).pathname
await rm(out, { recursive: true, force: true })
await mkdir(`${out}assets`, { recursive: true })
await esbuild.build({
  entryPoints: { app: 'src/main.js', 'app-style': 'src/app.css' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  outdir: `${out}assets`,
  entryNames: '[name]',
  legalComments: 'linked',
  logLevel: 'warning'
})
await rm(`${out}assets/app-style.js`, { force: true })
await copyFile(`${out}assets/app-style.css`, `${out}assets/app.css`)
await rm(`${out}assets/app-style.css`)
await copyFile('index.html', `${out}index.html`)
