// What agents report about their replicas: each report touches its own
// replicas (and, when a start finished, the node's calibration and a model
// sample), nothing else. Reports that change nothing write nothing.
import { calibrate, calibrateBandwidth } from '../../core/model.js';
import { normalizeRef } from '../../core/images.js';
import { hostKey, meanConcurrency, type Window } from '../../core/contention.js';
import { modelError } from '../../core/accuracy.js';
import type { ModelAnswer } from '../../contract/api.js';
import type { ModelSample, NodeRecord, ReplicaRecord, ReplicaStatus } from '../../core/types.js';
import { replicaEvents, type EventDraft } from '../../core/events.js';
import type { Change, Writer } from '../writer.js';
import type { State } from '../state.js';
import type { Store } from '../store/store.js';

/** No start-up lasts longer than this (health.startTimeoutMs's maximum): older starts overlap nothing new. */
const MAX_START_MS = 3_600_000;

export interface StatusOutcome {
  /** apps with a replica whose status changed */
  touched: string[];
  /** apps where what a rollout or the reconciler waits for changed (state, readiness, restarts, last exit) */
  progressed: string[];
}

export class Statuses {
  constructor(private readonly w: Writer, private readonly store: Store, private readonly now: () => number) {}

  apply(nodeName: string, statuses: ReplicaStatus[], pulled: { bytes: number; ms: number } | null = null): Promise<StatusOutcome> {
    return this.w.run((s) => {
      const changes: Change[] = [];
      const samples: ModelSample[] = [];
      const events: EventDraft[] = [];
      const touched = new Set<string>();
      const progressed = new Set<string>();
      let node = s.node(nodeName);
      const node0 = node;
      if (node && pulled) node = { ...node, timings: calibrateBandwidth(node.timings, pulled.bytes, pulled.ms) };
      for (const st of statuses) {
        const r = s.replica(st.id);
        // a replica the control plane no longer wants, or one moved elsewhere: the
        // agent will stop it when its next assignment arrives
        if (!r || r.node !== nodeName) continue;
        const next = merge(r, st, this.now());
        const progress = next.state !== r.state || next.ready !== r.ready || next.restarts !== r.restarts || JSON.stringify(next.lastExit ?? null) !== JSON.stringify(r.lastExit ?? null);
        if (!progress && sameReport(r, next)) continue;
        const started = st.state === 'running' && r.state !== 'running' && st.measured?.engineMs != null;
        if (started && node) {
          next.concurrency = startConcurrency(s, next, node);
          const spec = s.app(r.app)?.spec;
          // T_engine is the app's own start-up: kept per image as well, uncontended
          node = { ...node, timings: calibrate(node.timings, next.measured, { concurrency: next.concurrency ?? 1, cpus: node.cpus, image: spec?.image ? normalizeRef(spec.image) : null }) };
          const sample = sampleOf(next, spec?.image ?? null, this.now());
          if (sample) samples.push(sample);
        }
        changes.push({ kind: 'replicas', key: r.id, doc: next });
        const app = s.app(r.app);
        events.push(...replicaEvents(r, next, this.now(), {
          image: app?.spec.image ?? null, revision: app?.history?.find((h) => h.specHash === r.specHash)?.revision ?? null, pulledBytes: pulled?.bytes ?? null,
        }));
        touched.add(r.app);
        if (progress) progressed.add(r.app);
      }
      if (node && node !== node0) changes.push({ kind: 'nodes', key: nodeName, doc: node });
      return { changes, samples, events, result: { touched: [...touched], progressed: [...progressed] } };
    });
  }

  /** The model's error over the newest 10,000 samples; with `recent` > 0, that many of them too, oldest first (for a chart over time). */
  async modelError(recent = 0): Promise<ModelAnswer> {
    await this.w.flush();
    const samples = await this.store.listSamples(10_000);
    const answer: ModelAnswer = { ...modelError(samples), cold: modelError(samples, (x) => !x.cached), warm: modelError(samples, (x) => x.cached) };
    // the store lists newest first
    if (recent > 0) answer.recent = samples.slice(0, recent).reverse();
    return answer;
  }
}

function merge(r: ReplicaRecord, s: ReplicaStatus, now: number): ReplicaRecord {
  return {
    ...r,
    state: s.state,
    endpoint: s.endpoint !== undefined ? s.endpoint : r.endpoint,
    ready: s.ready !== undefined ? s.ready : s.state === 'running' ? r.ready : false,
    restarts: s.restarts ?? r.restarts,
    measured: { ...r.measured, ...definedOnly(s.measured ?? {}) },
    progress: s.progress !== undefined ? s.progress : r.progress,
    error: s.error !== undefined ? s.error : r.error,
    lastExit: s.lastExit !== undefined ? s.lastExit : r.lastExit ?? null,
    startedAt: s.startedAt !== undefined ? s.startedAt : r.startedAt ?? null,
    updatedAt: now,
  };
}

/** the same report again (an agent re-sends every status after a reconnect): nothing to write */
function sameReport(a: ReplicaRecord, b: ReplicaRecord): boolean {
  const { updatedAt: _a, ...x } = a;
  const { updatedAt: _b, ...y } = b;
  return JSON.stringify(x) === JSON.stringify(y);
}

/**
 * The mean number of starts in flight on the node's host while this replica
 * started: its engine window against those of the replicas on every ready
 * node of the same host (their agents share one clock). One still starting
 * when this one finished overlaps it up to its end; one that began more than
 * its longest possible start-up earlier (a replica stuck on a node that went
 * away) does not.
 */
function startConcurrency(s: State, r: ReplicaRecord, node: NodeRecord): number {
  if (!r.startedAt || r.measured.engineMs === null) return 1;
  const w = { start: r.startedAt, end: r.startedAt + r.measured.engineMs };
  const others: Window[] = [];
  for (const n of s.hostNodes(hostKey(node.name, node.hostId))) {
    if (n.name !== node.name && n.state !== 'ready') continue;
    for (const o of s.nodeReplicas(n.name)) {
      if (o.id === r.id || !o.startedAt || o.startedAt < w.start - MAX_START_MS) continue;
      if (o.state === 'starting') others.push({ start: o.startedAt, end: w.end });
      else if (o.measured.engineMs !== null) others.push({ start: o.startedAt, end: o.startedAt + o.measured.engineMs });
    }
  }
  return Math.round(meanConcurrency(w, others) * 100) / 100;
}

/** A deployment measured in full is kept as a predicted-vs-measured sample. */
function sampleOf(r: ReplicaRecord, image: string | null, at: number): ModelSample | null {
  const m = r.measured;
  const p = r.predicted;
  if (m.imageMs === null || m.containerMs === null || m.engineMs === null || p.imageMs === null || p.containerMs === null || p.engineMs === null) return null;
  return {
    replica: r.id, app: r.app, node: r.node, image, cached: m.imageMs === 0,
    predicted: { imageMs: p.imageMs, containerMs: p.containerMs, engineMs: p.engineMs, deployMs: p.deployMs ?? p.imageMs + p.containerMs + p.engineMs },
    measured: { imageMs: m.imageMs, containerMs: m.containerMs, engineMs: m.engineMs, deployMs: Math.round((m.imageMs + m.containerMs + m.engineMs) * 10) / 10 },
    at,
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
