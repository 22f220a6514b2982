// The app manifest: its schema, and parsing from YAML or JSON text into a
// validated AppSpec. Every rejection names the path of the bad field.
import { z } from 'zod';
import YAML from 'yaml';
import { OutpostError } from './errors.js';

import { NAME_RE } from './names.js';
import { streamsSchema } from './pipeline.js';
import { containerSchema, ENV_RE, portsOf, healthSchema, imageSchema, runFields } from './containers.js';
import { configsSchema, checkContainers } from './groups.js';
import { overridesSchema } from './overrides.js';

export { NAME_RE };
const name = z.string().regex(NAME_RE, 'must be 1-63 characters of [a-z0-9-], starting and ending with a letter or digit');
const finitePositive = z.number().finite().positive();

// Every field says what it means with .describe(): docs/reference/manifest.md
// is generated from this schema (npm run docs), so keep them short and true.
const demand = z.object({
  site: name.describe('a site (`outpost site add`) where requests come from'),
  rps: z.number().finite().nonnegative().describe('requests per second from that site: the weight of its latency in the objective'),
  items: z.number().int().nonnegative().default(1).describe('items per request: T_request = RTT + items * (t_process + t_storage + t_compute)'),
}).strict();


/** The latency autopilot (src/core/autopilot.ts): follows measured demand within a replica range. */
const autopilot = z.object({
  minReplicas: z.number().int().min(1).max(1000).default(1).describe('never fewer replicas than this (and never fewer ready ones during a move)'),
  maxReplicas: z.number().int().min(1).max(1000).optional().describe('never more replicas than this; demand that needs more is reported (`autopilot.unmet`), not silently capped. Default: the larger of `replicas` and `minReplicas`'),
  targetUtilisation: z.number().finite().gt(0).max(1).default(0.7).describe('the utilisation each replica should run at: a replica\'s utilisation is measured from its requests\' latency against its unloaded latency (1 - unloaded / now, the M/M/1 estimate); above this, replicas are added, well below it, removed'),
  reactionS: z.number().finite().min(1).max(600).default(30).describe('how long a change in measured demand must hold before the autopilot acts on it (and the least time between two decisions): noise shorter than this moves nothing; at most 600 (the measurements kept)'),
  thresholdPct: z.number().finite().min(0).max(1000).default(10).describe('replicas move only when the plan for the measured demand beats the current placement\'s demand-weighted request latency by more than this %'),
  scaleInS: z.number().finite().min(1).max(86_400).default(300).describe('a replica is removed only when every recommendation of this long asked for fewer'),
  maxMovesPerHour: z.number().int().min(0).max(3600).default(12).describe('decisions that move replicas in any hour at most (a budget against flapping); 0 never moves, only scales'),
  dryRun: z.boolean().default(false).describe('decide and report (events, `outpost autopilot status`) without changing anything'),
}).strict();

/** The site-local entry point (src/agent/proxy): every node's agent listens on `port` and forwards to the nearest healthy replica. */
const expose = z.object({
  port: z.number().int().min(1).max(65535).describe('the port every node\'s site proxy listens on for this app (on the agent\'s `--bind` address); clients at a site talk to their own node on it'),
  protocol: z.enum(['http', 'tcp']).default('http').describe('`http`: requests are forwarded one by one (keep-alive, `x-forwarded-for`, a failed connect tried on the next replica, 503 `E_NO_ENDPOINT` when none answers); `tcp`: each connection is piped to one replica'),
  drainS: z.number().finite().min(0).max(600).default(5).describe('a replica the control plane retires (an update, a scale-in, a move) first leaves every proxy\'s table and is stopped once the proxies have finished its requests, or after this many seconds at the latest; 0 stops it at once'),
}).strict();

