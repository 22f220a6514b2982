// docs/reference cannot drift from the code: regenerating it must change
// nothing, every command and manifest field must be on its page, and the code
// must read no environment variable the reference does not list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, REFERENCE_DIR, generate } from '../src/reference/generate.js';
import { schemaRows } from '../src/reference/blocks.js';
import { commandDocs } from '../src/reference/commands.js';
import { buildProgram } from '../src/cli/program.js';
import { ENVIRONMENT, REPLICA_ENVIRONMENT } from '../src/core/environment.js';
import { PROCESSES } from '../src/core/settings.js';

const page = (name: string) => fs.readFileSync(path.join(REFERENCE_DIR, name), 'utf8');

test('docs/reference is what `npm run docs` makes of the code now', (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-reference-'));
  t.after(() => fs.rmSync(out, { recursive: true, force: true }));
  const pages = generate(REFERENCE_DIR, out);
  assert.ok(pages.length >= 8, `pages: ${pages.join(', ')}`);
  for (const p of pages) {
    const now = fs.readFileSync(path.join(out, p), 'utf8');
    assert.ok(now === page(p), `docs/reference/${p} differs from what the code says: run \`npm run docs\` and commit the result`);
  }
});

test('cli.md documents every command and flag of the program', () => {
  const cli = page('cli.md');
  for (const c of commandDocs(buildProgram()).slice(1)) {
    assert.ok(cli.includes(`### ${c.name}\n`), `cli.md has no section for ${c.name}`);
    for (const o of c.options) assert.ok(cli.includes(`\`${o.flags}\``), `cli.md does not show ${c.name} ${o.flags}`);
  }
});

test('manifest.md documents every field of the manifest and of its streams', () => {
  const manifest = page('manifest.md');
  const rows = [...schemaRows('manifest'), ...schemaRows('stream')];
  assert.ok(rows.length > 40, `${rows.length} fields`);
  for (const r of rows) assert.ok(manifest.includes(`| \`${r.path}\` |`), `manifest.md has no row for ${r.path}`);
  for (const r of schemaRows('snapshot')) assert.ok(page('snapshot.md').includes(`| \`${r.path}\` |`), `snapshot.md has no row for ${r.path}`);
});

test('config.md has the settings of every process', () => {
  const config = page('config.md');
  for (const [name, p] of Object.entries(PROCESSES)) {
    assert.ok(config.includes(`<!-- generated: settings ${name} -->`), `config.md has no table for ${p.command}`);
    for (const key of Object.keys(p.settings)) assert.ok(config.includes(`| \`${key}\` |`), `config.md has no row for ${key}`);
  }
});

/** Files below `dir` (relative to the repository) whose names match. */
function files(dir: string, re: RegExp): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p, re));
    else if (re.test(e.name)) out.push(p);
  }
  return out;
}

test('the code reads no environment variable that environment.md leaves out', () => {
  const known = new Set<string>([...ENVIRONMENT, ...REPLICA_ENVIRONMENT].map((e) => e.name));
  const reads = (text: string) => [...text.matchAll(/process\.env\.([A-Za-z_][A-Za-z0-9_]*)|(?:readEnv|\.env)\('([A-Za-z_][A-Za-z0-9_]*)'\)/g)].map((m) => m[1] ?? m[2]!);
  const found: [string, string][] = [];
  for (const f of [...files('src', /\.ts$/), ...files('scripts', /\.m?js$/), ...files('examples', /\.m?js$/)]) {
    for (const name of reads(fs.readFileSync(path.join(ROOT, f), 'utf8'))) found.push([f, name]);
  }
  for (const f of files('scripts', /\.sh$/)) {
    for (const m of fs.readFileSync(path.join(ROOT, f), 'utf8').matchAll(/\$\{?([A-Z][A-Z0-9_]*)/g)) found.push([f, m[1]!]);
  }
  // the tests also write small programs for replicas (FLAG, PORT): only Outpost's own names count there
  for (const f of files('test', /\.ts$/)) {
    for (const name of reads(fs.readFileSync(path.join(ROOT, f), 'utf8'))) if (name.startsWith('OUTPOST_')) found.push([f, name]);
  }
  assert.ok(found.some(([, n]) => n === 'OUTPOST_REGISTRY') && found.some(([, n]) => n === 'OUTPOST_SERVER'), 'the search finds the known reads');
  const unknown = found.filter(([, n]) => !known.has(n)).map(([f, n]) => `${n} (${f})`);
  assert.deepEqual(unknown, [], 'add them to src/core/environment.ts');
});
