// A manifest as text: the editor (a text area, a file picker, the API's error
// shown at the line its path names) and the calls that send it, as the CLI
// sends a file (application/yaml, YAML or JSON). The YAML library is loaded
// only when a manifest is shown or an error is placed, so the pages that list
// apps do not carry it.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { AppSpec, DeployAnswer } from '../../src/contract/api.js';
import { api, ApiError } from '../api.js';
import { ErrorBox } from './common.js';

const yamlLib = () => import('yaml');

/** A copy without empty lists and maps: the API fills every default in, and in the manifest schema an empty collection is always the default (or invalid). */
export function tidy(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(tidy);
  if (!v || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const t = tidy(x);
    if (t && typeof t === 'object' && Object.keys(t).length === 0) continue;
    out[k] = t;
  }
  return out;
}

/** A stored spec as YAML to edit: what runs now, without the empty defaults. */
export async function specYaml(spec: AppSpec): Promise<string> {
  const { stringify } = await yamlLib();
  return stringify(tidy(spec), { lineWidth: 0 });
}

/** `placement.demand[0].site` as keys: ['placement', 'demand', 0, 'site']. */
export function pathKeys(path: string): (string | number)[] {
  return [...path.matchAll(/\[(\d+)\]|([^.[\]]+)/g)].map((m) => (m[1] !== undefined ? Number(m[1]) : m[2]!));
}

/** The line (from 1) of the field a path names, or of its nearest parent in the text; null when none is found. */
export async function lineOf(text: string, path: string): Promise<number | null> {
  const { parseDocument, isNode } = await yamlLib();
  const doc = parseDocument(text);
  for (let keys = pathKeys(path); keys.length > 0; keys = keys.slice(0, -1)) {
    const node = doc.getIn(keys, true);
    if (isNode(node) && node.range) return text.slice(0, node.range[0]).split('\n').length;
  }
  return null;
}

/** Sends a manifest: a plan (nothing is stored or started) or a deploy. */
export function sendManifest(text: string, dryRun: boolean): Promise<DeployAnswer> {
  return api<DeployAnswer>(`/v1/apps${dryRun ? '?dryRun=true' : ''}`, { method: 'POST', body: text, yaml: true });
}

const COMPOSE = /^services\s*:/m;

/**
 * An E_UNSCHEDULABLE message names every node and why it was ruled out
 * (src/core/planner.ts: `... N node(s) fit (node: reasons | node: reasons)`),
 * which at 1,000 nodes is a page of text: its head, and the nodes grouped by
 * their reasons.
 */
export function unplaceable(e: ApiError): { head: ApiError; groups: { why: string; nodes: string[] }[] } | null {
  const m = e.code === 'E_UNSCHEDULABLE' ? /^(.*? node\(s\) fit) \((.*)\)$/s.exec(e.message) : null;
  if (!m) return null;
  const by = new Map<string, string[]>();
  for (const part of m[2]!.split(' | ')) {
    const i = part.indexOf(': ');
    const why = part.slice(i + 2);
    const nodes = by.get(why) ?? [];
    if (!nodes.length) by.set(why, nodes);
    nodes.push(part.slice(0, i));
  }
  const groups = [...by].map(([why, nodes]) => ({ why, nodes })).sort((a, b) => b.nodes.length - a.nodes.length);
  return { head: new ApiError(e.status, e.code, `${m[1]}:`, e.path), groups };
}

const MAX_NAMES = 12;
const MAX_GROUPS = 20;

function Unplaceable({ u }: { u: NonNullable<ReturnType<typeof unplaceable>> }) {
  return (
    <>
      <ErrorBox error={u.head} />
      <ul class="reasons" data-testid="unplaceable">
        {u.groups.slice(0, MAX_GROUPS).map((g) => (
          <li><b>{g.why}</b>: {g.nodes.length} node{g.nodes.length === 1 ? '' : 's'} ({g.nodes.slice(0, MAX_NAMES).join(', ')}{g.nodes.length > MAX_NAMES ? ', ...' : ''})</li>
        ))}
        {u.groups.length > MAX_GROUPS && <li>and {u.groups.length - MAX_GROUPS} more reasons, for {u.groups.slice(MAX_GROUPS).reduce((n, g) => n + g.nodes.length, 0)} nodes</li>}
      </ul>
    </>
  );
}

export interface ManifestInputProps {
  text: string;
  onText: (t: string) => void;
  /** the last answer's error: shown with the line its path names */
  error: ApiError | null;
  testid: string;
  rows?: number;
}

export function ManifestInput({ text, onText, error, testid, rows = 18 }: ManifestInputProps) {
  const area = useRef<HTMLTextAreaElement>(null);
  const [line, setLine] = useState<number | null>(null);
  const [fileErr, setFileErr] = useState<ApiError | null>(null);
  const unplaced = error && !fileErr ? unplaceable(error) : null;
  useEffect(() => {
    setLine(null);
    if (error?.path) void lineOf(text, error.path).then(setLine, () => setLine(null));
  }, [error]);
  const show = (): void => {
    const el = area.current;
    if (!el || line === null) return;
    const lines = el.value.split('\n');
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    el.focus();
    el.setSelectionRange(start, start + (lines[line - 1]?.length ?? 0));
    el.scrollTop = Math.max(0, (line - 4) * (el.scrollHeight / Math.max(1, lines.length)));
  };
  const pick = async (e: Event): Promise<void> => {
    const input = e.target as HTMLInputElement;
    const file = input.files?.[0];
    if (!file) return;
    setFileErr(null);
    try {
      onText(await file.text());
    } catch (x) {
      setFileErr(new ApiError(0, 'E_USAGE', `cannot read ${file.name}: ${(x as Error).message}`));
    }
    input.value = '';
  };
  return (
    <div class="manifest">
      <div class="row">
        <label class="muted">Open a file <input type="file" accept=".yaml,.yml,.json,application/json,application/yaml,text/yaml" onChange={pick} aria-label="manifest file" /></label>
        <span class="muted">{text.split('\n').length} lines</span>
      </div>
      <textarea ref={area} data-testid={testid} rows={rows} spellcheck={false} value={text} aria-label="manifest (YAML or JSON)"
        placeholder={'name: my-app\nimage: registry.example/my-app:1.0\nreplicas: 2\nports:\n  - { name: http, container: 8080 }'}
        onInput={(e) => onText((e.target as HTMLTextAreaElement).value)} />
      <div data-testid={`${testid}-error`}>
        {unplaced ? <Unplaceable u={unplaced} /> : <ErrorBox error={fileErr ?? error} />}
        {error && line !== null && <p>{error.path} is at line {line} <button type="button" onClick={show}>show</button></p>}
        {error && COMPOSE.test(text) && <p class="muted">This looks like a Compose file. The API takes Outpost manifests only: <code>outpost plan -f FILE</code> and <code>outpost deploy -f FILE</code> convert a Compose file on your machine.</p>}
      </div>
    </div>
  );
}
