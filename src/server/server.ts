// Starts a control plane process: store, state, services, API, agent gateway,
// and the once-a-second tick (node-loss clocks, rollout deadlines).
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { openSqliteStore } from './store/sqlite.js';
import { openPostgresStore, redactUrl } from './store/postgres.js';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { StreamStore, type WindowStore } from './streams.js';
import { PgWindowStore } from './streams-pg.js';
import { PgDemandShare } from './demand-pg.js';
import { Cluster, DEFAULT_TIMING, soloStatus, type ClusterTiming } from './cluster.js';
import { PgCoordination } from './store/pgcluster.js';
import { syncShared } from './trust/shared.js';
import { WorkloadSigner, ensureIdentityKey } from './trust/workload.js';
import { openControlPlane, type ControlPlane } from './controlplane.js';
import { AgentGateway, type GatewayOptions } from './gateway.js';
import { buildApi } from './http.js';
import { execUpgrades } from './exec.js';
import { loadOrCreateToken } from './tokens.js';
import type { AdmissionOptions } from './admission.js';
import { openTls, type TlsMaterial, type TlsOptions } from './trust/authority.js';
import type { TrustPolicy } from './services/identities.js';
import type { TokenRequest } from './services/tokens.js';
import { parseJoinToken } from '../core/jointoken.js';
import { ensurePrivateDir } from '../files/private.js';
import { KeyFile, SECRETS_KEY_FILE, type SharedKey } from './trust/secretkey.js';
import { ServerMetrics } from './metrics.js';
import { AUTOPILOT_TICK_MS } from './services/autopilot.js';
import { serveMetrics, type MetricsListener } from '../metrics/registry.js';

export interface ServerOptions {
  dataDir: string;
  /** a postgres:// URL; none: the SQLite file outpost.db in the data dir */
  store?: string;
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
  /** TLS settings (the default: our own CA and serving certificate); false: plain HTTP (--insecure) */
  tls?: TlsOptions | false;
  /** node certificate lifetime, approval of new nodes, re-enrolment with a node's key */
  trust?: Partial<TrustPolicy>;
  /** keep a join token that never expires in join.token (only when the operator asks) */
  sharedJoinToken?: boolean;
  /** messages per agent connection */
  messageRate?: GatewayOptions['messageRate'];
  /** several instances on PostgreSQL: the leader lease's length and the heartbeat */
  cluster?: Partial<ClusterTiming>;
  /** how often window results are pruned and the store's history compacted (default 10 min) */
  compactMs?: number;
  /** the envelope key of secrets in a file the operator keeps (default: secrets.key in the data dir, made at the first start) */
  secretsKeyFile?: string;
  /** audit entries older than this are deleted (default 90 days) */
  auditRetentionMs?: number;
  /** GET /metrics in plain HTTP without a token here too (checked by the caller: checkMetricsListen) */
  metricsListen?: { host: string; port: number } | null;
  /** events older than this are deleted (default 30 days; the newest is always kept) */
  eventRetentionMs?: number;
}

