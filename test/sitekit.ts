// What the site-proxy and DNS tests share: a switch file their app refuses to
// start while it exists, plain TCP listeners (site probes, ports held busy),
// and three nodes at three sites with the RTTs between them declared (one
// machine has no geography): from s1, e2 (5 ms) is nearer than e3 (20 ms).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ApiClient } from '../src/contract/client.js';
import { cli, tmpDir, waitFor } from './helpers.js';

/** A path the test app checks at start; the replicas run as nobody when the tests run as root, so its directory must be theirs to look in. */
export function switchFile(): string {
  const shared = tmpDir();
  fs.chmodSync(shared, 0o755);
  return path.join(shared, 'down');
}

/** TCP servers that accept and close; `close()` at the end of a test file. */
export class Listeners {
  private readonly servers: net.Server[] = [];
  async listen(host = '127.0.0.1', port = 0): Promise<net.Server> {
    const s = net.createServer((c) => c.end());
    this.servers.push(s);
    await new Promise<void>((r) => s.listen(port, host, r));
    return s;
  }
  close(): void {
    for (const s of this.servers) s.close();
  }
}

export const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;

export const SITE_RTT: Record<string, Record<string, number>> = { e1: { s1: 1, s2: 20, s3: 20 }, e2: { s1: 5, s2: 1, s3: 30 }, e3: { s1: 20, s2: 30, s3: 1 } };

/** Sites s1-s3 (each with a probe), the agents `start` spawns (e1-e3), all three ready, and SITE_RTT declared. */
export async function threeSites(cp: { client: ApiClient }, env: NodeJS.ProcessEnv, listeners: Listeners, start: () => void): Promise<void> {
  for (const s of ['s1', 's2', 's3']) assert.equal((await cli(['site', 'add', s, '--probe', `127.0.0.1:${portOf(await listeners.listen())}`], env)).code, 0);
  start();
  await waitFor('3 nodes', async () => (await cp.client.nodes()).filter((n) => n.state === 'ready').length === 3, 30_000);
  for (const [n, v] of Object.entries(SITE_RTT)) await cp.client.declareRtt(n, v);
}
