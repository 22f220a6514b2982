// A Compose file as plain values, with the line of every key and item and the
// source text of every number: anchors, aliases and merge keys (`<<`) resolved
// as Compose resolves them, so a finding about a merged field still names a
// line, and `VERSION: 1.10` stays "1.10" in an env var instead of 1.1. Pure.
import YAML, { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, type Document, type Node } from 'yaml';
import { OutpostError } from '../core/errors.js';

export type Path = (string | number)[];

export interface Tree {
  value: unknown;
  /** the 1-based line of the key (or item) at this path, or of its nearest ancestor that has one */
  lineOf(path: Path): number | null;
  /** a scalar's text as written, for numbers and booleans whose text matters (env values) */
  sourceOf(path: Path): string | undefined;
}

const key = (p: Path) => JSON.stringify(p);

export function parseTree(text: string, file: string): Tree {
  const lc = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  const err = doc.errors[0];
  if (err) {
    const at = lc.linePos(err.pos[0]);
    const what = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new OutpostError('E_BAD_YAML', `${file} is not valid YAML (line ${at.line}, column ${at.col}): ${what}`);
  }
  const lines = new Map<string, number>();
  const sources = new Map<string, string>();
  const lineAt = (n: { range?: [number, number, number] | null } | null | undefined) => (n?.range ? lc.linePos(n.range[0]).line : null);

  const walk = (node: unknown, path: Path, depth: number): unknown => {
    // an alias of an alias of ... is bounded by the document; the depth bounds a cycle
    if (depth > 256) throw new OutpostError('E_INVALID', `${file}: nested too deeply at ${path.join('.')}`);
    if (isAlias(node)) node = node.resolve(doc as Document);
    if (node === null || node === undefined) return null;
    if (isScalar(node)) {
      if (typeof node.value !== 'string' && node.source !== undefined) sources.set(key(path), node.source);
      return node.value;
    }
    if (isSeq(node)) {
      return node.items.map((item, i) => {
        const l = lineAt(item as Node);
        if (l !== null) lines.set(key([...path, i]), l);
        return walk(item, [...path, i], depth + 1);
      });
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      const sourcesOf = (v: unknown): unknown[] => {
        const r = isAlias(v) ? v.resolve(doc as Document) : v;
        return isSeq(r) ? r.items.flatMap(sourcesOf) : [r];
      };
      const isMerge = (k: unknown) => isScalar(k) && k.value === '<<' && k.type === 'PLAIN';
      // merged keys first, the later sources first: earlier sources then explicit
      // keys overwrite them (values and lines), as Compose merges
      const merged = node.items.filter((p) => isPair(p) && isMerge(p.key)).flatMap((p) => sourcesOf(p.value));
      for (const m of merged.reverse()) {
        if (!isMap(m)) throw new OutpostError('E_INVALID', `${file} line ${lineAt(m as Node) ?? '?'}: a merge key (<<) must name a mapping`);
        Object.assign(out, walk(m, path, depth + 1));
      }
      for (const pair of node.items) {
        if (!isPair(pair) || isMerge(pair.key)) continue;
        const k = pair.key;
        const name = isScalar(k) ? String(k.value) : String(walk(k, path, depth + 1));
        const l = lineAt(k as Node);
        if (l !== null) lines.set(key([...path, name]), l);
        out[name] = walk(pair.value, [...path, name], depth + 1);
      }
      return out;
    }
    return (node as { toJSON?: () => unknown }).toJSON?.() ?? null;
  };
  const value = walk(doc.contents, [], 0);
  return {
    value,
    lineOf(path) {
      for (let n = path.length; n > 0; n--) {
        const l = lines.get(key(path.slice(0, n)));
        if (l !== undefined) return l;
      }
      return null;
    },
    sourceOf: (path) => sources.get(key(path)),
  };
}
