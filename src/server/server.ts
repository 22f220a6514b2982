// Starts a control plane: store, API, agent gateway and the reconciler loop.
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { openStore } from './store.js';
import { StreamStore } from './streams.js';
import { ControlPlane } from './controlplane.js';
import { AgentGateway } from './gateway.js';
import { buildApi } from './api.js';
import { loadOrCreateToken } from './tokens.js';

export interface ServerOptions {
  dataDir: string;
  host: string;
  port: number;
  log: Logger;
  reconcileMs?: number;
  /** how long a node may be unreachable before its replicas are rescheduled */
  nodeTimeoutMs?: number;
  /** window results older than this are deleted (default 30 days) */
  streamRetentionMs?: number;
}

export interface RunningServer {
  url: string;
  adminToken: string;
  joinToken: string;
  cp: ControlPlane;
  close(): Promise<void>;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  fs.mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const adminToken = loadOrCreateToken(o.dataDir, 'admin.token');
  const joinToken = loadOrCreateToken(o.dataDir, 'join.token');
  const store = openStore(path.join(o.dataDir, 'outpost.db'));
  const cp = new ControlPlane(store, o.log);
  const streams = new StreamStore(path.join(o.dataDir, 'streams.db'));
  cp.streams = streams;
  if (o.nodeTimeoutMs !== undefined) cp.nodeTimeoutMs = o.nodeTimeoutMs;
  // no agent is connected yet: every node is unreachable until it dials in again
  for (const n of store.listNodes()) cp.setNodeState(n.name, 'unreachable');
  const gateway = new AgentGateway(cp, joinToken, o.log);
  const api = buildApi(cp, gateway, adminToken, o.log);
  gateway.attach(api.server);
  await api.listen({ host: o.host, port: o.port });
  const addr = api.server.address() as AddressInfo;
  const host = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
  const timer = setInterval(() => {
    try { cp.reconcileAll(); } catch (err) { o.log.error({ err }, 'reconcile failed'); }
  }, o.reconcileMs ?? 1000);
  const prune = () => {
    try {
      const n = streams.prune(Date.now() - (o.streamRetentionMs ?? 30 * 86_400_000));
      if (n) o.log.info({ windows: n }, 'old window results deleted');
    } catch (err) { o.log.error({ err }, 'pruning window results failed'); }
  };
  prune();
  const pruneTimer = setInterval(prune, 3600_000);
  o.log.info({ url, dataDir: o.dataDir }, 'control plane listening');
  return {
    url, adminToken, joinToken, cp,
    async close() {
      clearInterval(timer);
      clearInterval(pruneTimer);
      gateway.close();
      cp.changes.close(); // long polls answer now instead of holding the close for up to 30 s
      await api.close();
      store.close();
      cp.streams?.close();
    },
  };
}
