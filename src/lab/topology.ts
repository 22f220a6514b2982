// A lab topology file: sites, edge nodes (one of them far away: the cloud),
// RTT between each site and each node, uplink bandwidth to the registry, and
// which nodes already hold the example image. Optionally (scenario c) the
// site each node sits at, its labels, and demand that moves between sites.
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
    /** the site the node sits at (its agent's --site): its proxy serves that site, and its traffic to other nodes pays the RTT from that site */
    site: name.optional(),
    /** more labels for its agent (placement.constraints) */
    labels: z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,63}$/), z.string().regex(/^[A-Za-z0-9_.-]{0,63}$/)).default({}),
  }).strict()).min(1).max(100),
  /** site -> node -> round-trip ms */
  rttMs: z.record(z.record(ms)),
  replicas: z.number().int().positive().default(1),
  /** requests each site's load generator sends per strategy */
  requests: z.number().int().positive().default(200),
  /** the latency tolerance Outpost's plan uses (placement.latencyTolerancePct) */
  latencyTolerancePct: z.number().finite().min(0).max(100).default(0),
  /** scenario c: demand that moves between sites, sent through the site proxies (src/lab/scenario-c.ts) */
  moving: z.object({
    /** seconds each phase lasts (`--phase-s` overrides it) */
    phaseS: z.number().finite().min(5).max(3600).default(90),
    /** items per request */
    items: z.number().int().positive().max(100_000).default(200),
    /** the exposed port every node's proxy serves the app on */
    port: z.number().int().min(1024).max(65535).default(8080),
    /** in order: requests per second each active site sends; the first phase's demand is what static placement is told */
    phases: z.array(z.object({ name, rps: z.record(z.number().finite().positive().max(500)) }).strict()).min(2).max(10),
    /** label-only placement: the constraint that pins its replicas (a node group) */
    labelOnly: z.record(z.string()),
  }).strict().optional(),
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
  for (const n of t.nodes) {
    if (n.site !== undefined && !sites.has(n.site)) throw new OutpostError('E_INVALID', `invalid lab topology: nodes.${n.name}.site: unknown site ${n.site}`, { path: `nodes.${n.name}.site` });
  }
  t.moving?.phases.forEach((p, i) => {
    for (const s of Object.keys(p.rps)) if (!sites.has(s)) throw new OutpostError('E_INVALID', `invalid lab topology: moving.phases.${i}.rps.${s}: unknown site`, { path: `moving.phases.${i}.rps.${s}` });
  });
  return t;
}

/**
 * The round trip between two nodes, ms: from the site each sits at to the
 * other (rttMs[site of x][y] and rttMs[site of y][x], their mean, so that
 * both ways agree), or null when neither has a site (scenarios a and b: no
 * delay between nodes, as before).
 */
export function nodeRttMs(t: Topology, x: string, y: string): number | null {
  const site = (n: string) => t.nodes.find((m) => m.name === n)?.site;
  const ways = [[site(x), y], [site(y), x]].filter((w): w is [string, string] => w[0] !== undefined).map(([s, n]) => t.rttMs[s]![n]!);
  return ways.length ? ways.reduce((a, b) => a + b, 0) / ways.length : null;
}
