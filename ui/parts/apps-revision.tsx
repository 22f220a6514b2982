// What an app's revisions say: which one it is at, how far its rollout has
// come, and where an undo would take it (as the control plane decides it).
import type { AppDetail } from '../../src/contract/api.js';

/**
 * The revision whose spec the app is at: the newest with its spec hash. After
 * a rollback that is an older one (the failed revision keeps its number); an
 * undo makes a new revision with an older spec, so two can share a hash.
 */
export function runningRevision(app: Pick<AppDetail, 'history' | 'specHash'>): number | null {
  return [...app.history].reverse().find((h) => h.specHash === app.specHash)?.revision ?? null;
}

/** The current rollout's progress: replicas that run its revision and are ready, of those the spec asks for. */
export function rolloutProgress(app: AppDetail): { done: number; want: number } | null {
  const ro = app.rollout;
  if (!ro) return null;
  const hash = app.history.find((h) => h.revision === ro.revision)?.specHash ?? app.specHash;
  const done = app.replicas.filter((r) => r.specHash === hash && r.state === 'running' && r.ready !== false).length;
  return { done, want: app.spec.replicas };
}

/** The revision an undo goes back to, as the control plane picks it: the last complete one that runs something else. */
export const undoTarget = (app: AppDetail): AppDetail['history'][number] | undefined =>
  [...app.history].reverse().find((h) => h.status === 'complete' && h.specHash !== app.specHash);
