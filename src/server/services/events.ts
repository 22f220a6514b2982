// The event log's readers: a page of it (GET /v1/events) and followers
// (GET /v1/events/stream). The services write events with their state
// changes (src/core/events.ts); this reads them back in the store's order.
//
// Followers share one reader: each wake-up (a commit of this instance that
// carried events, or another instance's commit heard through the store's
// change feed) costs one query after the newest seq read, however many follow;
// each follower gets what matches its filter. A follower that starts (or comes
// back with its last seq) first reads its backlog from the store itself, then
// joins the shared reader; what arrives meanwhile waits for it, so it misses
// nothing and gets nothing twice.
import type { Logger } from 'pino';
import type { OutpostEvent, Since } from '../../core/events.js';
import type { EventPage, EventQuery, Store } from '../store/store.js';

/** events per store read */
const PAGE = 1000;

export interface Follow {
  since: Since;
  app?: string;
  node?: string;
  /** what else the caller may not see (its token's scope) */
  visible?: (e: OutpostEvent) => boolean;
  /** each event, in order */
  send: (e: OutpostEvent) => void;
  /** the follower was dropped: the store failed (`err`), or the control plane stops; it comes back with its last seq */
  end: (err?: unknown) => void;
}

export interface Following {
  stop(): void;
  /** every event up to this seq has been considered, sent or filtered out: where a reconnect resumes */
  cursor(): number;
}

interface Follower {
  f: Follow;
  /** every event up to this seq has been considered (sent or filtered out) */
  cursor: number;
  /** still reading its backlog: what the shared reader finds waits here */
  held: OutpostEvent[] | null;
  gone: boolean;
}

export class EventLog {
  private readonly followers = new Set<Follower>();
  /** the newest seq the shared reader has read; null while nobody follows */
  private tail: number | null = null;
  private reading: Promise<void> | null = null;
  private again = false;

  constructor(private readonly store: Store, private readonly log: Logger) {}

  /** One page, in seq order. */
  list(q: EventQuery): Promise<EventPage> {
    return this.store.listEvents(q);
  }

  /** How many follow now. */
  get following(): number {
    return this.followers.size;
  }

  /** Follows the log from `since`, until stopped. */
  follow(f: Follow): Following {
    const me: Follower = { f, cursor: 'after' in f.since ? f.since.after : 0, held: [], gone: false };
    this.followers.add(me);
    this.backlog(me).catch((err) => this.drop(me, err));
    return { stop: () => this.drop(me), cursor: () => me.cursor };
  }

  /** Something was committed: followers get what is new (one read for all of them). */
  wake(): void {
    if (this.tail === null) return;
    if (this.reading) { this.again = true; return; }
    this.reading = this.readNew().catch((err) => {
      // nothing is lost: the next wake-up reads from the same seq
      this.log.warn({ err }, 'reading new events failed; followers get them at the next commit');
    }).finally(() => { this.reading = null; });
  }

  private async readNew(): Promise<void> {
    do {
      this.again = false;
      for (;;) {
        const after = this.tail;
        if (after === null) return;
        const page = await this.store.listEvents({ after, limit: PAGE });
        // the last follower may have left while the store answered
        if (this.tail === null) return;
        for (const e of page.events) for (const me of this.followers) this.offer(me, e);
        this.tail = Math.max(this.tail, page.last);
        if (page.events.length < PAGE) break;
      }
    } while (this.again);
  }

  /** A follower's backlog from the store, then the shared reader's events it held meanwhile. */
  private async backlog(me: Follower): Promise<void> {
    const f = me.f;
    let q: EventQuery = { ...('from' in f.since ? { from: f.since.from } : { after: me.cursor }), app: f.app, node: f.node, limit: PAGE };
    for (;;) {
      const page = await this.store.listEvents(q);
      if (me.gone) return;
      for (const e of page.events) this.deliver(me, e);
      me.cursor = Math.max(me.cursor, page.last);
      q = { after: me.cursor, app: f.app, node: f.node, limit: PAGE };
      if (page.events.length === PAGE) continue;
      // the shared reader starts at the newest seq the first follower's backlog
      // saw; a backlog read before what the shared reader has read reads on to there
      if (this.tail === null) this.tail = page.last;
      if (page.last >= this.tail) break;
    }
    const held = me.held!;
    me.held = null;
    for (const e of held) this.deliver(me, e);
    // anything committed after the backlog's last read
    this.wake();
  }

  private offer(me: Follower, e: OutpostEvent): void {
    if (me.held) me.held.push(e);
    else this.deliver(me, e);
  }

  private deliver(me: Follower, e: OutpostEvent): void {
    if (me.gone || e.seq <= me.cursor) return;
    me.cursor = e.seq;
    const f = me.f;
    if ((f.app !== undefined && e.app !== f.app) || (f.node !== undefined && e.node !== f.node) || (f.visible && !f.visible(e))) return;
    f.send(e);
  }

  private drop(me: Follower, err?: unknown): void {
    if (me.gone) return;
    me.gone = true;
    this.followers.delete(me);
    if (this.followers.size === 0) this.tail = null;
    if (err !== undefined) me.f.end(err);
  }

  /** Ends every follower (the control plane stops): their streams close now, and their clients come back elsewhere or later. */
  close(): void {
    for (const me of [...this.followers]) {
      this.drop(me);
      me.f.end();
    }
  }
}
