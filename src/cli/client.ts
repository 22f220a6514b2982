// The CLI's client of the control plane: the typed API client
// (src/contract/client.ts), pointed at OUTPOST_SERVER (one URL, or several
// instances' comma-separated) with the admin token from OUTPOST_TOKEN or the
// data dir.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OutpostError } from '../core/errors.js';
import { ApiClient } from '../contract/client.js';
import { readEnv } from '../env.js';
import { serverUrlsKind } from '../core/settings.js';

export { ApiClient, readAll } from '../contract/client.js';

export function dataDir(flag?: string): string {
  return path.resolve(flag ?? readEnv('OUTPOST_DATA_DIR') ?? path.join(os.homedir(), '.outpost'));
}

/** The CA to trust for an https:// control plane: OUTPOST_CA, or ca.crt in the data dir (null: the system's CAs). */
export function trustedCa(): string | null {
  const file = readEnv('OUTPOST_CA') ?? path.join(dataDir(), 'ca.crt');
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (readEnv('OUTPOST_CA')) throw new OutpostError('E_USAGE', `OUTPOST_CA ${file}: ${(e as Error).message}`);
    return null;
  }
}

/** The client as the environment configures it: OUTPOST_SERVER (one URL, or several instances' comma-separated), OUTPOST_TOKEN or $OUTPOST_DATA_DIR/admin.token, OUTPOST_CA or $OUTPOST_DATA_DIR/ca.crt. */
export function clientFromEnv(): ApiClient {
  const raw = readEnv('OUTPOST_SERVER') || 'https://127.0.0.1:7070';
  const servers = serverUrlsKind.parse(raw);
  if (!servers) throw new OutpostError('E_USAGE', `OUTPOST_SERVER=${raw}: must be ${serverUrlsKind.want}`, { path: 'OUTPOST_SERVER' });
  let token = readEnv('OUTPOST_TOKEN');
  if (!token) {
    const file = path.join(dataDir(), 'admin.token');
    try {
      token = fs.readFileSync(file, 'utf8').trim();
    } catch {
      throw new OutpostError('E_UNAUTHORIZED', `no API token: set OUTPOST_TOKEN, or OUTPOST_DATA_DIR to the control plane's data dir (looked for ${file})`);
    }
  }
  return new ApiClient(servers, token, servers[0]!.startsWith('https:') ? trustedCa() : null);
}
