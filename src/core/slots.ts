// Replica identities. Each replica fills a slot of its app (0..replicas-1;
// during a rolling update the new revision's replicas count their own slots
// beside the old ones) and takes the next number of the app's serial: its id
// is APP-SLOT-SERIAL. Derived from the app record, not drawn at random, so an
// operation decided twice from the same state (a retried commit, or two
// control-plane instances) names its replicas the same, and the store's
// compare-and-set turns the second into a conflict instead of a duplicate.
import type { ReplicaRecord } from './types.js';

export function replicaId(app: string, slot: number, serial: number): string {
  return `${app}-${slot}-${serial}`;
}

/** The lowest `count` slots that none of `taken` (the revision's kept replicas) holds. */
export function freeSlots(taken: Pick<ReplicaRecord, 'slot'>[], count: number): number[] {
  const used = new Set(taken.map((r) => r.slot).filter((s): s is number => s !== undefined));
  const out: number[] = [];
  for (let s = 0; out.length < count; s++) if (!used.has(s)) out.push(s);
  return out;
}
