// The cluster snapshot: everything the planner knows about a cluster, in the
// format `outpost plan --snapshot` reads (docs/reference/snapshot.md). The live control plane
// builds the same structure from its store, so one planner serves both.
import { z } from 'zod';
import { OutpostError } from './errors.js';
import { NAME_RE, validateWith } from './manifest.js';
import { DEFAULTS } from './model.js';
import { policySchema } from './nodepolicy.js';

const ms = z.number().finite().nonnegative();
const siteName = z.string().regex(NAME_RE, 'site names are [a-z0-9-]');
const D = DEFAULTS;

// Fields say what they mean with .describe(): docs/reference/snapshot.md is generated from them.
const node = z.object({
  name: z.string().regex(NAME_RE, 'node names are [a-z0-9-]').describe('the node\'s name, unique'),
  labels: z.record(z.string()).default({}).describe('node labels, matched by `placement.constraints`'),
  capacity: z.object({
    cpu: z.number().finite().positive().describe('cores'),
    memoryMiB: z.number().finite().positive().describe('memory, MiB'),
  }).strict().describe('what the node has'),
  allocated: z.object({
    cpu: ms.describe('cores reserved'),
    memoryMiB: ms.describe('MiB reserved'),
  }).strict().default({ cpu: 0, memoryMiB: 0 }).describe('what running replicas already reserve: a replica fits where `capacity - allocated` holds its `resources`'),
  bandwidthMbps: z.number().finite().positive().optional().describe(`to the registry: T_image = missing bytes * 8 / (bandwidthMbps * 1000) ms; ${D.bandwidthMbps} when absent`),
  layers: z.array(z.string()).default([]).describe('digests of the image layers the node holds'),
  timings: z.object({
    containerMs: ms.optional().describe(`T_container; ${D.containerMs} when absent`),
    engineMs: ms.optional().describe(`T_engine with no other start on the host; ${D.engineMs} when absent`),
  }).strict().default({}).describe('measured deploy terms, ms'),
  perItemUs: z.object({
    process: ms.describe('t_process'),
    storage: ms.describe('t_storage'),
    compute: ms.describe('t_compute'),
  }).strict().optional().describe(`per-item stage costs, microseconds; ${D.perItemUs.process}, ${D.perItemUs.storage} and ${D.perItemUs.compute} when absent`),
  // extensions the live cluster fills in; a hand-written snapshot may omit them
  state: z.enum(['ready', 'unreachable', 'pending', 'revoked']).default('ready').describe('only ready nodes take replicas (pending: waiting for approval; revoked: refused)'),
  runtime: z.enum(['docker', 'process']).default('docker').describe('docker nodes need an app with an `image`, process nodes one with a `command`'),
  apps: z.array(z.string()).default([]).describe('apps with a replica on the node: a second replica of one of them does not go there'),
  replicas: z.number().int().nonnegative().default(0).describe('replicas on the node (spreading prefers fewer)'),
  host: z.string().min(1).optional().describe('the machine the node runs on: nodes on one host share its cores when starts overlap (default: the node\'s own)'),
  startCores: z.number().finite().positive().optional().describe('cores one start keeps busy (src/core/contention.ts); 1 when absent'),
  site: siteName.optional().describe('the node\'s site, as `overrides` match it (default: its `site` label, else none)'),
  arch: z.string().min(1).max(32).optional().describe('its CPU architecture, as `overrides` match it (default: its `arch` label, else amd64)'),
  policy: policySchema.strict().optional().describe('what its agent allows: device globs, host-path prefixes, privileged containers; absent: nothing (a replica that needs a device, a host path or privileges does not go there)'),
  devices: z.array(z.string().max(256)).max(10_000).optional().describe('the device paths the node has that its policy allows: a replica that needs a device goes only where it is listed'),
  starting: z.array(z.object({
    start: z.number().finite().describe('ms from now (negative: already begun)'),
    end: z.number().finite().describe('ms from now'),
  }).strict()).default([]).describe('starts in flight on the node: when each engine start begins and ends'),
}).strict();

export const snapshotSchema = z.object({
  sites: z.array(siteName).default([]).describe('the sites, unique; `rttMs` and the manifest\'s `placement.demand` name them'),
  nodes: z.array(node).describe('the nodes'),
  rttMs: z.record(z.record(ms)).default({}).describe('site -> node -> round-trip time, ms; a plan needs one from every site with demand to every node that fits (`E_INVALID` otherwise)'),
  images: z.record(z.object({
    layers: z.array(z.object({
      digest: z.string().min(1).describe('layer digest, as in a node\'s `layers`'),
      bytes: z.number().int().nonnegative().describe('compressed size'),
    }).strict()).describe('the image\'s layers'),
  }).strict()).default({}).describe(`image reference -> its layers; an image not listed counts as ${D.imageBytes / 1048576} MiB missing on every node`),
}).strict();

export type ClusterSnapshot = z.infer<typeof snapshotSchema>;
export type SnapshotNode = ClusterSnapshot['nodes'][number];

/** Validates a snapshot: schema, then the cross-references a schema cannot see. */
export function validateSnapshot(input: unknown): ClusterSnapshot {
  const s = validateWith(snapshotSchema, input, 'invalid snapshot');
  const bad = (path: string, message: string): never => {
    throw new OutpostError('E_INVALID', `invalid snapshot: ${path}: ${message}`, { path });
  };
  const sites = new Set<string>();
  s.sites.forEach((x, i) => {
    if (sites.has(x)) bad(`sites[${i}]`, `duplicate site "${x}"`);
    sites.add(x);
  });
  const nodes = new Set<string>();
  s.nodes.forEach((n, i) => {
    if (nodes.has(n.name)) bad(`nodes[${i}].name`, `duplicate node "${n.name}"`);
    nodes.add(n.name);
  });
  for (const [site, row] of Object.entries(s.rttMs)) {
    if (!sites.has(site)) bad(`rttMs.${site}`, `unknown site "${site}" (not in sites)`);
    for (const n of Object.keys(row)) if (!nodes.has(n)) bad(`rttMs.${site}.${n}`, `unknown node "${n}"`);
  }
  return s;
}
