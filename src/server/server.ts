// Starts a control plane process: store, state, services, API, agent gateway,
// and the once-a-second tick (node-loss clocks, rollout deadlines).
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { openSqliteStore } from './store/sqlite.js';
import { StreamStore } from './streams.js';
import { openControlPlane, type ControlPlane } from './controlplane.js';
import { AgentGateway } from './gateway.js';
import { buildApi } from './http.js';
import { loadOrCreateToken } from './tokens.js';
import type { AdmissionOptions } from './admission.js';

export interface ServerOptions {
  dataDir: string;
  host: string;
  port: number;
  log: Logger;
  /** how often node-loss clocks and rollout deadlines are checked */
  reconcileMs?: number;
  /** how long a node may be unreachable before its replicas are rescheduled */
  nodeTimeoutMs?: number;
  /** window results older than this are deleted (default 30 days) */
  streamRetentionMs?: number;
  /** agent handshakes admitted per second, and at once */
  admission?: AdmissionOptions;
}

export interface RunningServer {
  url: string;
  adminToken: string;
  joinToken: string;
  cp: ControlPlane;
  gateway: AgentGateway;
  close(): Promise<void>;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  fs.mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const adminToken = loadOrCreateToken(o.dataDir, 'admin.token');
  const joinToken = loadOrCreateToken(o.dataDir, 'join.token');
  const store = openSqliteStore(path.join(o.dataDir, 'outpost.db'));
  const streams = new StreamStore(path.join(o.dataDir, 'streams.db'));
  const cp = await openControlPlane({ store, log: o.log, streams, loss: o.nodeTimeoutMs !== undefined ? { timeoutMs: o.nodeTimeoutMs } : {} });
  const gateway = new AgentGateway(cp, joinToken, o.log, { admission: o.admission });
  const api = buildApi(cp, gateway, adminToken, o.log);
  gateway.attach(api.server);
  await api.listen({ host: o.host, port: o.port });
  const addr = api.server.address() as AddressInfo;
  const host = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
  const timer = setInterval(() => {
    try { cp.apps.tick(); } catch (err) { o.log.error({ err }, 'reconcile tick failed'); }
  }, o.reconcileMs ?? 1000);
  const prune = () => {
    try {
      const n = streams.prune(Date.now() - (o.streamRetentionMs ?? 30 * 86_400_000));
      if (n) o.log.info({ windows: n }, 'old window results deleted');
    } catch (err) { o.log.error({ err }, 'pruning window results failed'); }
  };
  prune();
  const pruneTimer = setInterval(prune, 3600_000);
  o.log.info({ url, dataDir: o.dataDir, schema: store.schemaVersion }, 'control plane listening');
  return {
    url, adminToken, joinToken, cp, gateway,
    async close() {
      clearInterval(timer);
      clearInterval(pruneTimer);
      gateway.close();
      cp.changes.close(); // long polls answer now instead of holding the close for up to 30 s
      await api.close();
      await cp.writer.flush();
      await store.close();
      streams.close();
    },
  };
}
