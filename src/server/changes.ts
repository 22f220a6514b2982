// Which apps changed, for long polls (`deploy --wait` follows a rollout with
// them instead of polling). Versions live in memory and start from a random
// epoch, so a version from before a restart never matches one after it.
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';

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

  /** Resolves at the app's next change, after `ms`, or when the request's connection closes. */
  next(app: string, ms: number, conn?: { once(e: 'close', f: () => void): unknown; off(e: 'close', f: () => void): unknown }): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.events.off(app, done);
        conn?.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.events.once(app, done);
      conn?.once('close', done);
    });
  }
}
