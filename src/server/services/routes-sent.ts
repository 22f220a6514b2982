// What one node was sent of its route table, kept without a copy per node:
// the whole table a node is sent when it connects is a snapshot shared by
// every node of its vantage sent the same one, and the entries sent to it
// after that are kept on top, folded into a table of its own once they are
// many. At 1,000 nodes and 500 apps, a copy per node was half a million map
// entries and a million and a half held replicas for every round of first
// tables (bench:routes).
import type { AppRoute } from '../../core/routes.js';

/** One app's entry as a vantage's table holds it: replaced, never changed, so a node that was sent this object has it. */
export interface Entry {
  route: AppRoute;
  /** its routeKey */
  key: string;
  /** its JSON, made the first time it is sent */
  json?: string;
}

/** A table's entries and the replicas they list, frozen. */
export interface Snapshot {
  entries: ReadonlyMap<string, Entry>;
  has: ReadonlySet<string>;
}

/** entries sent on top of a snapshot past which they are folded into a table of the node's own */
const FOLD_AT = 32;

export function snapshot(entries: ReadonlyMap<string, Entry>): Snapshot {
  const has = new Set<string>();
  for (const e of entries.values()) for (const x of e.route.endpoints) has.add(x.replica);
  return { entries: new Map(entries), has };
}

export const NOTHING: Snapshot = snapshot(new Map());

export class SentTable {
  /** entries sent since the snapshot: app -> entry, or null for an app removed */
  private readonly over = new Map<string, Entry | null>();
  /** replicas held beyond the snapshot's, and of the snapshot's those no longer held */
  private readonly plus = new Set<string>();
  private readonly minus = new Set<string>();

  constructor(private base: Snapshot = NOTHING) {}

  get(app: string): Entry | undefined {
    const o = this.over.get(app);
    return o === undefined ? this.base.entries.get(app) : (o ?? undefined);
  }

  /** the apps it holds */
  *apps(): Iterable<string> {
    for (const a of this.base.entries.keys()) if (!this.over.has(a)) yield a;
    for (const [a, e] of this.over) if (e) yield a;
  }

  holds(replica: string): boolean {
    return this.plus.has(replica) || (this.base.has.has(replica) && !this.minus.has(replica));
  }

  /** the replicas it holds */
  *replicas(): Iterable<string> {
    for (const r of this.base.has) if (!this.minus.has(r)) yield r;
    yield* this.plus;
  }

  /**
   * `app`'s entry is now `cur` (undefined: removed); answers the replicas
   * of the entry it replaces that the new one does not list (a replica is
   * in one app's entry only, so the node no longer holds them).
   */
  set(app: string, cur: Entry | undefined): string[] {
    const old = this.get(app);
    const now = new Set(cur?.route.endpoints.map((x) => x.replica));
    const gone: string[] = [];
    for (const x of old?.route.endpoints ?? []) {
      if (now.has(x.replica)) continue;
      gone.push(x.replica);
      this.plus.delete(x.replica);
      if (this.base.has.has(x.replica)) this.minus.add(x.replica);
    }
    for (const r of now) {
      this.minus.delete(r);
      if (!this.base.has.has(r)) this.plus.add(r);
    }
    this.over.set(app, cur ?? null);
    if (this.over.size > FOLD_AT) this.fold();
    return gone;
  }

  private fold(): void {
    const entries = new Map<string, Entry>();
    for (const a of this.apps()) entries.set(a, this.get(a)!);
    this.base = snapshot(entries);
    this.over.clear();
    this.plus.clear();
    this.minus.clear();
  }
}
