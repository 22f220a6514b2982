// The agent's local copy of its desired state, so it keeps (and after a
// reboot, restarts) its workloads with no control plane reachable. Written
// atomically (temp file + rename) before the assignment is applied, so what
// runs is never ahead of what is saved. It holds app specs and their env: the
// dir is the agent's alone (0700, files 0600). Secret values are not in it in
// the clear: they are sealed (AES-256-GCM) with secrets.key, 32 random bytes
// this node made and never sends anywhere, so an offline reboot can still
// start its workloads while a copy of the file alone reveals no secret.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Assignment } from '../core/types.js';
import { z } from 'zod';
import { ensurePrivateDir, writePrivateAtomic } from '../files/private.js';
import { assignmentSchema } from '../contract/protocol.js';
import { KEY_BYTES, open, seal } from '../core/secretbox.js';

/** What the file must hold: what the control plane may send, checked the same way (a file edited or damaged on the node runs nothing). */
const desiredSchema = z.object({
  assignments: z.array(assignmentSchema).max(10_000),
  savedAt: z.number(),
  /** every assignment's secrets, by replica id, sealed with the node's key */
  sealed: z.object({ keyId: z.string(), iv: z.string(), tag: z.string(), data: z.string() }).optional(),
});
const sealedSecrets = z.record(z.string(), assignmentSchema.shape.secrets.unwrap());
const AAD = 'desired.json';

export interface DesiredState {
  assignments: Assignment[];
  savedAt: number;
}

export class DesiredStore {
  private readonly file: string;
  private readonly keyFile: string;
  private key: Buffer | null = null;
  constructor(dir: string) {
    ensurePrivateDir(dir);
    this.file = path.join(dir, 'desired.json');
    this.keyFile = path.join(dir, 'secrets.key');
  }

  /** The node's own key, made the first time a secret is saved. */
  private nodeKey(create: boolean): Buffer | null {
    if (this.key) return this.key;
    try {
      this.key = fs.readFileSync(this.keyFile);
    } catch {
      if (!create) return null;
      const k = crypto.randomBytes(KEY_BYTES);
      const tmp = `${this.keyFile}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, k, { mode: 0o600 });
      fs.renameSync(tmp, this.keyFile);
      this.key = k;
    }
    return this.key;
  }

  /** why the last load found nothing usable in a file that exists */
  refused: string | null = null;

  load(): DesiredState | null {
    let raw: string;
    try {
      raw = fs.readFileSync(this.file, 'utf8');
    } catch {
      return null; // none yet: the control plane will say
    }
    try {
      const r = desiredSchema.safeParse(JSON.parse(raw));
      if (r.success) return this.unseal(r.data);
      const issue = r.error.issues[0]!;
      this.refused = `${issue.path.join('.')}: ${issue.message}`;
    } catch (e) {
      this.refused = `not JSON: ${(e as Error).message}`;
    }
    return null;
  }

  /** The secrets put back into their assignments; null (refused) when they do not open with this node's key. */
  private unseal(d: z.infer<typeof desiredSchema>): DesiredState | null {
    if (!d.sealed) return { assignments: d.assignments, savedAt: d.savedAt };
    const key = this.nodeKey(false);
    try {
      if (!key) throw new Error('no secrets.key');
      const secrets = sealedSecrets.parse(JSON.parse(open(key, d.sealed, AAD).toString('utf8')));
      return { assignments: d.assignments.map((a) => (secrets[a.id] ? { ...a, secrets: secrets[a.id] } : a)), savedAt: d.savedAt };
    } catch {
      this.refused = 'sealed: the secrets do not open with this node\'s secrets.key';
      return null;
    }
  }

  save(assignments: Assignment[], now = Date.now()): void {
    const secrets: Record<string, unknown> = {};
    for (const a of assignments) if (a.secrets?.length) secrets[a.id] = a.secrets;
    const sealed = Object.keys(secrets).length > 0 ? seal(this.nodeKey(true)!, Buffer.from(JSON.stringify(secrets)), AAD) : undefined;
    const bare = assignments.map(({ secrets: _s, ...a }) => a);
    writePrivateAtomic(this.file, JSON.stringify({ assignments: bare, savedAt: now, ...(sealed ? { sealed } : {}) }));
  }
}
