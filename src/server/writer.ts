// Every change to the control plane's state goes through here. An operation
// is a function that reads the state and returns the changes it decides on;
// it runs at once, its changes show in the state at once, and they reach the
// store in the next group commit (one transaction for everything decided in
// the same turn of the event loop: thousands of status reports cost one
// fsync, not thousands).
//
// Each change carries the revision its record had when the operation read it
// (compare-and-set). When a commit loses a race (another control-plane
// instance wrote one of its records), the records it touched are read again
// from the store and each operation in it is decided again from fresh state
// and committed on its own, as Nomad's plan applier re-checks a plan.
//
// A commit takes time (a PostgreSQL round trip): operations keep running
// meanwhile and build on the changes in flight. Their expectation is then the
// revision that commit will give the record, known only when it lands: such a
// write is chained, and takes the record's revision at its own commit (the
// earlier batch has settled by then: batches commit one at a time). Taking the
// revision the record had before the flight instead would lose a race against
// ourselves every time, and the retry would see other queued operations'
// changes and count them twice. If the record was read again from the store
// in between (a failed commit), what the operation built on is gone: it is
// decided again.
import type { Logger } from 'pino';
import type { ModelSample } from '../core/types.js';
import type { EventDraft } from '../core/events.js';
import { OutpostError } from '../core/errors.js';
import type { Docs, State } from './state.js';
import { KEY_FIELD, KINDS, StoreConflict, StoreFenced, type Changed, type Fence, type Kind, type Store, type Write } from './store/store.js';

export interface Change<K extends Kind = Kind> {
  kind: K;
  key: string;
  /** the new document, or null to delete */
  doc: Docs[K] | null;
}

export interface Decision<T> {
  changes: Change[];
  samples?: ModelSample[];
  /** what happened, for the event log: committed with the changes, or not at all */
  events?: EventDraft[];
  result: T;
}

export type Op<T> = (s: State) => Decision<T>;

/** A record another writer changed (another instance, through the store), as this one learnt of it. */
export interface Learnt {
  kind: Kind;
  key: string;
  prev: unknown | null;
  doc: unknown | null;
}

/** A change one of this writer's operations committed: the record as the operation found it, and as it left it. */
export interface Committed {
  kind: Kind;
  key: string;
  prev: unknown | null;
  doc: unknown | null;
}

export interface RunOptions {
  /** only the leader may decide it: its commit carries the leader's lease (fencing) */
  leader?: boolean;
}

/** A write, and when it builds on one not yet committed: the record's reload count at the time. */
type Staged = Write & { chained?: number };

interface Pending {
  op: Op<unknown>;
  writes: Map<string, Staged>;
  samples: ModelSample[];
  /** its changes with what they replaced, for those who hear of commits */
  seen: Committed[];
  events: EventDraft[];
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  result: unknown;
  leader: boolean;
}

/** attempts at an operation that keeps losing races, and the most it waits between them (jittered, doubling) */
const RETRIES = 8;
const MAX_BACKOFF_MS = 200;

export class Writer {
  private queue: Pending[] = [];
  private flushing: Promise<void> | null = null;
  private scheduled = false;
  /** commits, the changes in them, and lost races (the writer's tests read them) */
  readonly stats = { commits: 0, changes: 0, conflicts: 0 };
  /** per record: staged writes not settled yet (queued or in flight) */
  private readonly unsettled = new Map<string, number>();
  /** per record: how often it was read again from the store (a chained write on it is then stale) */
  private readonly reloads = new Map<string, number>();
  /** others' changes to records with writes of ours in flight: applied once ours settle */
  private readonly deferred = new Map<string, Changed>();
  /** records whose store copy could not be read after a failed commit (the store away): read at the next catch-up */
  private readonly stale = new Map<string, { kind: Kind; key: string }>();
  private readonly listeners: ((l: Learnt[]) => void)[] = [];
  private readonly committers: ((c: Committed[], samples: ModelSample[]) => void)[] = [];
  /** records with writes in flight: the revision the last settled one left them at (0: deleted) */
  private readonly based = new Map<string, number>();
  /** operations that arrived while a lost batch is decided again: they run after it, in order */
  private held: (() => void)[] | null = null;
  /** records deleted, and at which revision (see deleted()) */
  private readonly gone = new Map<string, number>();

