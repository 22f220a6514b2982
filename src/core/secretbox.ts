// Sealing and opening small values with AES-256-GCM under a 32-byte key:
// secrets at the control plane (the envelope key) and on a node (its own
// key for the desired-state file). Pure: no files, only node:crypto.
import crypto from 'node:crypto';

export interface Sealed {
  /** the key it is sealed with: keyId() of it */
  keyId: string;
  /** the 12-byte nonce, the 16-byte tag and the ciphertext, base64 */
  iv: string;
  tag: string;
  data: string;
}

export const KEY_BYTES = 32;

/** The first 16 hex characters of sha256(key): names a key without revealing it. */
export function keyId(key: Buffer): string {
  return crypto.createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** Encrypts `plain` with `aad` bound to it (a ciphertext moved to another aad does not open). */
export function seal(key: Buffer, plain: Buffer, aad: string): Sealed {
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad, 'utf8'));
  const data = Buffer.concat([c.update(plain), c.final()]);
  return { keyId: keyId(key), iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), data: data.toString('base64') };
}

/** Decrypts; throws when the key, the aad or a byte is wrong (the caller says what without the value). */
export function open(key: Buffer, s: Omit<Sealed, 'keyId'>, aad: string): Buffer {
  const d = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(s.iv, 'base64'));
  d.setAAD(Buffer.from(aad, 'utf8'));
  d.setAuthTag(Buffer.from(s.tag, 'base64'));
  return Buffer.concat([d.update(Buffer.from(s.data, 'base64')), d.final()]);
}