export interface RunningServer {
  url: string;
  adminToken: string;
  /** several instances on PostgreSQL: the lease, the heartbeat, the change feed (null on SQLite) */
  cluster: Cluster | null;
  /** the shared join token, when asked for (sharedJoinToken) */
  joinToken: string | null;
  /** PEM of the CA clients trust for this server (null without TLS) */
  caPem: string | null;
  /** A join token (`outpost token create`). */
  createJoinToken(r?: Partial<TokenRequest>): Promise<string>;
  cp: ControlPlane;
  gateway: AgentGateway;
  /** every API route, `METHOD /path` as declared (the capability table must name each) */
  routes: string[];
  /** the plain metrics listener's URL (--metrics-listen), or null */
  metricsUrl: string | null;
  close(): Promise<void>;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  fs.mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const pgStore = o.store ? await openPostgresStore(o.store) : null;
  const store = pgStore ?? openSqliteStore(path.join(o.dataDir, 'outpost.db'));
  let url = '';
  let authority!: TlsMaterial;
  let adminToken!: string;
  // the CA exists either way (it signs node certificates, and join tokens carry its
  // fingerprint); without TLS only the listener is plain
  const init = async () => {
    authority = await openTls(o.dataDir, o.host, o.tls === false ? {} : o.tls);
    adminToken = loadOrCreateToken(o.dataDir, 'admin.token');
    secretsKey.ensure(Boolean(o.secretsKeyFile));
    ensureIdentityKey(o.dataDir);
  };
  const secretsKey = new KeyFile(o.dataDir, o.secretsKeyFile, pgStore && !o.secretsKeyFile ? sharedKey(pgStore.pool) : null);
  let cluster: Cluster | null = null;
  if (pgStore) {
    // several instances may share this store: the CAs and the admin token are made
    // once, by the first, under a lock, and every other instance takes them
    const coord = new PgCoordination(pgStore, `${os.hostname()}-${randomBytes(3).toString('hex')}`);
    await coord.initialise((held) => syncShared(o.dataDir, held, init));
    cluster = new Cluster(pgStore, coord, o.log, () => url, { ...DEFAULT_TIMING, ...o.cluster });
  } else {
    await init();
  }
  const tls = o.tls === false ? null : authority;
  if (!tls) o.log.warn('TLS is off (--insecure): tokens, node secrets and assignments cross the network in plain text; use this only on a closed network or behind a TLS proxy');
  // window results: streams.db in the data dir, or the shared database
  const streams: WindowStore = pgStore ? new PgWindowStore(pgStore.pool) : new StreamStore(path.join(o.dataDir, 'streams.db'));
  // the feed of others' changes starts from before the load: nothing committed meanwhile is missed
  const loadedAt = await store.revision();
  const cp = await openControlPlane({
    store, log: o.log, streams, loss: o.nodeTimeoutMs !== undefined ? { timeoutMs: o.nodeTimeoutMs } : {},
    authority, trust: { ...o.trust, insecure: !tls }, sharedJoinToken: o.sharedJoinToken, cluster: cluster ?? undefined, secretsKey,
    workload: new WorkloadSigner(o.dataDir),
  });
  // the site proxies' demand windows, shared between the instances (each agent reports to the one it is connected to)
  if (pgStore && cluster) cp.demand.shareWith(new PgDemandShare(pgStore.pool, cluster.id));
  // the admin token is the first API token: its record follows admin.token
  await cp.apitokens.ensureAdmin(adminToken);
  const joinToken = o.sharedJoinToken ? await sharedToken(o.dataDir, cp) : null;
  // the data dir holds the CA's key, the admin token and the store: owner only, enforced at every start
  ensurePrivateDir(o.dataDir);
  const gateway = new AgentGateway(cp, o.log, { admission: o.admission, insecure: !tls, messageRate: o.messageRate });
  const startedAt = new Date().toISOString();
  const status = async () => (cluster ? cluster.status() : soloStatus(await store.revision(), { url, agents: gateway.connected, startedAt }));
  const routes: string[] = [];
  const metrics = new ServerMetrics(cp, gateway);
  const api = buildApi(cp, gateway, o.log, tls, status, { dataDir: o.dataDir, store: o.store ? 'postgres' : 'sqlite' }, routes, metrics);
  gateway.attach(api.server, execUpgrades(api));
  await api.listen({ host: o.host, port: o.port });
  const addr = api.server.address() as AddressInfo;
  const host = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
  let metricsListener: MetricsListener | null = null;
  if (o.metricsListen) {
    metricsListener = await serveMetrics(() => metrics.render(), o.metricsListen).catch(async (e) => { await api.close(); throw e; });
    o.log.info({ url: metricsListener.url }, 'metrics listening (plain HTTP, no token)');
  }
  cluster?.run(cp, gateway, loadedAt);
  const leading = () => !cluster || cluster.leading;
  let sharing = false;
  const demandTimer = pgStore ? setInterval(() => {
    if (sharing) return;
    sharing = true;
    void cp.demand.sync(leading()).finally(() => { sharing = false; });
  }, 1000) : null;
  const timer = setInterval(() => {
    // the reconciler's clock runs on the leader only (every instance when there is one)
    try { if (leading()) cp.apps.tick(); } catch (err) { o.log.error({ err }, 'reconcile tick failed'); }
  }, o.reconcileMs ?? 1000);
  const autopilotTimer = setInterval(() => {
    if (leading()) void cp.autopilot.tick();
  }, AUTOPILOT_TICK_MS);
  const prune = async () => {
    if (!leading()) return;
    try {
      const n = await streams.prune(Date.now() - (o.streamRetentionMs ?? 30 * 86_400_000));
      if (n) o.log.info({ windows: n }, 'old window results deleted');
      const c = await store.compact({ auditBefore: Date.now() - (o.auditRetentionMs ?? 90 * 86_400_000), eventsBefore: Date.now() - (o.eventRetentionMs ?? 30 * 86_400_000) });
      if (c) o.log.info({ rows: c }, 'store history compacted');
    } catch (err) { o.log.error({ err }, 'pruning window results or compacting the store failed'); }
  };
  void prune();
  const pruneTimer = setInterval(() => void prune(), o.compactMs ?? 600_000);
  // the serving certificate is re-issued while the process runs too (a year-long uptime must not end in a lockout)
  const certTimer = tls && !(o.tls && o.tls.certFile) ? setInterval(() => {
    openTls(o.dataDir, o.host, o.tls || {}).then((t) => {
      if (t.cert === tls.cert) return;
      (api.server as unknown as import('node:tls').Server).setSecureContext({ key: t.key, cert: t.cert, ca: [t.ca.certPem] });
      tls.cert = t.cert;
      o.log.info('serving certificate renewed');
    }).catch((err) => o.log.error({ err }, 'renewing the serving certificate failed'));
  }, 86_400_000) : null;
  o.log.info({ url, dataDir: o.dataDir, store: o.store ? redactUrl(o.store) : 'sqlite', schema: store.schemaVersion }, 'control plane listening');
  o.log.info({ url: `${url}/ui/` }, 'dashboard (sign in with an API token)');
  return {
    url, adminToken, joinToken, cp, gateway, cluster, routes, caPem: tls?.trustPem ?? null, metricsUrl: metricsListener?.url ?? null,
    async createJoinToken(r = {}) {
      return (await cp.tokens.create({ ttlMs: 3_600_000, uses: null, ...r })).token;
    },
    async close() {
      clearInterval(timer);
      clearInterval(autopilotTimer);
      clearInterval(pruneTimer);
      if (demandTimer) clearInterval(demandTimer);
      if (certTimer) clearInterval(certTimer);
      gateway.close();
      cp.drains.close();
      await metricsListener?.close();
      cp.changes.close(); // long polls answer now instead of holding the close for up to 30 s
      cp.events.close(); // so do event streams (their clients come back with their last seq)
      await api.close();
      await cp.audit.flush();
      await cp.writer.close();
      await cluster?.close();
      await streams.close();
      await store.close();
    },
  };
}

