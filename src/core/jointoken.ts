// Join tokens. A token carries the fingerprint of the control plane's CA (as
// K3s's K10<hash>:: tokens do), so an agent that has nothing but the token
// trusts the right CA from its first connection, then the token's id and
// secret. The control plane keeps only a hash of the secret.
//
//   OP1<sha256 of the CA certificate, 64 hex>::<id>.<secret>
import { OutpostError } from './errors.js';

export interface JoinToken {
  caFingerprint: string;
  id: string;
  secret: string;
}

const RE = /^OP1([0-9a-f]{64})::([a-z0-9]{8,32})\.([A-Za-z0-9_-]{20,128})$/;

export function formatJoinToken(t: JoinToken): string {
  return `OP1${t.caFingerprint}::${t.id}.${t.secret}`;
}

export function parseJoinToken(s: string): JoinToken {
  const m = RE.exec(s.trim());
  if (!m) throw new OutpostError('E_TOKEN_INVALID', 'not an Outpost join token (OP1<CA fingerprint>::<id>.<secret>); create one with `outpost token create`', { path: 'joinToken' });
  return { caFingerprint: m[1]!, id: m[2]!, secret: m[3]! };
}

/** A duration like 30m, 24h, 7d, 90s or plain milliseconds. */
export function parseDuration(s: string, path: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(s.trim());
  if (!m) throw new OutpostError('E_INVALID', `${s} is not a duration (e.g. 30m, 24h, 7d)`, { path });
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return Math.round(Number(m[1]) * unit);
}
