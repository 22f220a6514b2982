// A lab topology file: sites, edge nodes (one of them far away: the cloud),
// RTT between each site and each node, uplink bandwidth to the registry, and
// which nodes already hold the example image.
import fs from 'node:fs';
import { z } from 'zod';
import { NAME_RE, parseManifestText, validateWith } from '../core/manifest.js';
import { OutpostError } from '../core/errors.js';

const name = z.string().regex(NAME_RE).max(20, 'lab names are at most 20 characters (interface names are short)');
const ms = z.number().finite().positive();

export const topologySchema = z.object({
  name: name,
  sites: z.array(z.object({
    name,
    demand: z.object({ rps: z.number().finite().positive(), items: z.number().int().nonnegative().default(1000) }).strict(),
  }).strict()).min(1).max(50),
  nodes: z.array(z.object({
    name,
    /** the node holds the example image before the run */
    cached: z.boolean().default(true),
    /** bandwidth of its link to the control plane and registry, Mbit/s */
    uplinkMbps: z.number().finite().positive().default(1000),
    cloud: z.boolean().default(false),
  }).strict()).min(1).max(100),
  /** site -> node -> round-trip ms */
  rttMs: z.record(z.record(ms)),
  replicas: z.number().int().positive().default(1),
  /** requests each site's load generator sends per strategy */
  requests: z.number().int().positive().default(200),
  /** the latency tolerance Outpost's plan uses (placement.latencyTolerancePct) */
  latencyTolerancePct: z.number().finite().min(0).max(100).default(0),
}).strict();

export type Topology = z.infer<typeof topologySchema>;

export function readTopology(file: string): Topology {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new OutpostError('E_USAGE', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
  }
  const t = validateWith(topologySchema, parseManifestText(text), 'invalid lab topology');
  const sites = new Set(t.sites.map((s) => s.name));
  const nodes = new Set(t.nodes.map((n) => n.name));
  for (const s of sites) {
    for (const n of nodes) {
      if (t.rttMs[s]?.[n] === undefined) throw new OutpostError('E_INVALID', `invalid lab topology: rttMs.${s}.${n} is missing`, { path: `rttMs.${s}.${n}` });
    }
  }
  for (const [s, row] of Object.entries(t.rttMs)) {
    if (!sites.has(s)) throw new OutpostError('E_INVALID', `invalid lab topology: rttMs.${s}: unknown site`, { path: `rttMs.${s}` });
    for (const n of Object.keys(row)) if (!nodes.has(n)) throw new OutpostError('E_INVALID', `invalid lab topology: rttMs.${s}.${n}: unknown node`, { path: `rttMs.${s}.${n}` });
  }
  return t;
}
