// Builds the dashboard (ui/) into dist/ui, which the control plane serves at
// /ui/. esbuild bundles Preact, uPlot and xterm.js with our code; the pages a
// first visit does not need (the terminal, the charts) are split into chunks
// loaded when opened, so the fleet page comes up on one script and one style
// sheet. Run by `npm run build` (so by `npm install`, `npm start`, `npm test`).
import { build } from 'esbuild';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/ui`;
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const { metafile } = await build({
  metafile: true,
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
// the chunks app.js imports at once (Preact, shared parts) are fetched beside
// it rather than after it has been parsed: one round trip less to a first page
const entry = Object.entries(metafile.outputs).find(([, o]) => o.entryPoint === 'ui/main.tsx');
const eager = (entry?.[1].imports ?? []).filter((i) => i.kind === 'import-statement').map((i) => i.path.split('/').pop());
const preload = eager.map((f) => `<link rel="modulepreload" href="${f}">`).join('\n');
const html = await readFile(`${root}ui/index.html`, 'utf8');
await writeFile(`${out}/index.html`, html.replace('<!-- modulepreload -->', preload));
