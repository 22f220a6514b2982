// What each generated block of docs/reference holds. A block names a kind and
// its arguments (`<!-- generated: schema manifest -->`); everything here is
// read from the code as it is now: schemas, the commander program, the error,
// environment and settings tables, interfaces, routes, example files and a real plan.
import fs from 'node:fs';
import path from 'node:path';
import type { ZodTypeAny } from 'zod';
import { appSchema, parseManifestText, validateApp } from '../core/manifest.js';
import { streamSpecSchema } from '../core/pipeline.js';
import { snapshotSchema, validateSnapshot } from '../core/snapshot.js';
import { hubConfigSchema } from '../core/hubconfig.js';
import { OP_RE } from '../core/window.js';
import { ERRORS } from '../core/errors.js';
import { ENVIRONMENT, REPLICA_ENVIRONMENT } from '../core/environment.js';
import { PROCESSES, defaultText, type ProcessName } from '../core/settings.js';
import { Cluster } from '../core/cluster.js';
import { plan } from '../core/planner.js';
import { buildProgram } from '../cli/program.js';
import { fieldRows, type FieldRow } from './zod.js';
import { commandDocs } from './commands.js';
import { Declarations, routesOf } from './declarations.js';
import { CONTROL_PLANE_ROUTES, HUB_ROUTES, OPERATORS, type RouteNote } from './notes.js';
import { code, fence, table } from './markdown.js';
import { AGENT_METRICS, SERVER_METRICS, type MetricTable } from '../core/metrics.js';

/** The schemas a page may show, with where their fields' paths start and what they stop at. */
const SCHEMAS: Record<string, { schema: ZodTypeAny; prefix?: string; stop?: string[]; key?: Record<string, string> }> = {
  manifest: { schema: appSchema, stop: ['streams'] },
  stream: { schema: streamSpecSchema, prefix: 'streams.NAME' },
  snapshot: { schema: snapshotSchema, key: { images: 'REF' } },
  hubconfig: { schema: hubConfigSchema, stop: ['streams'] },
};

/** The sources whose interfaces api.md shows. */
const DECLARATION_FILES = ['src/core/types.ts', 'src/core/planner.ts', 'src/core/accuracy.ts', 'src/core/routing.ts', 'src/core/demand.ts', 'src/server/streams.ts', 'src/contract/api.ts', 'src/core/events.ts'];

const ROUTE_FILES: Record<string, { files: string[]; notes: Record<string, RouteNote> }> = {
  'control-plane': { files: ['src/server/http.ts', 'src/server/metrics-route.ts', ...['nodes', 'apps', 'sites', 'secrets', 'streams', 'trust', 'backup', 'cluster', 'apitokens', 'audit', 'events'].map((r) => `src/server/routes/${r}.ts`), 'src/server/exec.ts', 'src/server/ui-route.ts'], notes: CONTROL_PLANE_ROUTES },
  hub: { files: ['src/hub/http.ts'], notes: HUB_ROUTES },
};

export function schemaRows(name: string): FieldRow[] {
  const s = SCHEMAS[name];
  if (!s) throw new Error(`no schema "${name}" (known: ${Object.keys(SCHEMAS).join(', ')})`);
  return fieldRows(s.schema, s);
}

function schemaTable(name: string): string {
  return table(['field', 'type', 'default', 'constraints', 'meaning'],
    schemaRows(name).map((r) => [code(r.path), r.type, r.default, r.rules, r.meaning]));
}

