// Draining replicas, stopped when their drain ends (src/core/drain.ts
// decides; this keeps the timers). A drain is checked when it begins, when a
// node stops holding the replica (its proxy confirmed a table without it and
// finished its requests), and at its deadline. Ending it deletes the record:
// the replica leaves its node's assignment set and its agent stops it.
// Only the leader ends drains; another instance's attempt is refused and the
// leader's own timers and checks do it, while this one tries again every
// second (a leader that changes picks the drains up).
import type { Logger } from 'pino';
import { OutpostError } from '../../core/errors.js';
import { drainVerdict } from '../../core/drain.js';
import { draft, type EventDraft } from '../../core/events.js';
import type { ReplicaRecord } from '../../core/types.js';
import type { Change, Writer } from '../writer.js';
import type { Assignments } from './assignments.js';
import type { RecordChange, Routes } from './routes.js';

export class Drains {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly due = new Set<string>();
  private scheduled = false;
  private closed = false;
  /** drains ended, by why */
  readonly ended = { drained: 0, deadline: 0 };
  /** room freed when a drained replica goes (apps that could not be placed try again) */
  onFreed: () => void = () => {};

  constructor(private readonly w: Writer, private readonly routes: Routes, private readonly assignments: Assignments, private readonly now: () => number, private readonly log: Logger) {
    routes.onRelease((ids) => this.check(ids));
    // drains under way when this process started: their deadline still holds
    for (const r of w.state.unordered('replicas')) if (r.drain) this.watch(r);
  }

  /** Records changed: a drain that began is watched, a replica gone is not any more. */
  observe(changes: RecordChange[]): void {
    for (const c of changes) {
      if (c.kind !== 'replicas') continue;
      const doc = c.doc as ReplicaRecord | null;
      if (doc?.drain) this.watch(doc);
      else this.unwatch(c.key);
    }
  }

  private watch(r: ReplicaRecord): void {
    if (this.timers.has(r.id) || !r.drain || this.closed) return;
    // a few ms past the deadline: the verdict then says so on any clock
    this.timers.set(r.id, setTimeout(() => this.check([r.id]), Math.max(0, r.drain.until - this.now()) + 5));
    this.check([r.id]);
  }

  private unwatch(id: string): void {
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
  }

  /** Looks at these drains in the next turn (after the tables that drop them are sent). */
  check(ids: Iterable<string>): void {
    for (const id of ids) if (this.timers.has(id)) this.due.add(id);
    if (this.scheduled || this.due.size === 0) return;
    this.scheduled = true;
    setImmediate(() => this.pass());
  }

  private pass(): void {
    this.scheduled = false;
    const ids = [...this.due];
    this.due.clear();
    if (this.closed) return;
    const t = this.now();
    const s = this.w.state;
    const done: { r: ReplicaRecord; why: 'drained' | 'deadline' }[] = [];
    for (const id of ids) {
      const r = s.replica(id);
      if (!r?.drain) { this.unwatch(id); continue; }
      const v = drainVerdict(r.drain, t, this.routes.holders(id), r.drain.since < this.routes.since || this.routes.unwatched());
      if (v.done) done.push({ r, why: v.why });
    }
    if (done.length) this.end(done);
  }

  /** Deletes the drained replicas (those still draining when this commits): their agents stop them. */
  private end(done: { r: ReplicaRecord; why: 'drained' | 'deadline' }[]): void {
    const t = this.now();
    this.w.run((s) => {
      const changes: Change[] = [];
      const events: EventDraft[] = [];
      const ended: typeof done = [];
      for (const d of done) {
        const r = s.replica(d.r.id);
        if (!r?.drain) continue;
        changes.push({ kind: 'replicas', key: r.id, doc: null });
        const ms = Math.max(0, t - r.drain.since);
        events.push(draft('replica.drained', t, {
          app: r.app, node: r.node, replica: r.id,
          message: d.why === 'drained' ? `${r.id} on ${r.node} drained in ${ms} ms: no proxy sends it requests; stopping it` : `${r.id} on ${r.node}: drain deadline passed after ${ms} ms; stopping it`,
          data: { why: d.why, ms },
        }));
        ended.push(d);
      }
      return { changes, events, result: ended };
    }, { leader: true }).then((ended) => {
      for (const d of ended) { this.ended[d.why]++; this.unwatch(d.r.id); }
      if (ended.length === 0) return;
      this.assignments.touch(ended.map((d) => d.r.node));
      this.onFreed();
    }, (e) => {
      // not the leader (now): the leader ends it; and should this instance become the leader, its re-armed timer does
      // (left fired in `timers`, watch() would never arm it again and the drain would outlive its deadline here)
      if (!(e instanceof OutpostError && e.code === 'E_NOT_LEADER')) this.log.warn({ err: e }, 'ending drains failed; their deadline tries again');
      // tried again at the deadline (or, past it, in a second)
      for (const d of done) {
        this.unwatch(d.r.id);
        setTimeout(() => { const r = this.w.state.replica(d.r.id); if (r) this.watch(r); }, 1000);
      }
    });
  }

  close(): void {
    this.closed = true;
    for (const id of [...this.timers.keys()]) this.unwatch(id);
  }
}
