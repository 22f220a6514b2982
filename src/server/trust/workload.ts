// The key that signs workload identity tokens: ECDSA P-256, made once in the
// data dir (tls/identity.key, 0600) and shared by every instance of a store
// (SHARED_FILES), so a token any instance signed verifies against the one
// published key (GET /v1/identity/keys).
import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { IDENTITY_AUDIENCE, IDENTITY_ISSUER, jwkOf, signIdentity, type IdentityJwk } from '../../core/jwt.js';

export const IDENTITY_KEY_FILE = 'tls/identity.key';
/** a token's life: an hour; the agent asks again at half of it */
export const IDENTITY_TTL_S = 3600;

/** Makes the signing key when the data dir has none. */
export function ensureIdentityKey(dataDir: string): void {
  const p = path.join(dataDir, IDENTITY_KEY_FILE);
  if (fs.existsSync(p)) return;
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
  const tmp = `${p}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  fs.renameSync(tmp, p);
}

export class WorkloadSigner {
  private readonly key: KeyObject;
  readonly jwk: IdentityJwk;
  constructor(dataDir: string, private readonly ttlS = IDENTITY_TTL_S) {
    this.key = crypto.createPrivateKey(fs.readFileSync(path.join(dataDir, IDENTITY_KEY_FILE)));
    this.jwk = jwkOf(crypto.createPublicKey(this.key));
  }

  sign(who: { app: string; replica: string; node: string }, nowMs = Date.now()): string {
    const iat = Math.floor(nowMs / 1000);
    return signIdentity(this.key, this.jwk.kid, {
      iss: IDENTITY_ISSUER, sub: `replica:${who.replica}`, aud: IDENTITY_AUDIENCE, app: who.app, replica: who.replica, node: who.node, iat, exp: iat + this.ttlS,
    });
  }

  jwks(): { keys: IdentityJwk[] } {
    return { keys: [this.jwk] };
  }
}
