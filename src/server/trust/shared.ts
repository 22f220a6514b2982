// The files every control-plane instance on one PostgreSQL database must hold
// alike: the CAs that sign node certificates and hub certificates (join
// tokens pin the CA's hash, so two CAs would cut off every agent that enrolled
// through the other), the TLS ticket keys (an agent resumes its session on any
// instance), the admin token, the envelope key of secrets, and the key that signs workload identity tokens (a token from
// any instance verifies against the one published key). The first instance makes them; the others
// take them from the store, under the initialisation lock (pgcluster.ts).
// The serving certificate stays each instance's own: it names its host.
import fs from 'node:fs';
import path from 'node:path';
import { OutpostError } from '../../core/errors.js';
import type { SharedFile } from '../store/pgcluster.js';

export const SHARED_FILES = ['admin.token', 'tls/ca.crt', 'tls/ca.key', 'tls/hub-ca.crt', 'tls/hub-ca.key', 'tls/ticket.keys', 'secrets.key', 'tls/identity.key'];

/**
 * Writes the store's shared files into the data dir, runs `init` (which makes
 * whatever is still missing), and answers the files the store does not hold
 * yet. A data dir holding a different file than the store is refused: an
 * instance with its own CA would issue certificates no other instance trusts.
 */
export async function syncShared(dataDir: string, held: SharedFile[], init: () => Promise<void>): Promise<SharedFile[]> {
  for (const f of held) {
    if (!SHARED_FILES.includes(f.name)) continue;
    const p = path.join(dataDir, f.name);
    let have: Buffer | null = null;
    try { have = fs.readFileSync(p); } catch { /* not here yet */ }
    // the envelope key changes on purpose (secret rotate-key writes the shared copy): the store's wins
    if (have && !have.equals(f.data) && f.name !== 'secrets.key') {
      throw new OutpostError('E_STORE', `${p} differs from the ${f.name} the other instances of this store share: start this instance with an empty data dir (it takes the shared one), or remove that file`);
    }
    if (!have || !have.equals(f.data)) {
      fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
      const tmp = `${p}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, f.data, { mode: f.mode });
      fs.renameSync(tmp, p);
    }
  }
  await init();
  const names = new Set(held.map((f) => f.name));
  return SHARED_FILES.filter((n) => !names.has(n) && fs.existsSync(path.join(dataDir, n))).map((name) => {
    const p = path.join(dataDir, name);
    return { name, mode: fs.statSync(p).mode & 0o777, data: fs.readFileSync(p) };
  });
}
