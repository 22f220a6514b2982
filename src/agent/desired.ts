// The agent's local copy of its desired state, so it keeps (and after a
// reboot, restarts) its workloads with no control plane reachable. Written
// atomically (temp file + rename) before the assignment is applied, so what
// runs is never ahead of what is saved. It holds app specs and their env
// (secrets): the dir is the agent's alone (0700, files 0600).
import fs from 'node:fs';
import path from 'node:path';
import type { Assignment } from '../core/types.js';
import { ensurePrivateDir } from '../files/private.js';

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

  load(): DesiredState | null {
    try {
      const s = JSON.parse(fs.readFileSync(this.file, 'utf8')) as DesiredState;
      return Array.isArray(s.assignments) ? s : null;
    } catch {
      return null; // none yet, or unreadable: the control plane will say
    }
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