const secretRef = z.object({
  name: name.describe('the secret\'s name (`outpost secret set NAME`); a deploy that names a missing one is refused'),
  env: z.string().regex(ENV_RE, 'env names are [A-Za-z_][A-Za-z0-9_]*').optional().describe('the environment variable that holds the value'),
  file: z.string().startsWith('/', 'must be an absolute path').max(4096).optional().describe('the path where a container reads the value (a read-only file); a process replica gets its path on the node in `OUTPOST_SECRET_FILE_<NAME>` instead'),
}).strict();

export const appSchema = z.object({
  name: name.describe('the app\'s name, unique in the cluster'),
  image: imageSchema.optional().describe('the container image (container runtimes): `name[:tag]`, or pinned by digest as `name[:tag]@sha256:<64 hex>`, which the agent verifies (`E_DIGEST_MISMATCH`); pulled only when the node lacks it. An app needs `image`, `command` or `containers`'),
  ...runFields,
  // an app that gives both image and command runs on either runtime: the command is the process runtime's
  command: runFields.command.describe('the process runtime\'s program and its arguments; a container runs its image\'s command (to replace it, give the container in `containers`)'),
  workdir: runFields.workdir.describe('the working directory: for the process runtime, relative to the agent\'s (the package root under `outpost up`); an absolute path is the container\'s too'),
  containers: z.array(containerSchema).min(1).max(16).optional().describe('several containers per replica, placed together on one node, started in `dependsOn` order, reaching each other by name; instead of the top-level `image`, `command`, `ports` and the other container fields (the top-level `env` goes to every container)'),
  configs: configsSchema,
  replicas: z.number().int().min(0).max(1000).default(1).describe('how many replicas run, each on a different node'),
  resources: z.object({
    cpu: finitePositive.max(1024).default(0.1).describe('cores reserved for placement, and the replica\'s relative CPU share when the node is busy (1024 per core): not a cap'),
    cpuLimit: finitePositive.max(1024).optional().describe('a hard cap in cores (a CFS quota over a 10 ms period), only when asked for: a cap slows start-up even on an idle node. At least `cpu`'),
    memoryMiB: z.number().int().positive().max(4_194_304).default(64).describe('reserved for placement, and a hard limit: above it the replica is killed (OOMKilled) and restarted by its policy'),
    pids: z.number().int().min(16).max(1_048_576).optional().describe('the most processes and threads a replica may have at once (the pids cgroup, both runtimes); default 1024'),
  }).strict().default({}).describe('what each replica reserves and may use; the process runtime enforces it through a cgroup when the agent runs as root (docs/security.md)'),
  health: healthSchema.optional().describe('how the agent checks a replica; without it, start-up waits for a TCP connect to the first port (or for the process to run, with no port) and nothing is checked afterwards'),
  update: z.object({
    maxSurge: z.number().int().min(0).max(100).default(1).describe('new replicas that may exist beyond `replicas` during an update'),
    maxUnavailable: z.number().int().min(0).max(100).default(0).describe('replicas that may be not ready during an update'),
    progressDeadlineMs: z.number().int().min(1000).max(3_600_000).default(120_000).describe('new replicas that are not all ready by then: the update is rolled back'),
  }).strict().default({}).describe('how a changed spec replaces running replicas: one step at a time, each gated on the new replicas\' health; a new replica that fails rolls the app back'),
  onNodeLoss: z.enum(['reschedule', 'wait']).default('reschedule').describe('when a node stays unreachable longer than the node timeout: move its replicas, or wait for it'),
  restart: z.object({
    policy: z.enum(['always', 'on-failure', 'never']).default('always').describe('restart a replica that stopped: always, only after a non-zero exit or a failed health check, or never'),
    maxRetries: z.number().int().min(1).max(1000).optional().describe('after this many restarts in a row, the replica stays failed (`E_RESTART_LIMIT`); a replica that stayed up 60 s after it was ready starts counting afresh. Default: no limit'),
  }).strict().default({}).describe('what happens when a replica stops: the agent restarts it in place, with exponential back-off'),
  placement: z.object({
    constraints: z.record(z.string().min(1), z.string()).default({}).describe('node labels that must match (`outpost agent --labels`)'),
    demand: z.array(demand).default([]).describe('where requests and data come from; with demand, replicas go where the demand-weighted mean request latency is least, without it they are spread'),
    maxLatencyMs: finitePositive.optional().describe('the latency goal for every demand site; a plan lists the sites that miss it (`unmet`)'),
    nodes: z.array(name).min(1).optional().describe('only these nodes may run replicas (pinning)'),
    latencyTolerancePct: z.number().finite().min(0).max(100).default(0).describe('plans whose latency is within this % of the best count as equal; then predicted deploy time decides'),
    autopilot: autopilot.optional().describe('follow measured demand (the site proxies\' counts, so the app needs `expose`): move replicas to where requests come from, add replicas when they are busy, remove them when idle, within `minReplicas`..`maxReplicas` (docs/routing.md, "The autopilot")'),
  }).strict().default({}).describe('where replicas may and should go'),
  metrics: z.object({
    stages: z.string().startsWith('/', 'must be a path starting with /').optional().describe('a path the app answers with its cumulative per-stage counters, `{"process": {"items": N, "us": T}, "storage": ..., "compute": ...}`: the model\'s per-item costs on each node'),
  }).strict().optional().describe('what the app reports for the latency model'),
  secrets: z.array(secretRef).max(64).default([]).describe('secrets the replicas get, each as an env var or a file (exactly one of `env` and `file`); the values are sent only to the nodes that run the app, and a new value (`outpost secret set`) rolls its replicas'),
  streams: streamsSchema.optional().describe('the streams the data hubs of this app\'s nodes window, by name (names: 1-128 of `[A-Za-z0-9_.-]`)'),
  overrides: overridesSchema,
  expose: expose.optional().describe('serve the app at a fixed port on every node, through the node\'s site proxy, which forwards to the nearest healthy replica (docs/routing.md); needs a declared port (the replicas\' endpoint)'),
}).strict().superRefine((app, ctx) => {
  if (!app.image && !app.command && !app.containers) {
    ctx.addIssue({ code: 'custom', path: ['image'], message: 'an app needs an image (container runtimes), a command (process runtime) or containers' });
  }
  checkContainers(app, ctx);
  if (app.restart.maxRetries !== undefined && app.restart.policy === 'never') {
    ctx.addIssue({ code: 'custom', path: ['restart', 'maxRetries'], message: 'policy never restarts: there is nothing to limit' });
  }
  if (app.resources.cpuLimit !== undefined && app.resources.cpuLimit < app.resources.cpu) {
    ctx.addIssue({ code: 'custom', path: ['resources', 'cpuLimit'], message: `must be at least resources.cpu (${app.resources.cpu}): the cap cannot be below the reservation` });
  }
  const portNames = new Set(portsOf(app).map((p) => p.name));
  const secretNames = new Set<string>();
  const targets = new Set<string>();
  app.secrets.forEach((r, i) => {
    if ((r.env === undefined) === (r.file === undefined)) ctx.addIssue({ code: 'custom', path: ['secrets', i], message: 'give exactly one of env and file' });
    if (secretNames.has(r.name)) ctx.addIssue({ code: 'custom', path: ['secrets', i, 'name'], message: `secret "${r.name}" is listed twice` });
    secretNames.add(r.name);
    const target = r.env ?? r.file;
    if (target !== undefined && targets.has(target)) ctx.addIssue({ code: 'custom', path: ['secrets', i, r.env ? 'env' : 'file'], message: `"${target}" is given to two secrets` });
    if (target !== undefined) targets.add(target);
    if (r.env !== undefined && r.env in app.env) ctx.addIssue({ code: 'custom', path: ['secrets', i, 'env'], message: `${r.env} is also set in env` });
  });
  if (app.health?.port !== undefined && !portNames.has(app.health.port)) {
    ctx.addIssue({ code: 'custom', path: ['health', 'port'], message: `no port named "${app.health.port}" in ports` });
  }
  const ap = app.placement.autopilot;
  if (ap) {
    // the autopilot follows what the site proxies measure: without them it would never see a request
    if (!app.expose) ctx.addIssue({ code: 'custom', path: ['placement', 'autopilot'], message: 'the autopilot follows the demand the site proxies measure: the app needs expose' });
    const max = ap.maxReplicas ?? Math.max(app.replicas, ap.minReplicas);
    if (max < ap.minReplicas) ctx.addIssue({ code: 'custom', path: ['placement', 'autopilot', 'maxReplicas'], message: `must be at least minReplicas (${ap.minReplicas})` });
    else if (app.replicas < ap.minReplicas || app.replicas > max) ctx.addIssue({ code: 'custom', path: ['replicas'], message: `the autopilot's range is ${ap.minReplicas}..${max}: the starting count must be in it` });
  }
  if (app.expose && portNames.size === 0) {
    ctx.addIssue({ code: 'custom', path: ['expose'], message: 'an exposed app needs a declared port: its replicas\' endpoint is what the proxy forwards to' });
  }
  if (app.health && (app.health.http !== undefined || app.health.tcp) && portNames.size === 0) {
    ctx.addIssue({ code: 'custom', path: ['health'], message: 'an http or tcp health check needs a declared port' });
  }
});