/**
 * The join token an operator asked to share between nodes (--shared-join-token):
 * no TTL, no use limit, kept in join.token (0600) so it survives restarts.
 * Without the flag that file is ignored, and its token refused.
 */
async function sharedToken(dataDir: string, cp: ControlPlane): Promise<string> {
  const p = path.join(dataDir, 'join.token');
  try {
    const t = fs.readFileSync(p, 'utf8').trim();
    const parsed = parseJoinToken(t);
    if (!cp.tokens.refusal(cp.state, parsed)) return t;
  } catch { /* none yet, or one of an older release: make one */ }
  const { token } = await cp.tokens.create({ ttlMs: null, uses: null, note: 'shared (--shared-join-token)' });
  fs.writeFileSync(p, token + '\n', { mode: 0o600 });
  return token;
}

/** The envelope key's copy in the shared_files table several instances share. */
function sharedKey(pool: import('pg').Pool): SharedKey {
  return {
    async read() {
      return (await pool.query<{ data: Buffer }>('SELECT data FROM shared_files WHERE name = $1', [SECRETS_KEY_FILE])).rows[0]?.data ?? null;
    },
    async write(key) {
      await pool.query('INSERT INTO shared_files (name, mode, data) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data', [SECRETS_KEY_FILE, 0o600, key]);
    },
  };
}
