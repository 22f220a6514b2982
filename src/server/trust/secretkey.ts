// The envelope key secrets are encrypted with at the control plane: 32 random
// bytes in the data dir's secrets.key (0600, made at the first start), or a
// file the operator gives (--secrets-key-file). During a rotation the old key
// is kept beside it as secrets.key.old until the re-encrypted secrets are
// committed, so a crash in between leaves every secret readable by one of the
// two. Several instances on PostgreSQL share the key (trust/shared.ts); a
// rotation writes the shared copy in the same step (`shared`).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { OutpostError } from '../../core/errors.js';
import { KEY_BYTES, keyId } from '../../core/secretbox.js';
import { writePrivateAtomic } from '../../files/private.js';

export const SECRETS_KEY_FILE = 'secrets.key';

/** The shared copy of the key (PostgreSQL's shared_files row), when there is one. */
export interface SharedKey {
  read(): Promise<Buffer | null>;
  write(key: Buffer): Promise<void>;
}

export class KeyFile {
  readonly file: string;
  constructor(dataDir: string, operatorFile?: string | null, readonly shared: SharedKey | null = null) {
    this.file = operatorFile ? path.resolve(operatorFile) : path.join(dataDir, SECRETS_KEY_FILE);
  }

  get oldFile(): string {
    return `${this.file}.old`;
  }

  /** Makes the key when there is none (the data dir's own only: an operator's file must exist). */
  ensure(operator: boolean): void {
    if (fs.existsSync(this.file)) return;
    if (operator) throw new OutpostError('E_USAGE', `the secrets key file ${this.file} does not exist`, { path: 'secrets-key-file' });
    writeKey(this.file, crypto.randomBytes(KEY_BYTES));
  }

  /** The current key and, after a rotation that did not finish, the old one: by key id. */
  load(): { current: Buffer; all: Map<string, Buffer> } {
    const current = readKey(this.file);
    const all = new Map([[keyId(current), current]]);
    if (fs.existsSync(this.oldFile)) {
      const old = readKey(this.oldFile);
      all.set(keyId(old), old);
    }
    return { current, all };
  }

  /** Step one of a rotation: the current key kept as .old, the new one in its place (and in the shared copy). */
  async replace(next: Buffer): Promise<void> {
    writeKey(this.oldFile, readKey(this.file));
    writeKey(this.file, next);
    await this.shared?.write(next);
  }

  /** The rotation's commit failed: the old key back in place. */
  async restore(): Promise<void> {
    const old = readKey(this.oldFile);
    writeKey(this.file, old);
    await this.shared?.write(old);
    fs.rmSync(this.oldFile, { force: true });
  }

  /** The rotation committed: the old key is no longer needed. */
  forgetOld(): void {
    fs.rmSync(this.oldFile, { force: true });
  }

  /** Another instance rotated: its key from the shared copy, written here too (the next start compares the two). */
  async refresh(): Promise<Buffer | null> {
    const k = await this.shared?.read();
    if (!k || k.length !== KEY_BYTES) return null;
    writeKey(this.file, k);
    return k;
  }
}

function readKey(file: string): Buffer {
  const k = fs.readFileSync(file);
  if (k.length !== KEY_BYTES) throw new OutpostError('E_USAGE', `${file} must hold exactly ${KEY_BYTES} bytes (it holds ${k.length})`, { path: 'secrets-key-file' });
  return k;
}

/** write, fsync, rename: a crash leaves the old file or the new one, never a torn one */
function writeKey(file: string, key: Buffer): void {
  writePrivateAtomic(file, key);
}
