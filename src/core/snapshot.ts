// The cluster snapshot: everything the planner knows about a cluster, in the
// format `outpost plan --snapshot` reads (docs/reference/snapshot.md). The live control plane
// builds the same structure from its store, so one planner serves both.
import { z } from 'zod';
import { OutpostError } from './errors.js';
import { NAME_RE, validateWith } from './manifest.js';

const ms = z.number().finite().nonnegative();
const siteName = z.string().regex(NAME_RE, 'site names are [a-z0-9-]');

const node = z.object({
  name: z.string().regex(NAME_RE, 'node names are [a-z0-9-]'),
  labels: z.record(z.string()).default({}),
  capacity: z.object({ cpu: z.number().finite().positive(), memoryMiB: z.number().finite().positive() }).strict(),
  allocated: z.object({ cpu: ms, memoryMiB: ms }).strict().default({ cpu: 0, memoryMiB: 0 }),
  bandwidthMbps: z.number().finite().positive().optional(),
  layers: z.array(z.string()).default([]),
  timings: z.object({ containerMs: ms.optional(), engineMs: ms.optional() }).strict().default({}),
  perItemUs: z.object({ process: ms, storage: ms, compute: ms }).strict().optional(),
  // extensions the live cluster fills in; a hand-written snapshot may omit them
  state: z.enum(['ready', 'unreachable']).default('ready'),
  runtime: z.enum(['docker', 'process']).default('docker'),
  apps: z.array(z.string()).default([]),
  replicas: z.number().int().nonnegative().default(0),
  /** the machine the node runs on: nodes on one host share its cores when starts overlap (default: the node's own) */
  host: z.string().min(1).optional(),
  /** cores one start keeps busy (src/core/contention.ts); 1 when absent */
  startCores: z.number().finite().positive().optional(),
  /** starts in flight on the node: when each engine start begins and ends, ms from now */
  starting: z.array(z.object({ start: z.number().finite(), end: z.number().finite() }).strict()).default([]),
}).strict();

export const snapshotSchema = z.object({
  sites: z.array(siteName).default([]),
  nodes: z.array(node),
  rttMs: z.record(z.record(ms)).default({}),
  images: z.record(z.object({
    layers: z.array(z.object({ digest: z.string().min(1), bytes: z.number().int().nonnegative() }).strict()),
  }).strict()).default({}),
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
