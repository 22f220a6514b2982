// Draining: a replica of an exposed app that the reconciler retires (a rolling
// update, a scale-in, a move) is not stopped at once. It first leaves every
// site proxy's route table; it is stopped (its record deleted, so it leaves
// its node's assignment set) once every proxy that was sent it has confirmed
// a table without it and finished the requests it had in flight there, or
// at its deadline (`expose.drainS`), whichever comes first.
//
// Pure: the decisions are here; the timers, the tables and the proxies'
// confirmations are the control plane's (src/server/services/drains.ts,
// routes.ts).
import type { AppSpec } from './manifest.js';
import type { NodeRecord, ReplicaRecord } from './types.js';

export type Drain = NonNullable<ReplicaRecord['drain']>;

/**
 * Whether a replica being retired drains first, and until when; null: it is
 * removed at once. Only an exposed app's replica that may have clients
 * drains: one running with an endpoint, on a node that answers. A replica
 * still starting, failed, or on a node away (lost or unreachable: its proxy
 * tables cannot change, and nothing could stop it now anyway) has none.
 */
export function drainOf(spec: AppSpec | undefined, r: ReplicaRecord, node: NodeRecord | undefined, lost: boolean, now: number): Drain | null {
  const drainS = spec?.expose?.drainS ?? 0;
  if (drainS <= 0 || r.drain || r.state !== 'running' || !r.endpoint || lost || node?.state !== 'ready') return null;
  return { since: now, until: now + Math.round(drainS * 1000) };
}

export type DrainVerdict = { done: true; why: 'drained' | 'deadline' } | { done: false; until: number };

/**
 * Whether a draining replica may be stopped now. `holders`: the nodes whose
 * proxies may still send it requests or have some in flight (sent a table
 * with it and not yet confirmed one without it, or confirmed one with its
 * requests still running). `unwatched`: the tables sent since the drain began
 * were not all seen (a control plane started since, or agents connected to
 * another instance): then only the deadline ends it.
 */
export function drainVerdict(d: Drain, now: number, holders: readonly string[], unwatched: boolean): DrainVerdict {
  if (now >= d.until) return { done: true, why: 'deadline' };
  if (!unwatched && holders.length === 0) return { done: true, why: 'drained' };
  return { done: false, until: d.until };
}
