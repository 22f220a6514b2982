// Join tokens with a life cycle: a TTL, a number of uses, an optional site and
// labels every node enrolled with it gets, and revocation. The secret is shown
// once, at creation; the store keeps its sha256.
import { randomBytes } from 'node:crypto';
import { newSecret, secretMatches } from '../../core/secret.js';
import { OutpostError } from '../../core/errors.js';
import { NAME_RE } from '../../core/names.js';
import { formatJoinToken, type JoinToken } from '../../core/jointoken.js';
import type { JoinTokenRecord } from '../../core/types.js';
import type { State } from '../state.js';
import type { Writer } from '../writer.js';

export interface TokenRequest {
  /** ms; null: never expires (only for a shared token the operator asks for) */
  ttlMs: number | null;
  uses: number | null;
  site?: string | null;
  labels?: Record<string, string>;
  note?: string;
}

/** Longest TTL a token may have unless it is the shared one (Nomad caps join tokens at 30 min; fleets enrol in batches). */
export const MAX_TTL_MS = 7 * 86_400_000;

export class JoinTokens {
  /** `allowShared`: a token with no TTL (the shared one) is taken only while the operator asks for it */
  constructor(private readonly w: Writer, private readonly fingerprint: () => string, private readonly now: () => number, private readonly allowShared = false) {}

  async create(r: TokenRequest, id = randomBytes(6).toString('hex')): Promise<{ token: string; record: JoinTokenRecord }> {
    if (r.ttlMs !== null && (!Number.isFinite(r.ttlMs) || r.ttlMs <= 0 || r.ttlMs > MAX_TTL_MS)) {
      throw new OutpostError('E_INVALID', `ttl must be more than 0 and at most ${MAX_TTL_MS / 86_400_000} days`, { path: 'ttlMs' });
    }
    if (r.uses !== null && (!Number.isInteger(r.uses) || r.uses < 1)) throw new OutpostError('E_INVALID', 'uses must be a whole number of at least 1', { path: 'uses' });
    if (r.site && !NAME_RE.test(r.site)) throw new OutpostError('E_INVALID', 'site must be [a-z0-9-], 1-63 characters', { path: 'site' });
    for (const [k, v] of Object.entries(r.labels ?? {})) {
      if (!/^[a-zA-Z0-9._/-]{1,63}$/.test(k) || typeof v !== 'string' || v.length > 63) throw new OutpostError('E_INVALID', `label ${k}=${v}: keys [a-zA-Z0-9._/-], values up to 63 characters`, { path: `labels.${k}` });
    }
    const { secret, secretHash } = newSecret(24);
    const record: JoinTokenRecord = {
      id, secretHash, createdAt: this.now(), expiresAt: r.ttlMs === null ? null : this.now() + r.ttlMs,
      uses: r.uses, used: 0, site: r.site ?? null, labels: r.labels ?? {}, note: (r.note ?? '').slice(0, 200), revokedAt: null,
    };
    await this.w.run(() => ({ changes: [{ kind: 'tokens', key: id, doc: record }], result: undefined }));
    return { token: formatJoinToken({ caFingerprint: this.fingerprint(), id, secret }), record };
  }

  list(): JoinTokenRecord[] {
    return this.w.state.list('tokens');
  }

  async revoke(id: string): Promise<JoinTokenRecord> {
    return this.w.run((s) => {
      const t = s.get('tokens', id);
      if (!t) throw new OutpostError('E_NOT_FOUND', `no join token with id "${id}"`, { path: 'id' });
      const doc = { ...t, revokedAt: t.revokedAt ?? this.now() };
      return { changes: [{ kind: 'tokens', key: id, doc }], result: doc };
    });
  }

  /** Why a token cannot be used now, or null when it can (read-only: enrolment checks before it signs). */
  refusal(s: State, t: JoinToken): string | null {
    if (t.caFingerprint !== this.fingerprint()) return 'the token names another CA than this control plane\'s (a token of another control plane, or the CA changed)';
    const r = s.get('tokens', t.id);
    if (!r || !secretMatches(r.secretHash, t.secret)) return 'unknown join token';
    if (r.revokedAt !== null) return `join token ${r.id} was revoked`;
    if (r.expiresAt === null && !this.allowShared) return 'the shared join token is off (the control plane runs without --shared-join-token)';
    if (r.expiresAt !== null && this.now() >= r.expiresAt) return `join token ${r.id} expired at ${new Date(r.expiresAt).toISOString()}`;
    if (r.uses !== null && r.used >= r.uses) return `join token ${r.id} has no uses left (${r.uses} allowed)`;
    return null;
  }
}
