// Secrets Outpost issues (join tokens, node secrets, device secrets) and the
// hashes it keeps of them: sha256, compared in constant time. Secrets are at
// least 24 random bytes, so no salt or stretching is needed.
import crypto from 'node:crypto';

/** sha256 of a secret, in hex. */
export function hashSecret(secret: string): string {
  return crypto.createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A new secret (`bytes` random bytes, base64url) and its hash. */
export function newSecret(bytes = 32): { secret: string; secretHash: string } {
  const secret = crypto.randomBytes(bytes).toString('base64url');
  return { secret, secretHash: hashSecret(secret) };
}

/** Whether `secret` hashes to `secretHash`, compared in constant time. */
export function secretMatches(secretHash: string, secret: string): boolean {
  const want = Buffer.from(secretHash, 'hex');
  const got = crypto.createHash('sha256').update(secret, 'utf8').digest();
  return want.length === got.length && crypto.timingSafeEqual(want, got);
}
