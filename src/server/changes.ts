// Which apps changed, for long polls (`deploy --wait` follows a rollout with
// them instead of polling). Versions live in memory and start from a random
// epoch, so a version from before a restart never matches one after it.
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';

/** an event no app can be named (app names are [a-z0-9-]) */
const CLOSE = ' close';

export class AppChanges {
  private readonly epoch = randomBytes(3).toString('hex');
  private readonly counts = new Map<string, number>();
  private readonly events = new EventEmitter();

  constructor() {
    // one listener per waiting request
    this.events.setMaxListeners(0);
  }

  version(app: string): string {
    return `${this.epoch}.${this.counts.get(app) ?? 0}`;
  }

  changed(app: string): void {
    this.counts.set(app, (this.counts.get(app) ?? 0) + 1);
    this.events.emit(app);
  }

  /** The app is gone: its waiters are answered and its count forgotten (a new app of that name starts afresh). */
  removed(app: string): void {
    this.changed(app);
    this.counts.delete(app);
  }

  /** Answers every waiting long poll at once, so the server can close without waiting out their time. */
  close(): void {
    this.closed = true;
    this.events.emit(CLOSE);
  }

  private closed = false;

  /** Resolves at the app's next change, after `ms`, or when the request's connection closes. */
  next(app: string, ms: number, conn?: { once(e: 'close', f: () => void): unknown; off(e: 'close', f: () => void): unknown }): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.events.off(app, done);
        this.events.off(CLOSE, done);
        conn?.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.events.once(app, done);
      this.events.once(CLOSE, done);
      conn?.once('close', done);
    });
  }
}