function commandsBlock(): string {
  const docs = commandDocs(buildProgram());
  const [top, ...rest] = docs;
  const out = [
    table(['command', 'does'], rest.map((c) => [`[${code(c.name)}](#${anchor(c.name)})`, c.description])),
    '',
    `Every command takes \`-h, --help\`. ${code(top!.usage)} also takes:`,
    '',
    table(['flag', 'notes', 'meaning'], top!.options.map((o) => [code(o.flags), o.notes, o.meaning])),
  ];
  for (const c of rest) {
    out.push('', `### ${c.name}`, '', c.description, '', fence('', c.usage));
    if (c.subcommands.length) out.push('', `Commands: ${c.subcommands.map((s) => `[${code(s)}](#${anchor(s)})`).join(', ')}.`);
    if (c.options.length) out.push('', table(['flag', 'notes', 'meaning'], c.options.map((o) => [code(o.flags), o.notes, o.meaning])));
  }
  return out.join('\n');
}

/** GitHub's heading anchor. */
const anchor = (heading: string) => heading.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-');

function routesBlock(which: string, root: string): string {
  const r = ROUTE_FILES[which];
  if (!r) throw new Error(`no route file "${which}"`);
  const routes = r.files.flatMap((f) => routesOf(path.join(root, f))).map((x) => `${x.method} ${x.path}`);
  const missing = routes.filter((k) => !r.notes[k]);
  const stale = Object.keys(r.notes).filter((k) => !routes.includes(k));
  if (missing.length || stale.length) {
    throw new Error(`src/reference/notes.ts and ${r.files.join(', ')} disagree: ${missing.length ? `no note for ${missing.join(', ')}` : ''}${stale.length ? ` notes for routes that do not exist: ${stale.join(', ')}` : ''}`);
  }
  const cli = routes.some((k) => r.notes[k]!.cli);
  return table(['route', 'takes', 'answers', ...(cli ? ['CLI'] : [])],
    routes.map((k) => [code(k), r.notes[k]!.takes, r.notes[k]!.answers, ...(cli ? [r.notes[k]!.cli ? code(r.notes[k]!.cli!) : ''] : [])]));
}

function interfaceBlock(name: string, decl: Declarations): string {
  const doc = decl.doc(name);
  return [...(doc ? [doc, ''] : []), table(['field', 'type', 'meaning'],
    decl.members(name).map((m) => [code(m.name + (m.optional ? '?' : '')), code(m.type), m.doc]))].join('\n');
}

/**
 * One process's settings. A setting's variable must be in environment.md as
 * read by that process, with the same default, so the two pages cannot disagree.
 */
function settingsBlock(name: string): string {
  const p = PROCESSES[name as ProcessName];
  if (!p) throw new Error(`no process "${name}" (known: ${Object.keys(PROCESSES).join(', ')})`);
  const rows = Object.entries(p.settings).map(([key, s]) => {
    const v = s.env && ENVIRONMENT.find((e) => e.name === s.env);
    if (s.env && !(v && v.readBy.split(/,\s*/).some((r) => r.split(' ')[0] === name))) {
      throw new Error(`${p.command} reads ${s.env} (setting ${key}), which src/core/environment.ts does not list as read by ${name}`);
    }
    // a plain default there (no prose) is the setting's
    if (v && !/[`:]/.test(v.default) && v.default !== defaultText(s)) {
      throw new Error(`src/core/environment.ts gives ${s.env} the default ${v.default}, ${p.command}'s setting ${key} ${defaultText(s)}`);
    }
    const dflt = s.required ? 'required' : defaultText(s);
    return [code(key), s.flag ? code(s.flag) : '', s.env ? code(s.env) : '', s.kind.want, s.default !== undefined && !s.defaultText ? code(dflt) : dflt, s.meaning];
  });
  return table(['setting', 'flag', 'variable', 'value', 'default', 'meaning'], rows);
}

/** The operators OP_RE accepts: its top-level alternatives, the percentile pattern as pNN. */
function operatorNames(): string[] {
  const body = /^\^\((.*)\)\$$/.exec(OP_RE.source)![1]!;
  const alts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of body) {
    if (ch === '|' && depth === 0) { alts.push(cur); cur = ''; continue; }
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    cur += ch;
  }
  alts.push(cur);
  return alts.map((a) => (/^[a-z]+$/.test(a) ? a : a.startsWith('p(') ? 'pNN' : a));
}

function operatorsBlock(): string {
  const names = operatorNames();
  const missing = names.filter((n) => !OPERATORS[n]);
  const stale = Object.keys(OPERATORS).filter((n) => !names.includes(n));
  if (missing.length || stale.length) throw new Error(`src/reference/notes.ts and OP_RE disagree on the operators: ${[...missing, ...stale].join(', ')}`);
  return table(['operator', 'adds to each window result'], names.map((n) => [code(n), OPERATORS[n]!]));
}

/** What `outpost plan --snapshot` prints for these files. */
function planBlock(root: string, app: string, snapshot: string): string {
  const spec = validateApp(parseManifestText(fs.readFileSync(path.join(root, app), 'utf8')));
  const snap = validateSnapshot(JSON.parse(fs.readFileSync(path.join(root, snapshot), 'utf8')));
  return fence('json', JSON.stringify(plan(new Cluster(snap), spec, { requireRtt: true }), null, 2));
}

/** The metrics of the control plane (`server`) or the agent (`agent`). */
function metricsBlock(which: string): string {
  const t: MetricTable | undefined = ({ server: SERVER_METRICS, agent: AGENT_METRICS } as Record<string, MetricTable>)[which];
  if (!t) throw new Error(`no metric table "${which}" (known: server, agent)`);
  return table(['metric', 'type', 'labels', 'meaning'], Object.entries(t).map(([name, d]) => [code(name), d.type, d.labels.map(code).join(', '), d.help]));
}

/** Renders one block, `spec` being "KIND ARGS...". */
export function renderer(root: string): (spec: string) => string {
  let decl: Declarations | null = null;
  const declarations = () => (decl ??= new Declarations(DECLARATION_FILES.map((f) => path.join(root, f))));
  return (spec) => {
    const [kind, ...args] = spec.split(/\s+/);
    switch (kind) {
      case 'schema': return schemaTable(args[0]!);
      case 'commands': return commandsBlock();
      case 'errors': return table(['code', 'HTTP status', 'seen in', 'meaning'], Object.entries(ERRORS).map(([c, e]) => [code(c), String(e.status), e.seen, e.meaning]));
      case 'environment': return table(['variable', 'default', 'read by', 'meaning'], ENVIRONMENT.map((e) => [code(e.name), e.default, e.readBy, e.meaning]));
      case 'replica-environment': return table(['variable', 'set when', 'meaning'], REPLICA_ENVIRONMENT.map((e) => [code(e.name), e.when, e.meaning]));
      case 'settings': return settingsBlock(args[0]!);
      case 'operators': return operatorsBlock();
      case 'routes': return routesBlock(args[0]!, root);
      case 'interface': return interfaceBlock(args[0]!, declarations());
      case 'file': return fence(args[1] ?? '', fs.readFileSync(path.join(root, args[0]!), 'utf8'));
      case 'plan': return planBlock(root, args[0]!, args[1]!);
      case 'metrics': return metricsBlock(args[0]!);
      default: throw new Error(`unknown generated block "${spec}"`);
    }
  };
}