  /**
   * `fence` gives the leader lease this process holds (null: none); a store
   * shared by no one needs none. `sync` brings the state up to the store's
   * revision (others' commits): a lost race is decided again only after it,
   * or the retry would build on records the winner changed but this one has
   * not heard of yet (an app's replicas, as another instance placed them).
   * `logged` hears that a commit carrying events landed (followers of the
   * event log read them).
   */
  constructor(
    private readonly store: Store, readonly state: State, private readonly log: Logger,
    private readonly fence: () => Fence | null = () => null, private readonly sync: () => Promise<void> = async () => {},
    private readonly logged: () => void = () => {},
  ) {}

  /** Brings the state up to what others committed (several instances; nothing to do alone). */
  catchUp(): Promise<void> {
    return this.sync();
  }

  /** `f` hears of records others changed, once they are in the state */
  subscribe(f: (l: Learnt[]) => void): void {
    this.listeners.push(f);
  }

  /**
   * `f` hears of what this writer's own operations committed, once each,
   * after the commit (an operation decided again after a lost race: its last
   * decision); the metrics count replica restarts and rollout outcomes so
   */
  onCommit(f: (c: Committed[], samples: ModelSample[]) => void): void {
    this.committers.push(f);
  }

  private told(ops: { seen: Committed[]; samples: ModelSample[] }[]): void {
    for (const f of this.committers) {
      for (const o of ops) {
        try { f(o.seen, o.samples); } catch (err) { this.log.error({ err }, 'a commit listener failed'); }
      }
    }
  }

  /**
   * Runs `op` now and applies its changes to the state; the promise settles
   * when they are committed (with the op's result), or fails with E_CONFLICT
   * when even fresh state kept losing races.
   */
  private closed = false;

  run<T>(op: Op<T>, o: RunOptions = {}): Promise<T> {
    // while a lost race is decided again, later operations wait their turn: deciding them
    // first would let the retry build on their changes, and count them twice
    if (this.held) return new Promise<T>((resolve, reject) => this.held!.push(() => this.run(op, o).then(resolve, reject)));
    if (o.leader && !this.fence()) return Promise.reject(notLeader());
    let d: Decision<T>;
    try {
      d = op(this.state);
    } catch (e) {
      return Promise.reject(e);
    }
    if (d.changes.length === 0 && !d.samples?.length && !d.events?.length) return Promise.resolve(d.result);
    // a closed store takes nothing more: what arrives while the process stops (a last
    // status, a socket that finishes closing) is dropped rather than failing in the background
    if (this.closed) return Promise.resolve(d.result);
    return new Promise<T>((resolve, reject) => {
      const seen: Committed[] = [];
      const p: Pending = { op: op as Op<unknown>, writes: this.stage(d.changes, seen), samples: d.samples ?? [], seen, events: d.events ?? [], resolve: resolve as (v: unknown) => void, reject, result: d.result, leader: o.leader ?? false };
      this.queue.push(p);
      this.schedule();
    });
  }

