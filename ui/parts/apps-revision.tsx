// What an app's revisions say: which one it is at, how far its rollout has
// come, and where an undo would take it (as the control plane decides it);
// and the rollout as its events announce it.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { AppDetail, OutpostEvent, RolloutState } from '../../src/contract/api.js';
import { live } from '../live.js';

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

/** The rollout an app's event announces (null: the event says nothing of it). */
export function rolloutNews(e: OutpostEvent, was: RolloutState | null): RolloutState | null {
  if (e.revision === null) return null;
  const revision = e.revision;
  switch (e.type) {
    case 'app.deployed': return e.data.newRevision === true ? { revision, status: 'progressing', startedAt: e.at } : null;
    case 'rollout.complete': return { revision, status: 'complete', startedAt: was?.startedAt ?? e.at };
    // the event's revision is the one it went back to
    case 'rollout.rolled-back': return { revision, status: 'rolled-back', startedAt: e.at, message: e.message };
    case 'rollout.failed': return { revision, status: 'failed', startedAt: was?.startedAt ?? e.at, message: typeof e.data.why === 'string' ? e.data.why : e.message };
    default: return null;
  }
}

/**
 * The app's rollout, with what its last rollout event said shown at once:
 * the reload the event causes may wait up to a second behind the one before
 * it (hooks.ts), and a rollout's end often follows its last replica's ready
 * by milliseconds. Once a reload agrees (or after 5 s), the loaded state rules.
 */
export function useRollout(name: string, loaded: RolloutState | null): RolloutState | null {
  const [news, setNews] = useState<{ ro: RolloutState; until: number } | null>(null);
  const ref = useRef(loaded);
  ref.current = loaded;
  useEffect(() => live.on((e) => {
    const ro = e.app === name ? rolloutNews(e, ref.current) : null;
    if (ro) setNews({ ro, until: Date.now() + 5000 });
  }), [name]);
  const agrees = !!news && !!loaded && loaded.status === news.ro.status && loaded.revision === news.ro.revision;
  useEffect(() => { if (agrees) setNews(null); }, [agrees]);
  return news && !agrees && Date.now() < news.until ? news.ro : loaded;
}
