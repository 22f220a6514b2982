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
import type { ModelSample } from '../../core/types.js';

export type Kind = 'nodes' | 'apps' | 'sites' | 'replicas' | 'tokens' | 'identities' | 'devices';
export const KINDS: readonly Kind[] = ['nodes', 'apps', 'sites', 'replicas', 'tokens', 'identities', 'devices'];

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
  /** Applies every write or none; returns the new revision (the old one for an empty commit). Throws StoreConflict. */
  commit(writes: Write[], samples?: ModelSample[]): Promise<number>;
  /** newest first */
  listSamples(limit?: number): Promise<ModelSample[]>;
  close(): Promise<void>;
}

export class StoreConflict extends Error {
  constructor(readonly kind: Kind, readonly key: string, readonly expected: number, readonly actual: number) {
    super(`${kind}/${key} is at revision ${actual}, not ${expected}: someone else wrote it`);
    this.name = 'StoreConflict';
  }
}