  /** Commits what is queued, then takes no more writes (before the store closes). */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  /** Settles once everything queued so far is committed. */
  async flush(): Promise<void> {
    while (this.queue.length > 0 || this.flushing) {
      if (this.flushing) await this.flushing;
      else await this.commitQueued();
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.flushing) this.commitQueued().catch((err) => this.log.error({ err }, 'commit failed'));
    });
  }

  /** Applies changes to the state, remembering for each record the revision it was read at. */
  private stage(changes: Change[], seen: Committed[]): Map<string, Staged> {
    const writes = new Map<string, Staged>();
    for (const c of changes) {
      if (this.committers.length) seen.push({ kind: c.kind, key: c.key, prev: this.state.get(c.kind, c.key) ?? null, doc: c.doc });
      const id = `${c.kind}/${c.key}`;
      const w = writes.get(id);
      if (w) w.doc = c.doc;
      else {
        const n = this.unsettled.get(id) ?? 0;
        writes.set(id, { kind: c.kind, key: c.key, doc: c.doc, expect: this.state.rev(c.kind, c.key), ...(n > 0 ? { chained: this.reloads.get(id) ?? 0 } : {}) });
        this.unsettled.set(id, n + 1);
      }
      this.state.set(c.kind, c.key, c.doc as never, this.state.rev(c.kind, c.key));
    }
    return writes;
  }

  /** Its writes are committed or dropped: later ones on the same records build on the store again. */
  private done(writes: Map<string, Staged>): void {
    for (const id of writes.keys()) {
      const n = (this.unsettled.get(id) ?? 1) - 1;
      if (n > 0) this.unsettled.set(id, n);
      else {
        this.unsettled.delete(id);
        this.based.delete(id);
        const c = this.deferred.get(id);
        if (c) { this.deferred.delete(id); this.learn([c]); }
      }
    }
  }

  /**
   * Others' commits, as the store reports them: each record newer than the
   * state's copy replaces it, unless writes of ours on it are in flight (their
   * commit settles first: it wins, or it loses the race and the record is read
   * again). With `reset`, `changes` is everything: records not in it are gone.
   */
  learn(changes: Changed[], reset = false): void {
    const newest = new Map<string, Changed>();
    for (const c of changes) {
      const id = `${c.kind}/${c.key}`;
      const seen = newest.get(id);
      if (!seen || seen.rev < c.rev) newest.set(id, c);
    }
    if (reset) {
      for (const kind of KINDS) {
        for (const doc of this.state.unordered(kind)) {
          const key = keyOf(kind, doc);
          if (!newest.has(`${kind}/${key}`)) newest.set(`${kind}/${key}`, { kind, key, rev: Number.MAX_SAFE_INTEGER, doc: null });
        }
      }
    }
    const learnt: Learnt[] = [];
    for (const [id, c] of newest) {
      if (this.unsettled.has(id)) { const d = this.deferred.get(id); if (!d || d.rev < c.rev) this.deferred.set(id, c); continue; }
      const prev = this.state.get(c.kind, c.key) ?? null;
      const known = Math.max(this.state.rev(c.kind, c.key), prev === null ? this.gone.get(id) ?? 0 : 0);
      if (c.doc === null ? prev === null || known >= c.rev : known >= c.rev) continue;
      this.state.set(c.kind, c.key, c.doc as never, c.doc === null ? 0 : c.rev);
      if (c.doc === null) this.deleted(id, c.rev);
      learnt.push({ kind: c.kind, key: c.key, prev, doc: c.doc });
    }
    if (learnt.length) for (const f of this.listeners) f(learnt);
  }

  /** Reads the records a failed commit could not read back (the store was away); false while it still is. */
  async repair(): Promise<boolean> {
    for (const [id, { kind, key }] of [...this.stale]) {
      if (this.unsettled.has(id)) continue;
      let row;
      try { row = await this.store.get(kind, key); } catch { return false; }
      this.stale.delete(id);
      this.replace(kind, key, row);
    }
    return true;
  }

  /** The store's copy of a record replaces the state's (others hear of the difference as of a change). */
  private replace(kind: Kind, key: string, row: { rev: number; doc: unknown } | undefined): void {
    // a commit of ours that settled while the row was read is newer than it: keep the state's copy
    const id = `${kind}/${key}`;
    if (row && (this.state.rev(kind, key) > row.rev || (this.gone.get(id) ?? 0) > row.rev)) return;
    if (!row && this.state.rev(kind, key) > 0 && !this.unsettled.has(id)) return;
    const prev = this.state.get(kind, key) ?? null;
    this.state.set(kind, key, (row?.doc ?? null) as never, row?.rev ?? 0);
    // writes still queued on it build on what the store holds now
    if (this.based.has(id)) this.based.set(id, row?.rev ?? 0);
    if (JSON.stringify(prev) !== JSON.stringify(row?.doc ?? null)) for (const f of this.listeners) f([{ kind, key, prev, doc: row?.doc ?? null }]);
  }

  /** The writes as the store takes them: a chained one expects the revision its base was committed at. */
  private resolve(writes: Iterable<[string, Staged]>): Write[] {
    const out: Write[] = [];
    for (const [id, { chained, ...w }] of writes) {
      if (chained === undefined) { out.push(w); continue; }
      // its base was dropped and the record read again: decide again, as after a lost race
      if ((this.reloads.get(id) ?? 0) !== chained) throw new StoreConflict(w.kind, w.key, w.expect ?? 0, this.state.rev(w.kind, w.key));
      // the revision its base was committed at (0 when the base deleted it); the state cannot
      // say, when this write deletes the record (it is gone from the state already)
      out.push({ ...w, expect: this.based.get(id) ?? this.state.rev(w.kind, w.key) });
    }
    return out;
  }

  private commitQueued(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    const run = this.commitBatch(batch).finally(() => {
      this.flushing = null;
      if (this.queue.length > 0) this.schedule();
    });
    this.flushing = run;
    return run;
  }

  private async commitBatch(all: Pending[]): Promise<void> {
    // a leader's decision made before its lease passed on is dropped (the new leader decides again)
    const fence = this.fence();
    const batch = fence ? all : all.filter((p) => !p.leader || this.drop(p));
    if (batch.length === 0) return;
    const merged = merge(batch.map((p) => p.writes));
    try {
      const events = batch.flatMap((p) => p.events);
      const rev = await this.store.commit(this.resolve(merged), batch.flatMap((p) => p.samples), batch.some((p) => p.leader) ? fence ?? undefined : undefined, events);
      this.settle(merged, rev);
      if (events.length) this.logged();
      for (const p of batch) { this.done(p.writes); p.resolve(p.result); }
      this.told(batch);
    } catch (err) {
      this.held ??= [];
      await this.reload(merged);
      for (const p of batch) this.done(p.writes);
      if (err instanceof StoreFenced) {
        // the others were not the leader's to decide: they go on
        return this.retry(batch.filter((p) => !p.leader || void p.reject(notLeader())));
      }
      if (!(err instanceof StoreConflict)) {
        this.log.error({ err, changes: merged.size }, 'commit failed; the changes were dropped');
        for (const p of batch) p.reject(storeError(err));
        return;
      }
      this.stats.conflicts++;
      this.log.debug({ conflict: err.message, operations: batch.length }, 'a commit lost a race; its operations are decided again');
      await this.sync();
      await this.retry(batch);
    } finally {
      const held = this.held ?? [];
      this.held = null;
      for (const f of held) f();
    }
  }

  /** Rejects a leader's operation (E_NOT_LEADER) before its commit; answers false, for filters. */
  private drop(p: Pending): false {
    void this.reload(p.writes).then(() => this.done(p.writes));
    p.reject(notLeader());
    return false;
  }

  /**
   * A lost batch's operations, decided again from what the store holds now
   * and committed together (as the first attempt: one commit for many). One
   * that now throws is rejected alone. Lost again, they wait a jittered,
   * doubling pause, catch up and try again: a record every instance writes
   * (a join token's use count during a mass enrolment through several
   * instances) is then won in turn instead of fought over in lockstep.
   */
  private async retry(ops: Pending[]): Promise<void> {
    let left = ops;
    for (let i = 0; i < RETRIES && left.length > 0; i++) {
      if (i > 0) {
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(MAX_BACKOFF_MS, 5 * 2 ** i)));
        await this.sync();
      }
      const fence = this.fence();
      if (!fence) left = left.filter((p) => !p.leader || void p.reject(notLeader()));
      const decided: { p: Pending; d: Decision<unknown>; writes: Map<string, Staged>; seen: Committed[]; samples: ModelSample[] }[] = [];
      for (const p of left) {
        try {
          const d = p.op(this.state);
          const seen: Committed[] = [];
          decided.push({ p, d, writes: this.stage(d.changes, seen), seen, samples: d.samples ?? [] });
        } catch (e) {
          p.reject(e);
        }
      }
      if (decided.length === 0) return;
      const merged = merge(decided.map((x) => x.writes));
      try {
        const events = decided.flatMap((x) => x.d.events ?? []);
        const rev = await this.store.commit(this.resolve(merged), decided.flatMap((x) => x.d.samples ?? []), decided.some((x) => x.p.leader) ? fence ?? undefined : undefined, events);
        this.settle(merged, rev);
        if (events.length) this.logged();
        for (const x of decided) { this.done(x.writes); x.p.resolve(x.d.result); }
        this.told(decided);
        return;
      } catch (err) {
        await this.reload(merged);
        for (const x of decided) this.done(x.writes);
        left = decided.map((x) => x.p);
        if (err instanceof StoreFenced) { left = left.filter((p) => !p.leader || void p.reject(notLeader())); continue; }
        if (!(err instanceof StoreConflict)) { for (const p of left) p.reject(storeError(err)); return; }
        this.stats.conflicts++;
      }
    }
    for (const p of left) p.reject(new OutpostError('E_CONFLICT', `gave up after ${RETRIES} attempts: other writers kept changing the same records`));
  }

  private settle(writes: Map<string, Write>, rev: number): void {
    this.stats.commits++;
    this.stats.changes += writes.size;
    for (const [id, w] of writes) {
      if (w.doc !== null) this.state.committed(w.kind, w.key, rev);
      else this.deleted(id, rev);
      // writes chained on this one expect what it left
      this.based.set(id, w.doc === null ? 0 : rev);
      // what others did before this commit is older than it: it must not be applied after it
      const d = this.deferred.get(id);
      if (d && d.rev <= rev) this.deferred.delete(id);
    }
  }

  /**
   * Remembers at which revision a record was deleted: a change to it read
   * before (a snapshot of the store taken while the deletion was in flight)
   * must not bring it back. Bounded: deletions far older than any snapshot
   * still being read are forgotten (and forget() drops those a reader is past).
   */
  private deleted(id: string, rev: number): void {
    this.gone.delete(id);
    this.gone.set(id, rev);
    if (this.gone.size > 100_000) this.gone.delete(this.gone.keys().next().value!);
  }

  /** A reader of the store's changes is past `rev`: deletions at or before it need no remembering. */
  forget(rev: number): void {
    for (const [id, r] of this.gone) if (r <= rev) this.gone.delete(id);
  }

  /**
   * A failed commit's records, as the store holds them: the state's optimistic
   * copies are discarded. A record the store cannot give now (it is away) is
   * read at the next catch-up (repair).
   */
  private async reload(writes: Map<string, Write>): Promise<void> {
    // writes chained on the dropped ones, staged before or while the store is read, are decided again
    const bump = () => { for (const id of writes.keys()) this.reloads.set(id, (this.reloads.get(id) ?? 0) + 1); };
    bump();
    for (const [id, w] of writes) {
      let row;
      try {
        row = await this.store.get(w.kind, w.key);
      } catch {
        this.stale.set(id, { kind: w.kind, key: w.key });
        continue;
      }
      this.replace(w.kind, w.key, row);
    }
    bump();
  }
}

function keyOf(kind: Kind, doc: unknown): string {
  return (doc as Record<string, string>)[KEY_FIELD[kind]]!;
}

/**
 * For writes nobody waits on (a heartbeat's state, a status): a store that
 * fails them is logged by the writer already, and the next report writes
 * again; the rejection must not go unhandled (it would end the process).
 */
export const loggedByWriter = (): void => {};

/** One write per record: the first reader's expectation, the last writer's document. */
function merge(all: Map<string, Staged>[]): Map<string, Staged> {
  const merged = new Map<string, Staged>();
  for (const writes of all) {
    for (const [id, w] of writes) {
      const m = merged.get(id);
      if (m) m.doc = w.doc;
      else merged.set(id, { ...w });
    }
  }
  return merged;
}

function notLeader(): OutpostError {
  return new OutpostError('E_NOT_LEADER', 'this instance no longer holds the leader lease: the decision was dropped, and the leader makes it again');
}

/** A store that failed for another reason than a lost race: the write was not committed. */
function storeError(err: unknown): unknown {
  if (err instanceof OutpostError) return err;
  return new OutpostError('E_STORE', `the store did not take the write (${(err as Error).message || (err as { code?: string }).code}); it was not acknowledged, and is not in the state`, { cause: err });
}
