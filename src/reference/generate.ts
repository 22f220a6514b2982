// `npm run docs`: regenerates docs/reference from the code. Each page there is
// hand-written text with generated blocks (see markdown.ts); this rebuilds the
// blocks and writes every page to an output directory: docs/reference itself,
// or a temporary one when test/reference.test.ts checks that nothing drifted.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fillBlocks } from './markdown.js';
import { renderer } from './blocks.js';

/** The repository: dist/src/reference/ is three levels below it. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const REFERENCE_DIR = path.join(ROOT, 'docs/reference');

/** Writes every page of `from`, its blocks regenerated, to `to`; returns the pages' names. */
export function generate(from = REFERENCE_DIR, to = REFERENCE_DIR): string[] {
  const render = renderer(ROOT);
  const pages = fs.readdirSync(from).filter((f) => f.endsWith('.md')).sort();
  const out = pages.map((p) => {
    try {
      return fillBlocks(fs.readFileSync(path.join(from, p), 'utf8'), render);
    } catch (e) {
      throw new Error(`docs/reference/${p}: ${(e as Error).message}`, { cause: e });
    }
  });
  fs.mkdirSync(to, { recursive: true });
  pages.forEach((p, i) => fs.writeFileSync(path.join(to, p), out[i]!));
  return pages;
}

/** Pages outside docs/reference with generated blocks: observability.md's metric list (test/metrics.test.ts checks it). */
export const OTHER_PAGES = ['docs/observability.md'];

/** One page of OTHER_PAGES as its blocks make it now. */
export function filledPage(page: string): string {
  return fillBlocks(fs.readFileSync(path.join(ROOT, page), 'utf8'), renderer(ROOT));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const pages = generate();
  for (const p of OTHER_PAGES) fs.writeFileSync(path.join(ROOT, p), filledPage(p));
  console.log(`docs/reference: ${pages.join(', ')} regenerated; ${OTHER_PAGES.join(', ')} too`);
}
