// bench:compose -- how much of each Compose file `outpost convert` maps. Over
// the fixtures of test/compose (or the docker-compose.yml files under --dir):
// per file, whether it converts at all, the fields refused, the fields
// accepted but not honoured ("dropped"), and those honoured in Outpost's own
// way ("changed"); then the share of files whose every field maps (no
// refusal, nothing dropped). Conversion only: nothing is built or deployed.
//   npm run bench:compose -- [--dir DIR]
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './local.js';
import { loadCompose } from '../src/compose/load.js';
import { OutpostError } from '../src/core/errors.js';
import { median } from './stats.js';

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function composeFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...composeFiles(p));
    else if (/^(docker-)?compose\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

/** The fields a file gives: each service's keys, and each top-level entry (volumes, configs, secrets, networks) by name. */
function fieldCount(doc: Record<string, unknown>): number {
  let n = 0;
  for (const [k, v] of Object.entries(doc)) {
    if (k.startsWith('x-')) continue;
    if (!v || typeof v !== 'object') {
      n++;
      continue;
    }
    for (const item of Object.values(v as object)) n += k === 'services' && item && typeof item === 'object' ? Object.keys(item).filter((x) => !x.startsWith('x-')).length : 1;
  }
  return n;
}

interface Row {
  file: string;
  services: number;
  fields: number;
  converts: boolean;
  refused: string[];
  dropped: string[];
  changed: number;
  ms: number;
}

async function main(): Promise<void> {
  const dir = path.resolve(argValue('--dir') ?? path.join(ROOT, 'test/compose'));
  const { parse } = await import('yaml');
  const rows: Row[] = [];
  const files = composeFiles(dir);
  // one pass first, so the first file's figure is not the JIT's warm-up
  for (const file of files) {
    try {
      loadCompose({ file, env: {} });
    } catch { /* counted below */ }
  }
  for (const file of files) {
    const rel = path.relative(dir, file);
    const doc = parse(fs.readFileSync(file, 'utf8'), { merge: true }) as Record<string, unknown>;
    const row: Row = { file: rel, services: Object.keys((doc.services ?? {}) as object).length, fields: fieldCount(doc), converts: true, refused: [], dropped: [], changed: 0, ms: 0 };
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      try {
        const c = loadCompose({ file, env: {} });
        row.dropped = c.notes.filter((n) => n.kind === 'dropped').map((n) => n.path);
        row.changed = c.notes.filter((n) => n.kind === 'changed').length;
      } catch (e) {
        if (!(e instanceof OutpostError)) throw e;
        row.converts = false;
        row.refused = ((e.details ?? [{ path: e.path ?? '?' }]) as { path: string }[]).map((d) => d.path);
      }
      times.push(performance.now() - t0);
    }
    row.ms = Math.round(median(times) * 100) / 100;
    rows.push(row);
  }
  const full = rows.filter((r) => r.converts && r.dropped.length === 0);
  const converts = rows.filter((r) => r.converts);
  const fields = rows.reduce((s, r) => s + r.fields, 0);
  const unmapped = rows.reduce((s, r) => s + new Set([...r.refused, ...r.dropped].map(fieldOf)).size, 0);
  console.log('| file | services | fields | converts | fields not mapped (refused / dropped) | honoured differently | convert, median |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    const not = [...r.refused.map((p) => `${p} (refused)`), ...r.dropped.map((p) => `${p} (dropped)`)];
    console.log(`| ${r.file} | ${r.services} | ${r.fields} | ${r.converts ? 'yes' : 'no'} | ${not.length ? not.join('<br>') : '-'} | ${r.changed} | ${r.ms} ms |`);
  }
  console.log('');
  console.log(`files whose every field maps: ${full.length} of ${rows.length} (${pct(full.length, rows.length)}); files that convert: ${converts.length} of ${rows.length} (${pct(converts.length, rows.length)})`);
  console.log(`fields that map: ${fields - unmapped} of ${fields} (${pct(fields - unmapped, fields)})`);
  fs.mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  const at = new Date().toISOString();
  fs.writeFileSync(path.join(ROOT, `bench/results/compose-${at.replace(/:/g, '-')}.json`), JSON.stringify({ at, dir, rows, full: full.length, converts: converts.length, files: rows.length, fields, unmapped }, null, 2));
}

/** A finding's path as the field it is about: services.a.ports[0] is services.a.ports. */
function fieldOf(p: string): string {
  const m = /^(services\.[^.[]+\.[^.[]+|[^.[]+\.[^.[]+|[^.[]+)/.exec(p);
  return m ? m[1]! : p;
}

const pct = (a: number, b: number) => `${b ? Math.round((1000 * a) / b) / 10 : 0}%`;

await main();
