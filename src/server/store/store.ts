// The control plane's store contract. Records of seven kinds, each a JSON
// document under a key, each with a revision: the store's revision counter
// after the commit that last wrote it (one counter for the whole store, as in
// etcd, so "everything since revision R" has a meaning for a watcher).
//
// Writes go in commits: all or nothing, each write optionally conditional on
// the revision the writer read (compare-and-set). A commit that loses a race
// fails whole with StoreConflict, and the writer re-decides from fresh state.
// Any backend (SQLite here; PostgreSQL on the same seam) passes
// store.contract.test.ts.
import type { AuditEntry, ModelSample } from '../../core/types.js';
import type { EventDraft, OutpostEvent } from '../../core/events.js';

export type Kind = 'nodes' | 'apps' | 'sites' | 'replicas' | 'tokens' | 'identities' | 'devices' | 'apitokens' | 'secrets';
export const KINDS: readonly Kind[] = ['nodes', 'apps', 'sites', 'replicas', 'tokens', 'identities', 'devices', 'apitokens', 'secrets'];

/** The field of each kind's documents that is its key (and SQLite's key column). */
export const KEY_FIELD: Record<Kind, 'name' | 'id'> = { nodes: 'name', apps: 'name', sites: 'name', replicas: 'id', tokens: 'id', identities: 'name', devices: 'name', apitokens: 'id', secrets: 'name' };

export interface Row<T = unknown> {
  key: string;
  /** the store revision of the commit that last wrote it (>= 1) */
  rev: number;
  doc: T;
}

export interface Write {
  kind: Kind;
  key: string;
  /** the new document, or null to delete */
  doc: object | null;
  /** the revision the writer read: 0 = must not exist; absent = unconditional */
  expect?: number;
}

export interface ListQuery {
  /** keys after this one (pagination) */
  after?: string;
  limit?: number;
  /** replicas only: of this app */
  app?: string;
  /** replicas only: on this node */
  node?: string;
}

export interface Store {
  /** the schema version the store is at (after its migrations ran) */
  readonly schemaVersion: number;
  /** the highest revision any commit produced (0 for an empty store) */
  revision(): Promise<number>;
  get<T>(kind: Kind, key: string): Promise<Row<T> | undefined>;
  /** in key order */
  list<T>(kind: Kind, q?: ListQuery): Promise<Row<T>[]>;
  /**
   * Applies every write or none; returns the new revision (the old one for an
   * empty commit). Throws StoreConflict; with a fence, StoreFenced when the
   * fence's lease is no longer held (a leader that lost its lease decides nothing).
   * `events` are appended in the same transaction, in the order given, each
   * given the next seq: commits are serialised (the revision counter), so the
   * seq order is the commit order, for every reader.
   */
  commit(writes: Write[], samples?: ModelSample[], fence?: Fence, events?: EventDraft[]): Promise<number>;
  /**
   * Stores that several control-plane instances share (PostgreSQL): what was
   * committed after revision `since`, by anyone. Absent on a store only one
   * process opens (SQLite): there is nobody else's change to hear of.
   */
  changes?(since: number): Promise<ChangeSet>;
  /** Drops history no reader needs any more (old samples, old deletions, audit entries before `auditBefore`, events before `eventsBefore`); returns rows removed. */
  compact(o?: { auditBefore?: number; eventsBefore?: number }): Promise<number>;
  /** newest first */
  listSamples(limit?: number): Promise<ModelSample[]>;
  /** Appends to the audit log (append-only: nothing updates or deletes an entry but compaction's retention). */
  audit(entries: AuditEntry[]): Promise<void>;
  /** entries at or after `since` (epoch ms), oldest first, at most `limit` (default 1,000) */
  listAudit(q?: { since?: number; limit?: number }): Promise<AuditEntry[]>;
  /** events in seq order: after a seq, or at or after a time; of one app and/or node; at most `limit` (default 1,000; 0: none, only `last`) */
  listEvents(q?: EventQuery): Promise<EventPage>;
  close(): Promise<void>;
}

/** The leader lease a write depends on: the holder and the epoch it was granted at. */
export interface Fence {
  holder: string;
  epoch: number;
}

export interface Changed {
  kind: Kind;
  key: string;
  /** the revision of the commit that wrote or deleted it */
  rev: number;
  /** null: deleted */
  doc: unknown | null;
}

export interface ChangeSet {
  /** the store's revision the set brings a reader up to */
  revision: number;
  changes: Changed[];
  /** `since` is older than the history the store still keeps: read everything again */
  reset?: boolean;
}

export interface EventQuery {
  /** events with a greater seq */
  after?: number;
  /** events at or after this time (epoch ms) */
  from?: number;
  app?: string;
  node?: string;
  limit?: number;
  /** the newest `limit` that match rather than the oldest (still in seq order); `last` is then the newest seq */
  newest?: boolean;
}

export interface EventPage {
  events: OutpostEvent[];
  /**
   * Where the next read starts (its `after`): the last event's seq when the
   * page is full, else the newest seq in the log when it was read (every
   * event up to it has been considered, matching or not). Compaction keeps
   * the newest event, so the newest seq never goes back.
   */
  last: number;
}

/** Samples kept for the start-time model (newest first); older ones are compacted away. */
export const SAMPLES_KEPT = 10_000;

export class StoreFenced extends Error {
  constructor(readonly fence: Fence) {
    super(`the leader lease of epoch ${fence.epoch} is no longer held by ${fence.holder}`);
    this.name = 'StoreFenced';
  }
}

export class StoreConflict extends Error {
  constructor(readonly kind: Kind, readonly key: string, readonly expected: number, readonly actual: number) {
    super(`${kind}/${key} is at revision ${actual}, not ${expected}: someone else wrote it`);
    this.name = 'StoreConflict';
  }
}
