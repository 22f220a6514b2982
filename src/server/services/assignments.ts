// Each node's assignment set: the replicas it should run, with the spec of
// each one's own revision. A change to a replica marks its node (and the node
// it left); once per turn of the event loop the marked nodes are announced,
// and the gateway sends a set only where its version differs from the one the
// node last got: an unchanged set costs nothing.
import { createHash } from 'node:crypto';
import { imageCatalog, missingImagesBytes } from '../../core/images.js';
import { imagesOf } from '../../core/containers.js';
import { factsOf } from '../../core/live.js';
import { effectiveSpec } from '../../core/overrides.js';
import type { AssignedSecret, Assignment, Layer, ReplicaRecord } from '../../core/types.js';
import type { AppSpec } from '../../core/manifest.js';
import type { Secrets } from './secrets.js';
import type { State } from '../state.js';

export interface AssignmentSet {
  replicas: Assignment[];
  /** apps whose images the node pulls ahead of the autopilot's move onto it */
  prepull: Prepull[];
  /** a hash of the set: equal versions, equal sets */
  version: string;
}

/** An app whose images a node pulls before a replica of it is placed there. */
export type Prepull = Pick<Assignment, 'app' | 'specHash' | 'spec' | 'imageBytes'>;

export class Assignments {
  private dirty = new Set<string>();
  private scheduled = false;
  private catalog: Record<string, { layers: Layer[] }> | null = null;
  private catalogEpoch = -1;
  private readonly listeners: ((nodes: string[]) => void)[] = [];

  /** the last set with secrets each node was given: what it keeps while a key is missing */
  private readonly sent = new Map<string, AssignmentSet>();
  /** opens secrets (set once the Secrets service exists) */
  secrets: Pick<Secrets, 'value'> | null = null;

  constructor(private readonly state: State) {}

  /** `f` hears the nodes whose set may have changed */
  subscribe(f: (nodes: string[]) => void): void {
    this.listeners.push(f);
  }

  touch(nodes: Iterable<string>): void {
    for (const n of nodes) this.dirty.add(n);
    if (this.scheduled || this.dirty.size === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const nodes = [...this.dirty];
      this.dirty.clear();
      for (const f of this.listeners) f(nodes);
    });
  }

  /** every image some node holds, with its layers (kept until a node's images change) */
  images(): Record<string, { layers: Layer[] }> {
    if (!this.catalog || this.catalogEpoch !== this.state.imagesEpoch) {
      this.catalog = imageCatalog(this.state.list('nodes'));
      this.catalogEpoch = this.state.imagesEpoch;
    }
    return this.catalog;
  }

  setFor(node: string): AssignmentSet {
    const s = this.state;
    const catalog = this.images();
    const rec = s.node(node);
    const have = rec?.layers ?? [];
    const replicas: Assignment[] = [];
    const h = createHash('sha1');
    for (const r of s.nodeReplicas(node)) {
      const base = specOf(s, r);
      if (!base) continue;
      const spec = rec ? runSpec(base, factsOf(rec)) : base;
      const a: Assignment = { id: r.id, app: r.app, specHash: r.specHash, spec, imageBytes: missingImagesBytes(catalog, imagesOf(spec), have), ...(r.drain ? { draining: true } : {}) };
      if ((spec.secrets ?? []).length > 0) {
        const secrets = this.secretsOf(spec);
        // sealed with a key this instance does not hold yet (another rotated it):
        // the node keeps what it has until the key arrives (Secrets.onKeys)
        if (!secrets) return this.sent.get(node) ?? { replicas: [], prepull: [], version: 'held' };
        a.secrets = secrets;
      }
      replicas.push(a);
      h.update(`${a.id} ${a.specHash} ${a.imageBytes} ${a.secrets?.map((x) => `${x.name}@${x.version}`).join(',') ?? ''}${a.draining ? ' draining' : ''}\n`);
    }
    const prepull = this.prepullFor(node, rec ? factsOf(rec) : null, catalog, have);
    for (const p of prepull) h.update(`prepull ${p.app} ${p.specHash}\n`);
    const set = { replicas, prepull, version: h.digest('base64url').slice(0, 16) };
    if (replicas.some((a) => a.secrets)) this.sent.set(node, set); else this.sent.delete(node);
    return set;
  }

  /** The apps the autopilot moves onto this node that wait for its pull (AppRecord.autopilot.prepull). */
  private prepullFor(node: string, facts: ReturnType<typeof factsOf> | null, catalog: Record<string, { layers: Layer[] }>, have: Layer[]): Prepull[] {
    const out: Prepull[] = [];
    for (const a of this.state.list('apps')) {
      if (!a.spec.placement.autopilot || !a.autopilot?.prepull?.nodes.includes(node)) continue;
      const spec = facts ? runSpec(a.spec, facts) : a.spec;
      out.push({ app: a.name, specHash: a.specHash, spec, imageBytes: missingImagesBytes(catalog, imagesOf(spec), have) });
    }
    return out;
  }

  /**
   * The values of the secrets a spec references, opened here, in memory, for
   * one node's set. A secret removed since (only while no current spec uses
   * it: an older revision still rolling out) is left out.
   */
  private secretsOf(spec: AppSpec): AssignedSecret[] | null {
    const out: AssignedSecret[] = [];
    for (const ref of spec.secrets) {
      const rec = this.state.get('secrets', ref.name);
      if (!rec) continue;
      const v = this.secrets?.value(rec);
      if (!v) return null;
      out.push({ name: ref.name, version: rec.version, value: v.toString('base64'), ...(ref.env ? { env: ref.env } : { file: ref.file }) });
    }
    return out;
  }
}

/**
 * The spec a node runs: its overrides applied, and then left out (the node
 * needs no other node's, and applying them again would be wrong).
 */
function runSpec(spec: AppSpec, facts: ReturnType<typeof factsOf>): AppSpec {
  // (a spec stored before overrides existed has none)
  if (!spec.overrides?.length) return spec;
  return { ...effectiveSpec(spec, facts).spec, overrides: [] };
}

/** A replica runs the spec of its own revision (an old one during a rolling update). */
function specOf(s: State, r: ReplicaRecord) {
  const a = s.app(r.app);
  if (!a) return undefined;
  return r.specHash === a.specHash ? a.spec : a.history?.find((h) => h.specHash === r.specHash)?.spec ?? a.spec;
}
