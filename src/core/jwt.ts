// Workload identity tokens: ES256 JWTs (RFC 7519, 7518) the control plane
// signs for each replica and anyone holding its public key verifies. Written
// with node:crypto alone (no I/O here): the control plane signs, the hub and
// the tests verify with the same functions.
import crypto, { type KeyObject } from 'node:crypto';
import { OutpostError } from './errors.js';

export const IDENTITY_ISSUER = 'outpost';
export const IDENTITY_AUDIENCE = 'outpost';

export interface IdentityClaims {
  iss: string;
  sub: string;
  aud: string;
  app: string;
  replica: string;
  node: string;
  iat: number;
  exp: number;
}

/** A public key as a JWKS entry. */
export interface IdentityJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  kid: string;
  alg: 'ES256';
  use: 'sig';
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** The key id: the first 16 bytes of the SHA-256 of the public key's SPKI, base64url. */
export function keyIdOf(pub: KeyObject): string {
  return crypto.createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest().subarray(0, 16).toString('base64url');
}

export function jwkOf(pub: KeyObject): IdentityJwk {
  const j = pub.export({ format: 'jwk' });
  return { kty: 'EC', crv: 'P-256', x: j.x!, y: j.y!, kid: keyIdOf(pub), alg: 'ES256', use: 'sig' };
}

export function signIdentity(key: KeyObject, kid: string, claims: IdentityClaims): string {
  const input = `${b64({ alg: 'ES256', kid, typ: 'JWT' })}.${b64(claims)}`;
  // JWS wants r||s (64 bytes), not DER
  const sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

/** Does this look like a JWT (three base64url parts)? Device tokens are NAME.SECRET: two. */
export const looksLikeJwt = (t: string): boolean => /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(t);

const bad = (why: string) => new OutpostError('E_UNAUTHORIZED', `identity token refused: ${why}`);

/**
 * The claims of a token signed by one of `keys`, in date (now in epoch
 * seconds) and for the audience; E_UNAUTHORIZED saying why not.
 */
export function verifyIdentity(token: string, keys: IdentityJwk[], now: number): IdentityClaims {
  if (!looksLikeJwt(token)) throw bad('not a JWT');
  const [h, p, s] = token.split('.') as [string, string, string];
  let header: { alg?: unknown; kid?: unknown };
  let claims: IdentityClaims;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  if (header.alg !== 'ES256') throw bad(`alg ${String(header.alg)} is not ES256`);
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk) throw bad(`unknown key id ${String(header.kid)}`);
  const pub = crypto.createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, format: 'jwk' });
  if (!crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))) throw bad('bad signature');
  if (claims.iss !== IDENTITY_ISSUER || claims.aud !== IDENTITY_AUDIENCE) throw bad('wrong issuer or audience');
  if (typeof claims.exp !== 'number' || claims.exp <= now) throw bad('expired');
  if (typeof claims.app !== 'string' || typeof claims.replica !== 'string' || typeof claims.node !== 'string') throw bad('app, replica or node missing');
  return claims;
}
