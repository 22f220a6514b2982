// Builds the dashboard (ui/) into dist/ui, which the control plane serves at
// /ui/. esbuild bundles Preact, uPlot and xterm.js with our code; the pages a
// first visit does not need (the terminal, the charts) are split into chunks
// loaded when opened, so the fleet page comes up on one script and one style
// sheet. Run by `npm run build` (so by `npm install`, `npm start`, `npm test`).
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/ui`;
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: { app: 'ui/main.tsx' },
  bundle: true,
  splitting: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: out,
  chunkNames: 'chunk-[hash]',
  legalComments: 'linked',
  logLevel: 'warning',
});
await copyFile(`${root}ui/index.html`, `${out}/index.html`);
