// The audit log: every mutating API call (and the reads of logs and backups),
// refused ones included, appended once answered. Entries decided in one turn
// of the event loop go to the store in one call: a burst of calls costs one
// write, not one each. Bodies are never kept, so no secret or token is.
import type { Logger } from 'pino';
import type { AuditEntry } from '../../core/types.js';
import type { Store } from '../store/store.js';

export class AuditLog {
  private pending: AuditEntry[] = [];
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly store: Store, private readonly log: Logger) {}

  record(e: AuditEntry): void {
    if (this.pending.push(e) === 1) setImmediate(() => void this.flush());
  }

  /** Writes what is pending; resolves when every entry recorded so far is written (or its failure logged). */
  flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    if (batch.length) {
      this.flushing = this.flushing.then(() => this.store.audit(batch)).catch((err) => {
        // the call was answered already: a lost entry is logged, whole, for the operator
        this.log.error({ err, entries: batch }, 'audit entries not written');
      });
    }
    return this.flushing;
  }

  /** oldest first; what this instance has answered is written before it reads */
  async list(q: { since?: number; limit?: number }): Promise<AuditEntry[]> {
    await this.flush();
    return this.store.listAudit(q);
  }
}
