// One step of a rolling update, as a pure decision: how many new replicas to
// create and which old ones to remove now, so that at most k + maxSurge exist
// and at least k - maxUnavailable are ready at every step. The reconciler
// calls it on every tick; health (readiness) gates each step.
import type { ReplicaRecord } from './types.js';

export interface RolloutStep {
  create: number;
  remove: ReplicaRecord[];
}

export const isReady = (r: ReplicaRecord) => r.state === 'running' && r.ready !== false;

export function rolloutStep(k: number, maxSurge: number, maxUnavailable: number, fresh: ReplicaRecord[], stale: ReplicaRecord[]): RolloutStep {
  // old replicas that serve nothing can go at once
  const deadStale = stale.filter((r) => !isReady(r));
  const liveStale = stale.filter(isReady).sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
  const readyFresh = fresh.filter(isReady).length;
  const minAvailable = Math.max(0, k - maxUnavailable);
  // remove ready old replicas while enough stay ready (with no surge, that is how room is made)
  const removable = Math.min(liveStale.length, Math.max(0, readyFresh + liveStale.length - minAvailable));
  const remove = [...deadStale, ...liveStale.slice(0, removable)];
  const remaining = stale.length - remove.length;
  const create = Math.max(0, Math.min(k - fresh.length, k + maxSurge - fresh.length - remaining));
  return { create, remove };
}