export type AppSpec = z.infer<typeof appSchema>;

/** Formats a zod path as users write it: placement.demand[0].site */
export function formatPath(path: (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

export function validateWith<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, input: unknown, what: string): T {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  let path = [...issue.path];
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    path = [...path, issue.keys[0]!];
    message = `unknown field "${issue.keys[0]}"`;
  } else if (issue.code === 'invalid_type' && issue.received === 'undefined') {
    message = 'is required';
  }
  const p = formatPath(path);
  const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more problem(s))` : '';
  throw new OutpostError('E_INVALID', `${what}: ${p || '(top level)'}: ${message}${more}`, {
    path: p,
    details: r.error.issues.map((i) => ({ path: formatPath(i.code === 'unrecognized_keys' ? [...i.path, i.keys[0]!] : i.path), message: i.message })),
  });
}

export function validateApp(input: unknown): AppSpec {
  return validateWith(appSchema, input, 'invalid app manifest');
}

/** Parses manifest text; JSON when it looks like JSON, YAML otherwise. */
export function parseManifestText(text: string): unknown {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new OutpostError('E_BAD_JSON', `manifest is not valid JSON: ${(e as Error).message}`);
    }
  }
  const doc = YAML.parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const line = err.linePos?.[0];
    const what = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new OutpostError('E_BAD_YAML', `manifest is not valid YAML${line ? ` (line ${line.line}, column ${line.col})` : ''}: ${what}`);
  }
  return doc.toJS();
}

/** Fields added after the first release, with their defaults as JSON. */
const ADDED_LATER: Record<string, string> = {
  secrets: '[]', volumes: '[]', devices: '[]', capAdd: '[]', privileged: 'false', networkMode: '"bridge"', readOnlyRootfs: 'false', configs: '{}', overrides: '[]',
};

/** A stable hash of what a replica runs: a changed spec means new replicas. */
export function specHash(spec: AppSpec): string {
  // how replicas are reached (expose) is not what they run: changing it rolls nothing
  const { replicas: _r, placement: _p, streams: _s, update: _u, onNodeLoss: _o, metrics: _m, expose: _e, ...runs } = spec;
  // fields at their defaults hash as before the fields existed: an upgrade rolls no app
  const kept = Object.fromEntries(Object.entries(runs).filter(([k, v]) => !(k in ADDED_LATER) || JSON.stringify(v) !== ADDED_LATER[k]));
  return fnv1a(stableStringify(kept));
}

export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v && typeof v === 'object') {
    const keys = Object.keys(v as object).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function fnv1a(s: string): string {
  // two 32-bit FNV-1a passes with different seeds: 64 bits, plenty for change detection
  let h1 = 0x811c9dc5, h2 = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x01000193 + 2);
  }
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}
