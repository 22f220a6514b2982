// `node --import ./dist/test/import-trace.js ...`: writes the URL of every
// module the process loads to $OUTPOST_IMPORT_TRACE, one per line, so a test
// can check what a command pulls in. The same file is the hooks module: it
// registers itself, and in the hooks thread (its URL then carries ?hooks) it
// only records.
import fs from 'node:fs';
import { register } from 'node:module';

interface Resolved { url: string }
type Next = (specifier: string, context: unknown) => Promise<Resolved>;

export async function resolve(specifier: string, context: unknown, next: Next): Promise<Resolved> {
  const r = await next(specifier, context);
  const out = process.env.OUTPOST_IMPORT_TRACE;
  if (out) fs.appendFileSync(out, r.url + '\n');
  return r;
}

if (!import.meta.url.endsWith('?hooks')) register(`${import.meta.url}?hooks`);
