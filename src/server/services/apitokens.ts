// API tokens: who calls the API, with which role and scopes. The token a
// caller holds is `opt_<id>.<secret>`; the record keeps sha256(secret) only,
// compared in constant time, and the secret is shown once. The admin token
// (admin.token in the data dir) is the record `opt_admin`: a bearer that is
// not of the `opt_ID.SECRET` form is checked against it.
import { randomBytes } from 'node:crypto';
import { OutpostError } from '../../core/errors.js';
import { hashSecret, newSecret, secretMatches } from '../../core/secret.js';
import { ROLE_NAMES, strongerThan, validatePattern, type Principal } from '../../core/capabilities.js';
import type { ApiTokenRecord, Role } from '../../core/types.js';
import type { ApiTokenView } from '../../contract/api.js';
import type { Writer } from '../writer.js';

export const ADMIN_ID = 'opt_admin';
const TOKEN_RE = /^(opt_[A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{16,128})$/;
const NAME_RE = /^[\w.@:+ -]{1,64}$/;

export const apiTokenView = ({ secretHash: _h, ...t }: ApiTokenRecord): ApiTokenView => t;

export interface ApiTokenRequest {
  name: string;
  role: Role;
  apps?: string | null;
  sites?: string | null;
  /** ms; absent: never expires (or when the creator does) */
  ttlMs?: number | null;
}

/** The token id a bearer claims, for the audit log of a refusal (never any of its secret); '-' when it names none. */
export function claimedId(bearer: string): string {
  return TOKEN_RE.exec(bearer)?.[1] ?? '-';
}

export function principalOf(r: ApiTokenRecord): Principal {
  return { id: r.id, name: r.name, role: r.role, apps: r.apps, sites: r.sites, expiresAt: r.expiresAt };
}

export class ApiTokens {
  constructor(private readonly w: Writer, private readonly now: () => number) {}

  /**
   * The admin token's record: made at the first start, its hash brought in
   * line with admin.token at every start (the file is the admin token:
   * replacing it and restarting rotates it). Several instances starting at
   * once decide from the state the writer holds; the same file gives them
   * the same record.
   */
  async ensureAdmin(adminToken: string): Promise<void> {
    const secretHash = hashSecret(adminToken);
    await this.w.run((s) => {
      const r = s.get('apitokens', ADMIN_ID);
      if (r && r.secretHash === secretHash && r.role === 'admin' && r.revokedAt === null) return { changes: [], result: undefined };
      const doc: ApiTokenRecord = { id: ADMIN_ID, name: 'admin', role: 'admin', apps: null, sites: null, secretHash, createdAt: r?.createdAt ?? this.now(), expiresAt: null, revokedAt: null, createdBy: null };
      return { changes: [{ kind: 'apitokens', key: ADMIN_ID, doc }], result: undefined };
    });
  }

  /** The caller a bearer token names, or E_UNAUTHORIZED (unknown, revoked, expired: said apart, the secret never echoed). */
  authenticate(bearer: string): Principal {
    const m = TOKEN_RE.exec(bearer);
    const id = m ? m[1]! : ADMIN_ID;
    const r = bearer ? this.w.state.get('apitokens', id) : undefined;
    if (!r || !secretMatches(r.secretHash, m ? m[2]! : bearer)) {
      throw new OutpostError('E_UNAUTHORIZED', 'missing or unknown API token: send Authorization: Bearer <token> (the CLI reads it from $OUTPOST_TOKEN or $OUTPOST_DATA_DIR/admin.token)');
    }
    if (r.revokedAt !== null) throw new OutpostError('E_UNAUTHORIZED', `API token ${r.id} (${r.name}) was revoked`);
    if (r.expiresAt !== null && this.now() >= r.expiresAt) throw new OutpostError('E_UNAUTHORIZED', `API token ${r.id} (${r.name}) expired at ${new Date(r.expiresAt).toISOString()}`);
    return principalOf(r);
  }

  /** A new token, no stronger than its creator's (E_FORBIDDEN); the token is in the answer, once. */
  async create(by: Principal, q: ApiTokenRequest): Promise<{ token: string; record: ApiTokenRecord }> {
    if (typeof q.name !== 'string' || !NAME_RE.test(q.name)) throw new OutpostError('E_INVALID', 'name must be 1-64 letters, digits, spaces or ._@:+-', { path: 'name' });
    if (!ROLE_NAMES.includes(q.role)) throw new OutpostError('E_INVALID', `role must be one of ${ROLE_NAMES.join(', ')}`, { path: 'role' });
    const apps = q.apps == null ? null : validatePattern(q.apps, 'apps');
    const sites = q.sites == null ? null : validatePattern(q.sites, 'sites');
    if (q.ttlMs != null && (!Number.isFinite(q.ttlMs) || q.ttlMs <= 0)) throw new OutpostError('E_INVALID', 'ttl must be more than 0', { path: 'ttl' });
    const now = this.now();
    // a creator that expires passes its end on to a token made without a TTL
    const expiresAt = q.ttlMs != null ? now + q.ttlMs : by.expiresAt;
    const why = strongerThan({ role: q.role, apps, sites, expiresAt }, by);
    if (why) throw new OutpostError('E_FORBIDDEN', `a token cannot create one with more rights than its own: ${why}`, { details: { capability: 'token:write' } });
    const id = `opt_${randomBytes(9).toString('base64url')}`;
    const { secret, secretHash } = newSecret(24);
    const record: ApiTokenRecord = { id, name: q.name, role: q.role, apps, sites, secretHash, createdAt: now, expiresAt, revokedAt: null, createdBy: by.id };
    await this.w.run(() => ({ changes: [{ kind: 'apitokens', key: id, doc: record }], result: undefined }));
    return { token: `${id}.${secret}`, record };
  }

  list(): ApiTokenView[] {
    return this.w.state.list('apitokens').map(apiTokenView);
  }

  /** Revokes a token (at once, on every instance once the change reaches it); the admin token cannot be (E_CONFLICT), nor one stronger than the caller's (E_FORBIDDEN). */
  async revoke(by: Principal, id: string): Promise<ApiTokenView> {
    if (id === ADMIN_ID) throw new OutpostError('E_CONFLICT', 'the admin token cannot be revoked through the API: replace admin.token in the data dir and restart to change it', { path: 'id' });
    return this.w.run((s) => {
      const t = s.get('apitokens', id);
      if (!t) throw new OutpostError('E_NOT_FOUND', `no API token with id "${id}"`, { path: 'id' });
      // when each ends does not matter to revoking: its role and scopes do
      const why = strongerThan(principalOf(t), { ...by, expiresAt: null });
      if (why) throw new OutpostError('E_FORBIDDEN', `a token cannot revoke one with more rights than its own: ${why}`, { details: { capability: 'token:write' } });
      const doc = { ...t, revokedAt: t.revokedAt ?? this.now() };
      return { changes: [{ kind: 'apitokens', key: id, doc }], result: apiTokenView(doc) };
    });
  }
}
