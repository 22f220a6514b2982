// Config files on the node: an app's `configs` written by the agent, one
// directory per replica (<data>/configs/<replica id>/<name>), each file 0444
// and bind-mounted read-only where a container's `volumes` entry asks. They
// are written afresh for every start of the replica and removed with it.
import fs from 'node:fs';
import path from 'node:path';
import type { AppSpec } from '../core/manifest.js';

export class ConfigFiles {
  constructor(readonly dir: string) {}

  /** Writes the replica's configs (afresh) and answers name -> file. */
  write(replicaId: string, configs: AppSpec['configs']): Record<string, string> {
    const d = this.replicaDir(replicaId);
    fs.rmSync(d, { recursive: true, force: true });
    // only the engine's bind mount reaches the files: the directories stay the agent's
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    const out: Record<string, string> = {};
    for (const [name, c] of Object.entries(configs)) {
      const file = path.join(d, name);
      fs.writeFileSync(file, c.content ?? '', { mode: 0o444 });
      fs.chmodSync(file, 0o444);
      out[name] = file;
    }
    return out;
  }

  remove(replicaId: string): void {
    fs.rmSync(this.replicaDir(replicaId), { recursive: true, force: true });
  }

  /** Removes the directories of replicas that are not in `keep` (left from before a restart). */
  prune(keep: Set<string>): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    const wanted = new Set([...keep].map(safe));
    for (const n of names) if (!wanted.has(n)) fs.rmSync(path.join(this.dir, n), { recursive: true, force: true });
  }

  private replicaDir(replicaId: string): string {
    return path.join(this.dir, safe(replicaId));
  }
}

/** A replica id as one path segment. */
function safe(id: string): string {
  return id.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^\.+/, '_');
}
