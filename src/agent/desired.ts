// The agent's local copy of its desired state, so it keeps (and after a
// reboot, restarts) its workloads with no control plane reachable. Written
// atomically (temp file + rename) before the assignment is applied, so what
// runs is never ahead of what is saved. It holds app specs and their env
// (secrets): the dir is the agent's alone (0700, files 0600).
import fs from 'node:fs';
import path from 'node:path';
import type { Assignment } from '../core/types.js';
import { z } from 'zod';
import { ensurePrivateDir } from '../files/private.js';
import { assignmentSchema } from '../contract/protocol.js';

/** What the file must hold: what the control plane may send, checked the same way (a file edited or damaged on the node runs nothing). */
const desiredSchema = z.object({ assignments: z.array(assignmentSchema).max(10_000), savedAt: z.number() });

export interface DesiredState {
  assignments: Assignment[];
  savedAt: number;
}

export class DesiredStore {
  private readonly file: string;
  constructor(dir: string) {
    ensurePrivateDir(dir);
    this.file = path.join(dir, 'desired.json');
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
      if (r.success) return r.data;
      const issue = r.error.issues[0]!;
      this.refused = `${issue.path.join('.')}: ${issue.message}`;
    } catch (e) {
      this.refused = `not JSON: ${(e as Error).message}`;
    }
    return null;
  }

  save(assignments: Assignment[], now = Date.now()): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify({ assignments, savedAt: now } satisfies DesiredState));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
  }
}
