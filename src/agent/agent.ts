// The edge agent: dials out to the control plane over one WebSocket, registers
// its node, applies the assignment set it receives (adopting instances it
// already runs, removing labelled ones nobody wants), and reports status,
// timings and logs up the same connection. It reconnects with back-off.
//
// Given several control-plane URLs (instances of one control plane), it keeps
// to the one it is connected to: after a drop it dials that one again first,
// and an attempt that fails there (unreachable, refused, a certificate that
// does not verify: logged, not fatal) makes the next attempt go to the next URL.
import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import type { Logger } from 'pino';
import { AGENT_FEATURES, AGENT_PATH, NODE_HEADER, RETRY_HEADER, SUBPROTOCOL, parseServerMessage, type AgentToServer, type ServerToAgent } from '../contract/protocol.js';
import type { Assignment, NodeInfo, ReplicaStatus } from '../core/types.js';
import { OutpostError } from '../core/errors.js';
import type { EnsureResult, PullProgress, RuntimeDriver } from './drivers/driver.js';
import { ReplicaRunner } from './runner.js';
import { machine } from './sysinfo.js';
import { allowedDevices, NO_POLICY, policyRefusal, type NodePolicy } from './policy.js';
import { probeSites } from './probe.js';
import { StageTracker } from './stages.js';
import type { SiteRecord } from '../core/types.js';
import { DesiredStore } from './desired.js';
import { SecretFiles } from './secrets.js';
import { ConfigFiles } from './configs.js';
import { imagesOf } from '../core/containers.js';
import { IdentityTokens } from './workload.js';
import { gcPlan } from '../core/disk.js';
import { hasImage } from '../core/images.js';
import type { StreamSpec } from '../core/pipeline.js';
import type { RunningHub } from '../hub/start.js';
import { Uplink } from './uplink.js';
import { ExecSessions } from './exec.js';
import { LogPacer } from './log-pacer.js';
import { NodeIdentityStore, type Credentials } from './identity.js';
import type { ServerUrls } from '../contract/client.js';
import { SessionCache } from '../trust/session.js';
import { SiteProxy } from './proxy/proxy.js';
import { SavedRoutes } from './proxy/saved.js';
import { DemandReporter } from './proxy/reports.js';
import type { ProxyListener } from '../core/types.js';
import { containersOf } from '../core/containers.js';

export interface AgentOptions {
  /** the control plane's URL, or its instances' (all http:// or all https://) */
  server: string | readonly string[];
  /** needed to enrol (the first time, or when re-enrolment with the node's key is refused) */
  joinToken: string | null;
  /** where the node's key, certificate and trusted CA are kept (<dir>/identity) */
  identityDir: string;
  name: string;
  site: string | null;
  labels: Record<string, string>;
  driver: RuntimeDriver;
  /** address published ports bind to */
  bindHost: string;
  /** address clients use to reach this node */
  advertise: string;
  log: Logger;
  version?: string;
  /** how often RTTs to sites are re-measured (also on every change of the site list) */
  probeIntervalMs?: number;
  /** how often apps' per-item stage costs are read */
  stagesIntervalMs?: number;
  /** how often the image inventory is re-read (images also go away by hand or GC) */
  inventoryIntervalMs?: number;
  /** where the desired state is kept locally; without it the agent depends on the control plane to start work */
  stateDir?: string;
  /** how often unused images are garbage-collected when the disk is filling */
  gcIntervalMs?: number;
  /** with saved state, how long to wait for a silent control plane before starting it alone (a refusal starts it at once) */
  offlineGraceMs?: number;
  /** the node's data hub (started beside the agent), and the streams its own config declares */
  hub?: RunningHub | null;
  hubStreams?: Record<string, StreamSpec>;
  /**
   * the names and addresses devices reach the hub at: the hub's serving
   * certificate for them is asked for with the node's, and served (HTTPS and
   * MQTT over TLS) from when it arrives. Null: the hub serves what it started with.
   */
  hubNames?: string[] | null;
  /** what replicas may reach of this node (devices, host paths, privileges); none: nothing */
  policy?: NodePolicy;
  /** run the site proxy for exposed apps (`--proxy`; off: the control plane sends this node no route tables) */
  proxy?: boolean;
  /** the site proxy's counting window, ms: each is reported as it closes (default 10 s) */
  demandWindowMs?: number;
  /** the site proxy's answer limit (504 past it) and spliced connections' idle limit, ms (src/core/proxy-limits.ts) */
  proxyResponseTimeoutMs?: number;
  proxyIdleTimeoutMs?: number;
}

const RECONNECT_MIN_MS = 250;
/** the control plane's certificates start this long before they are issued (clock skew) */
const BACKDATE_MS = 60_000;
const RECONNECT_MAX_MS = 10_000;
/** no ping from the control plane for this long: the link is dead even if the socket says otherwise */
const SILENCE_MS = 20_000;

export class Agent extends EventEmitter {
  private ws: WebSocket | null = null;
  private closed = false;
  private readonly runners = new Map<string, ReplicaRunner>();
  private readonly pulls = new Map<string, Promise<EnsureResult>>();
  private readonly logCancels = new Map<string, () => void>();
  private readonly logPacer = new LogPacer();
  private applying: Promise<void> = Promise.resolve();
  private reconnectTimer: NodeJS.Timeout | null = null;
  private silenceTimer: NodeJS.Timeout | null = null;
  private backoff = RECONNECT_MIN_MS;
  private sites: SiteRecord[] = [];
  private probeTimer: NodeJS.Timeout | null = null;
  private probing: Promise<void> | null = null;
  private stagesTimer: NodeJS.Timeout | null = null;
  private readonly stages = new StageTracker();
  private inventoryTimer: NodeJS.Timeout | null = null;
  private gcTimer: NodeJS.Timeout | null = null;
  private readonly desired: DesiredStore | null;
  /** secret files of this node's replicas, on a tmpfs */
  private readonly secretFiles: SecretFiles;
  /** config files of this node's replicas, in the data dir */
  private readonly configFiles: ConfigFiles;
  private readonly workload: IdentityTokens;
  /** what the control plane said it takes beyond the major's first messages */
  private features = new Set<string>();
  private lastInventory = '';
  connected = false;
  /** the control plane has sent assignments since this agent started */
  private assigned = false;
  /** the last RTTs measured, site -> ms */
  rttMs: Record<string, number> = {};
  private readonly rttHistory = new Map<string, number[]>();

  constructor(readonly o: AgentOptions) {
    super();
    this.desired = o.stateDir ? new DesiredStore(o.stateDir) : null;
    this.secretFiles = new SecretFiles(o.name);
    this.configFiles = new ConfigFiles(o.stateDir ? path.join(o.stateDir, 'configs') : path.join(os.tmpdir(), `outpost-configs-${o.name}`));
    // identity tokens are asked for only of a control plane that takes the message
    this.workload = new IdentityTokens(this.secretFiles.dir, (m) => this.features.has('identity') && this.send(m), o.log);
    this.identity = new NodeIdentityStore(o.identityDir, o.name, o.server, o.joinToken, o.hub ? o.hubNames ?? null : null);
    this.servers = this.identity.servers;
    this.uplink = o.hub ? new Uplink(o.hub.hub, (m) => this.send(m), () => this.connected) : null;
    this.siteProxy = o.proxy ? new SiteProxy({
      host: o.bindHost, node: o.name, log: o.log,
      // both only to a control plane that takes them (its welcome lists them)
      ack: (seq, busy) => { if (this.features.has('routes.ack')) this.send({ type: 'routes.ack', seq, busy }); },
      changed: (listeners) => this.reportProxy(listeners),
      windowMs: o.demandWindowMs,
      responseMs: o.proxyResponseTimeoutMs,
      idleMs: o.proxyIdleTimeoutMs,
    }) : null;
    this.demand = this.siteProxy ? new DemandReporter(this.siteProxy.counters, (m) => this.send(m), () => this.connected && this.features.has('demand')) : null;
    this.savedRoutes = this.siteProxy && o.stateDir ? new SavedRoutes(o.stateDir) : null;
    this.execs = new ExecSessions({ driver: o.driver, node: o.name, instance: (id) => this.runners.get(id)?.instanceId ?? null, send: (m) => this.send(m), log: o.log });
    // the hub's own streams run before any assignment arrives
    if (o.hub) o.hub.hub.setStreams({ ...o.hubStreams });
  }

  private readonly uplink: Uplink | null;
  /** the site proxy for exposed apps (null: `--proxy off`); its per-window counts are in `siteProxy.counters` */
  readonly siteProxy: SiteProxy | null;
  private readonly savedRoutes: SavedRoutes | null;
  /** the proxy's windows on their way to the control plane (measured demand) */
  readonly demand: DemandReporter | null;
  private lastProxyReport = '';
  /** `outpost exec` sessions running here */
  private readonly execs: ExecSessions;
  private readonly identity: NodeIdentityStore;
  /** the control plane's URLs; `current` is the one dialled (and, once registered, connected to) */
  readonly servers: ServerUrls;
  private renewTimer: NodeJS.Timeout | null = null;
  /** the hub certificate the hub serves now */
  private hubCertServed: string | null = null;
  private readonly sessions = new SessionCache();
  /** messages from the control plane refused by the protocol's schemas */
  refused = 0;

  start(): void {
    // edge autonomy: what this node was last told to run starts from local
    // images whether or not the control plane answers; its assignments win when
    // they come. A control plane that answers at once is heard first, so a replica
    // it has moved elsewhere meanwhile is not started here for a moment (a
    // duplicate); one that refuses or stays silent for the grace is not waited for.
    const saved = this.desired?.load();
    if (this.desired?.refused) this.o.log.warn({ file: 'desired.json', why: this.desired.refused }, 'the saved desired state is refused; waiting for the control plane');
    if (saved) {
      let done = false;
      const go = (why: string) => {
        if (done) return;
        done = true;
        clearTimeout(grace);
        this.off('disconnected', onDown);
        if (this.assigned) return;
        this.o.log.info({ replicas: saved.assignments.length, why }, 'starting the locally saved desired state');
        this.applying = this.applying.then(() => (this.assigned ? undefined : this.apply(saved.assignments, false))).catch((err) => this.o.log.error({ err }, 'applying saved state failed'));
      };
      const onDown = () => go('the control plane is unreachable');
      const grace = setTimeout(() => go('no answer from the control plane'), this.o.offlineGraceMs ?? 1500);
      this.once('disconnected', onDown);
      this.once('assigned', () => go('assigned'));
    }
    // the site proxy, likewise, serves the last table it was sent until the control plane sends one
    const routes = this.savedRoutes?.load();
    if (routes?.length) {
      this.o.log.info({ apps: routes.length }, 'serving the locally saved route table');
      this.siteProxy!.apply(null, routes);
    }
    this.connect();
    this.uplink?.start();
    this.demand?.start();
    const every = this.o.stagesIntervalMs ?? 10_000;
    this.stagesTimer = setInterval(() => void this.readStages(), every);
    this.inventoryTimer = setInterval(() => void this.reportInventory(), this.o.inventoryIntervalMs ?? 30_000);
    this.gcTimer = setInterval(() => void this.collectImages(), this.o.gcIntervalMs ?? 60_000);
  }

  /** Removes unused images no assignment names, oldest first, when the image store is over 85% full. */
  private async collectImages(): Promise<void> {
    const d = this.o.driver;
    if (!d.disk || !d.imageUse || !d.removeImage) return;
    try {
      const disk = await d.disk();
      if (!disk) return;
      const wanted = [...this.runners.values()].flatMap((r) => imagesOf(r.a.spec));
      const images = (await d.imageUse()).map((i) => ({ ...i, wanted: wanted.some((w) => hasImage(i.refs, w)) }));
      for (const img of gcPlan(images, disk)) {
        this.o.log.info({ image: img.refs[0] ?? img.id, bytes: img.bytes }, 'removing an unused image: the disk is filling');
        await d.removeImage(img.id);
      }
    } catch (err) {
      this.o.log.warn({ err }, 'image garbage collection failed');
    }
  }

  /** Sends the image inventory when it changed since the last report. */
  private async reportInventory(force = false): Promise<void> {
    try {
      const inv = await this.o.driver.inventory();
      const key = JSON.stringify(inv);
      if (!force && key === this.lastInventory) return;
      this.lastInventory = key;
      this.send({ type: 'images', ...inv });
    } catch (err) {
      this.o.log.debug({ err }, 'reading the image inventory failed');
    }
  }

  /** Disconnects; with `removeWorkloads`, also stops and removes everything this agent runs. */
  async stop(opts: { removeWorkloads?: boolean } = {}): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.probeTimer) clearTimeout(this.probeTimer);
    if (this.stagesTimer) clearInterval(this.stagesTimer);
    if (this.inventoryTimer) clearInterval(this.inventoryTimer);
    if (this.gcTimer) clearInterval(this.gcTimer);
    this.uplink?.stop();
    this.demand?.stop();
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.workload.close();
    for (const c of this.logCancels.values()) c();
    this.execs.cancelAll('the agent stops');
    this.ws?.terminate();
    await this.siteProxy?.stop();
    await this.applying;
    if (opts.removeWorkloads) {
      await Promise.all([...this.runners.values()].map((r) => r.stop()));
      this.runners.clear();
    }
  }

  /** Stops for good on a refusal no retry can fix (revoked, name taken, no way to enrol, a server that is not ours). */
  private fatal(err: OutpostError): void {
    this.closed = true;
    this.emit('fatal', err);
  }

  private connect(): void {
    if (this.closed) return;
    this.identity.ensure().then((creds) => {
      this.serveHubCert();
      this.dial(creds);
    }).catch((e: Error) => {
      const err = e instanceof OutpostError ? e : null;
      // what no retry can fix stops the agent, saying why; a TLS failure may be passing (a captive portal, a certificate being replaced)
      if (err && ['E_NODE_REVOKED', 'E_NODE_NAME_TAKEN', 'E_TOKEN_INVALID', 'E_CA_MISMATCH', 'E_INVALID'].includes(err.code)) return this.fatal(err);
      this.o.log.warn({ code: err?.code, err: e.message }, 'enrolment failed; trying again');
      this.moveOn(e.message);
      this.retry(null);
    });
  }

  /** An attempt at the current URL failed: the next attempt goes to the next one, if there is another. */
  private moveOn(why: string): void {
    if (this.servers.all.length < 2) return;
    const from = this.servers.current;
    this.o.log.info({ from, to: this.servers.next(), why }, 'trying the next control-plane URL');
  }

  private retry(toldWait: number | null): void {
    if (this.closed) return;
    // full jitter over an exponential back-off, so a fleet that lost the
    // control plane together does not come back together
    const wait = toldWait ?? Math.random() * this.backoff;
    this.backoff = Math.min(this.backoff * 2, RECONNECT_MAX_MS);
    this.reconnectTimer = setTimeout(() => this.connect(), wait);
  }

  private dial(creds: Credentials): void {
    if (this.closed) return;
    const server = this.servers.current;
    const url = server.replace(/^http/, 'ws') + AGENT_PATH;
    // the node's identity is its certificate (mutual TLS), or without TLS its secret; never its name alone
    const ws = new WebSocket(url, [SUBPROTOCOL], {
      headers: { [NODE_HEADER]: this.o.name, ...(creds.secret && !this.identity.tls ? { authorization: `Bearer ${creds.secret}` } : {}) },
      handshakeTimeout: 10_000,
      ...(this.identity.tls ? { ca: creds.ca ?? undefined, cert: creds.cert, key: creds.key, createConnection: this.sessions.connector(creds.cert) } : {}),
    });
    this.ws = ws;
    let toldWait: number | null = null;
    let failure = 'the connection closed before registration';
    ws.on('open', () => {
      this.armSilence();
      void this.register();
    });
    ws.on('ping', () => this.armSilence());
    ws.on('message', (raw) => {
      this.armSilence();
      const text = raw.toString();
      const parsed = parseServerMessage(text);
      if (parsed.ok && parsed.msg.type === 'assign') {
        // what reached this node: the bytes and the secrets' names (never their values)
        this.o.log.debug({ bytes: Buffer.byteLength(text), replicas: parsed.msg.replicas.length, secrets: parsed.msg.replicas.flatMap((a) => (a.secrets ?? []).map((x) => `${x.name}@${x.version}`)) }, 'assignments received');
      }
      if (parsed.ok) return this.onMessage(parsed.msg);
      // what does not parse is not acted on: counted, and the connection closed with its code
      this.refused++;
      this.o.log.warn({ code: parsed.code, message: parsed.message }, 'control-plane message refused; reconnecting');
      // a control plane that keeps sending what this agent refuses is not dialled again at once
      this.backoff = Math.max(this.backoff, 5000);
      ws.close(4400, parsed.code);
    });
    ws.on('unexpected-response', (_req, res) => {
      failure = `HTTP ${res.statusCode}`;
      if (res.statusCode === 401 || res.statusCode === 403 || res.statusCode === 409) {
        // the answer's code says whether enrolling again can help: read it whole before the socket goes
        let text = '';
        res.on('data', (d: Buffer) => { if (text.length < 65536) text += d; });
        res.on('error', () => ws.terminate());
        res.on('end', () => {
          ws.terminate();
          let code = 'E_UNAUTHORIZED';
          let message = `the control plane refused this node (${res.statusCode})`;
          try { ({ code, message } = (JSON.parse(text) as { error: { code: string; message: string } }).error); } catch { /* keep the status */ }
          if (code === 'E_CERT_EXPIRED' || (code === 'E_UNAUTHORIZED' && res.statusCode === 401)) {
            this.o.log.warn({ code, message }, 'the control plane refused this node\'s credential; enrolling again');
            this.identity.creds = null;
            void this.identity.enrol(true).then(() => { this.backoff = RECONNECT_MIN_MS; }, (e: Error) => {
              if (e instanceof OutpostError && ['E_NODE_REVOKED', 'E_NODE_NAME_TAKEN', 'E_TOKEN_INVALID'].includes(e.code)) this.fatal(e);
              else this.o.log.warn({ err: e.message }, 'enrolling again failed');
            });
          } else {
            this.fatal(new OutpostError(code as 'E_UNAUTHORIZED', message));
          }
        });
        return;
      } else if (res.statusCode === 426) {
        const err = new OutpostError('E_PROTOCOL', `the control plane at ${server} speaks another major version of the agent protocol than this agent (${SUBPROTOCOL}): run an agent of its version`);
        this.closed = true;
        this.emit('fatal', err);
      } else if (res.statusCode === 503) {
        // admission control: come back when told, plus a little jitter
        const ms = Number(res.headers[RETRY_HEADER]) || Number(res.headers['retry-after']) * 1000 || this.backoff;
        toldWait = ms + Math.random() * Math.min(ms, 1000);
      }
      ws.terminate();
    });
    ws.on('error', (err) => {
      failure = err.message;
      this.o.log.debug({ server, err: err.message }, 'connection error');
    });
    ws.on('close', () => {
      if (this.ws !== ws) return;
      if (this.connected && !this.closed) this.o.log.warn({ server }, 'disconnected from the control plane; workloads keep running');
      // a dropped connection is dialled again where it was; an attempt that never registered moves on
      else if (!this.closed) this.moveOn(failure);
      this.connected = false;
      // their clients reached them through this connection: a command nobody can see or stop is killed
      this.execs.cancelAll('the connection to the control plane closed');
      // and nobody reads a followed log any more (the control plane ended its streams)
      for (const c of this.logCancels.values()) c();
      this.logCancels.clear();
      this.emit('disconnected');
      if (this.silenceTimer) clearTimeout(this.silenceTimer);
      this.retry(toldWait);
    });
  }

  private armSilence(): void {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => this.ws?.terminate(), SILENCE_MS);
  }

  private async register(): Promise<void> {
    const inv = await this.o.driver.inventory().catch(() => ({ images: [], layers: [], imageLayers: {} }));
    this.lastInventory = JSON.stringify(inv);
    const node: NodeInfo = {
      name: this.o.name, ...machine(), labels: this.o.labels, site: this.o.site, runtime: this.o.driver.kind,
      address: this.o.advertise, images: inv.images, layers: inv.layers, imageLayers: inv.imageLayers, agentVersion: this.o.version ?? '0.1.0',
      hub: this.o.hub ? { http: this.o.hub.http, mqtt: this.o.hub.mqtt } : null,
      // devices are found at each connection: one plugged in later counts from the next
      policy: this.o.policy ?? NO_POLICY, devices: allowedDevices((this.o.policy ?? NO_POLICY).devices),
    };
    // route tables only to a node that runs a proxy
    this.send({ type: 'register', node, features: AGENT_FEATURES.filter((f) => f !== 'routes' || this.siteProxy) });
  }

  private onMessage(msg: ServerToAgent): void {
    switch (msg.type) {
      case 'welcome': {
        // back-off starts over once registered, not at the upgrade: a control
        // plane that accepts and then closes is not hammered
        this.backoff = RECONNECT_MIN_MS;
        this.connected = true;
        this.features = new Set(msg.features ?? []);
        this.o.log.info({ server: this.servers.current, node: msg.node }, 'registered with the control plane');
        this.scheduleRenewal();
        // tokens that came due or never came while the link was down
        this.workload.refresh();
        // the control plane may have missed status while we were away
        const statuses = [...this.runners.values()].map((r) => r.status);
        if (statuses.length > 0) this.send({ type: 'status', replicas: statuses });
        this.uplink?.reset();
        this.lastProxyReport = '';
        this.siteProxy?.reconnected();
        this.demand?.reconnected();
        this.emit('connected');
        return;
      }
      case 'sites':
        this.sites = msg.sites;
        void this.probe();
        return;
      case 'assign':
        this.assigned = true;
        this.emit('assigned');
        this.applying = this.applying.then(() => this.apply(msg.replicas, true)).catch((err) => this.o.log.error({ err }, 'applying assignments failed'));
        for (const p of msg.prepull ?? []) this.prepull(p);
        return;
      case 'windows.ack':
        this.uplink?.onAck(msg.hubId, msg.seqs);
        return;
      case 'demand.ack':
        this.demand?.outbox.acked(msg.starts);
        return;
      case 'routes':
        if (!this.siteProxy) return;
        this.siteProxy.apply(msg.seq, msg.apps, { whole: msg.whole ?? false, removed: msg.removed });
        try { this.savedRoutes?.save(this.siteProxy.table()); } catch (err) { this.o.log.warn({ err }, 'saving the route table failed'); }
        return;
      case 'logs':
        return this.startLogs(msg.reqId, msg.replicaId, msg.follow, msg.tail, msg.container);
      case 'volumes.remove':
        // after the assignment set that went before it: the app's containers are gone by then
        this.applying = this.applying.then(() => this.removeVolumes(msg.app)).catch((err) => this.o.log.warn({ err, app: msg.app }, 'removing volumes failed'));
        return;
      case 'exec.start':
      case 'exec.stdin':
      case 'exec.resize':
      case 'exec.ack':
      case 'exec.cancel':
        return this.execs.onMessage(msg);
      case 'logs.cancel':
        this.logCancels.get(msg.reqId)?.();
        this.logCancels.delete(msg.reqId);
        return;
      case 'error':
        this.o.log.error({ code: msg.code }, msg.message);
        return;
      case 'devices':
        // the hub's own config devices stay; these replace what the control plane pushed before
        this.o.hub?.setDevices(msg.devices);
        // devices come only to an approved node: the first moment a hub certificate can be had
        if (this.identity.hubNames && !this.identity.creds?.hubCert) void this.renewNow();
        return;
      case 'identity':
        this.o.hub?.identity.setKey(msg.key, this.o.name);
        this.workload.onTokens(msg.tokens, msg.gone);
        return;
      case 'cert':
        this.identity.save(msg.cert, undefined, msg.hubCert).then((c) => {
          this.o.log.info({ notAfter: new Date(c.notAfter).toISOString(), hub: msg.hubCert !== undefined }, 'certificate renewed');
          this.serveHubCert();
          this.emit('renewed', c.notAfter);
          this.scheduleRenewal();
        }, (err: Error) => this.o.log.error({ err: err.message }, 'the renewed certificate was refused'));
        return;
    }
  }

  /**
   * Asks for a new certificate at its half-life, over the live connection
   * (which stays up). Timed on this node's clock from when the certificate
   * arrived (its life as the certificate states it, less the minute the
   * control plane back-dates it), so a skewed clock neither renews in a loop
   * nor too late.
   */
  private scheduleRenewal(): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    const c = this.identity.creds;
    if (!c) return;
    const life = Math.max(2000, c.notAfter - c.notBefore - BACKDATE_MS);
    this.renewTimer = setTimeout(() => void this.renewNow(life), Math.min(Math.max(1000, c.receivedAt + life / 2 - Date.now()), 2 ** 31 - 1));
  }

  /**
   * Sends a renewal request; without an answer it asks again (an eighth of
   * the life later, at least 5 s; 11 s while the hub waits for its first
   * certificate: the control plane issues one per node every 10 s at most).
   */
  async renewNow(life = 0): Promise<void> {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    const names = this.identity.hubNames;
    const hubWaits = names !== null && !this.identity.creds?.hubCert;
    this.renewTimer = setTimeout(() => void this.renewNow(life), hubWaits ? 11_000 : Math.max(5000, life / 8));
    if (!this.connected) return;
    this.send({ type: 'renew', csr: await this.identity.csr(), ...(names ? { hub: names } : {}) });
  }

  /** Hands the hub a newly issued serving certificate (new TLS connections get it; open ones keep theirs). */
  private serveHubCert(): void {
    const c = this.identity.creds;
    if (!this.o.hub || !c?.hubCert || c.hubCert === this.hubCertServed) return;
    this.o.hub.setTls({ cert: c.hubCert, key: c.key });
    this.hubCertServed = c.hubCert;
    this.o.log.info({ notAfter: new X509Certificate(c.hubCert).validTo }, 'the data hub serves its node certificate');
  }

  /** Makes what runs here match the assignment set: adopt, start, stop, clean up. */
  private async apply(assignments: Assignment[], fromServer: boolean): Promise<void> {
    if (fromServer) this.desired?.save(assignments);
    // what this node's policy refuses is never created (and one already running, under a policy since narrowed, is removed)
    const refused = assignments.flatMap((a) => {
      const e = policyRefusal(a.spec, this.o.policy ?? NO_POLICY, this.o.driver.kind, this.o.name);
      return e ? [{ id: a.id, state: 'failed' as const, error: { code: e.code, message: e.message } }] : [];
    });
    const want = new Map(assignments.filter((a) => !refused.some((r) => r.id === a.id)).map((a) => [a.id, a]));
    const stopping: Promise<void>[] = [];
    for (const [id, r] of this.runners) {
      const a = want.get(id);
      if (!a || a.specHash !== r.a.specHash) {
        this.runners.delete(id);
        this.stages.forget(id);
        stopping.push(r.stop());
      }
    }
    await Promise.all(stopping);
    this.setStreams([...want.values()]);
    const instances = await this.o.driver.list();
    if (refused.length > 0) {
      this.o.log.warn({ replicas: refused.map((r) => r.id), why: refused[0]!.error.message }, 'assignments refused by this node\'s policy');
      this.send({ type: 'status', replicas: refused });
    }
    for (const a of want.values()) {
      if (this.runners.has(a.id)) continue;
      // a replica of the same app draining here on the same fixed ports: this one starts once it is stopped (the next set)
      if (this.portsCollide(a, want)) continue;
      const runner = new ReplicaRunner(a, {
        driver: this.o.driver, secretFiles: this.secretFiles, configFiles: this.configFiles, identity: this.workload, node: this.o.name, bindHost: this.o.bindHost, advertise: this.o.advertise, env: this.hubEnv(), log: this.o.log,
        report: (s, pulled) => {
          this.send({ type: 'status', replicas: [s], pulled: pulled ?? null });
          // the metrics (src/agent/metrics.ts) hear every status as the runner sets it
          this.emit('status', a.app, s, pulled ?? null);
        },
        ensureImage: (r, onProgress) => this.ensureImage(r, onProgress),
      });
      this.runners.set(a.id, runner);
      runner.start(instances.find((i) => i.replicaId === a.id));
    }
    this.secretFiles.prune(new Set(want.keys()));
    this.configFiles.prune(new Set(want.keys()));
    // labelled instances that no assignment names: left from before a restart, or removed apps
    for (const i of instances) {
      if (!want.has(i.replicaId) && !this.runners.has(i.replicaId)) {
        this.o.log.info({ instance: i.id, replica: i.replicaId }, 'removing an instance nobody wants');
        await this.o.driver.remove(i.id).catch((err) => this.o.log.warn({ err }, 'remove failed'));
      }
    }
    this.emit('applied', assignments.length);
  }

  /**
   * Whether a new replica would take the ports of a replica of its app that
   * drains on this node: on the host's network a port is the container's
   * own, so the two cannot both listen (elsewhere each gets a free port).
   */
  private portsCollide(a: Assignment, want: Map<string, Assignment>): boolean {
    const fixed = this.o.driver.hostNetwork || containersOf(a.spec).some((c) => c.networkMode === 'host');
    return fixed && [...this.runners.values()].some((r) => r.a.app === a.app && want.get(r.a.id)?.draining);
  }

  /** The site proxy's listeners to the control plane, when they changed (and after each reconnect). */
  private reportProxy(listeners: ProxyListener[]): void {
    const key = JSON.stringify(listeners);
    if (key === this.lastProxyReport || !this.features.has('proxy')) return;
    if (this.send({ type: 'proxy', listeners })) this.lastProxyReport = key;
  }

  /** Measures RTT to every site now, reports it, and schedules the next round. */
  private probe(): Promise<void> {
    if (this.probeTimer) clearTimeout(this.probeTimer);
    // a round already running finishes first; the new site list is probed right after
    const run = (this.probing ?? Promise.resolve()).then(async () => {
      const sites = this.sites;
      const round = await probeSites(sites);
      if (sites !== this.sites) return; // superseded while probing
      // the median of the last three rounds: one round taken under a CPU or
      // link spike must not move placement
      const rtt: Record<string, number> = {};
      for (const [site, v] of Object.entries(round)) {
        const hist = [...(this.rttHistory.get(site) ?? []), v].slice(-3);
        this.rttHistory.set(site, hist);
        rtt[site] = [...hist].sort((a, b) => a - b)[hist.length >> 1]!;
      }
      for (const site of this.rttHistory.keys()) if (!(site in round)) this.rttHistory.delete(site);
      this.rttMs = rtt;
      this.send({ type: 'rtt', rttMs: rtt });
      this.emit('rtt', rtt);
    }).catch((err) => this.o.log.warn({ err }, 'probing sites failed')).finally(() => {
      if (this.probing === run) this.probing = null;
      if (this.probeTimer) clearTimeout(this.probeTimer);
      if (!this.closed) this.probeTimer = setTimeout(() => void this.probe(), this.o.probeIntervalMs ?? 30_000);
    });
    this.probing = run;
    return run;
  }

  /** Reads per-item stage costs from running replicas that declare them, and reports each app's. */
  private async readStages(): Promise<void> {
    for (const r of this.runners.values()) {
      const path = r.a.spec.metrics?.stages;
      const base = r.status.state === 'running' ? r.status.endpoint : null;
      if (!path || !base) continue;
      const per = await this.stages.read(r.a.app, r.a.id, base + path);
      if (per) this.send({ type: 'stages', app: r.a.app, perItemUs: per });
    }
  }

  /** `outpost rm APP --volumes`: the app's named volumes here, unless a replica of it runs here again. */
  private async removeVolumes(app: string): Promise<void> {
    if (!this.o.driver.removeVolumes) return;
    if ([...this.runners.values()].some((r) => r.a.app === app)) {
      this.o.log.warn({ app }, 'not removing the volumes of an app that runs here');
      return;
    }
    const removed = await this.o.driver.removeVolumes(app);
    this.o.log.info({ app, volumes: removed }, 'removed the app\'s named volumes');
  }

  /**
   * Pulls an app's images ahead of a replica the autopilot is moving here
   * (T_image 0 at the move); the replica, when it comes, joins a pull still
   * under way. The inventory reported after it tells the control plane.
   */
  private prepull(p: Omit<Assignment, 'id'>): void {
    if (this.pulls.has(imagesOf(p.spec).join(' '))) return;
    this.o.log.info({ app: p.app, images: imagesOf(p.spec) }, 'pre-pulling for a replica the autopilot moves here');
    this.ensureImage({ id: `prepull-${p.app}`, ...p }, () => {})
      .then((r) => this.o.log.info({ app: p.app, pulled: r.pulled, bytes: r.bytes }, 'pre-pull done'))
      .catch((err) => this.o.log.warn({ err, app: p.app }, 'pre-pull failed; the replica pulls when it comes'));
  }

  /** One pull per set of images at a time, however many replicas need it. */
  private ensureImage(a: Assignment, onProgress: (p: PullProgress) => void): Promise<EnsureResult> {
    const key = imagesOf(a.spec).join(' ');
    let p = this.pulls.get(key);
    if (!p) {
      p = this.o.driver.ensureImage(a.spec, onProgress, a.imageBytes ?? null).finally(() => {
        this.pulls.delete(key);
      });
      this.pulls.set(key, p);
      void p.then((r) => (r.pulled ? this.reportInventory(true) : undefined)).catch(() => {});
    }
    return p;
  }

  private startLogs(reqId: string, replicaId: string, follow: boolean, tail: number, container?: string): void {
    const id = this.runners.get(replicaId)?.instanceId;
    if (!id) {
      this.send({ type: 'logs.end', reqId, error: `replica ${replicaId} has no running instance on this node` });
      return;
    }
    // the request came over this connection, and its answer goes only there: on the
    // next one (not registered yet) it would be refused and cost that connection too
    const link = this.ws;
    const here = (m: AgentToServer): void => { if (this.ws === link) this.send(m); };
    const out = this.logPacer.stream((data) => here({ type: 'logs.data', reqId, data }));
    const stop = this.o.driver.logs(id, { follow, tail, ...(container ? { container } : {}) },
      (data) => out.data(data),
      (error) => {
        this.logCancels.delete(reqId);
        out.flush();
        here(error ? { type: 'logs.end', reqId, error } : { type: 'logs.end', reqId });
      });
    this.logCancels.set(reqId, () => { out.cancel(); stop(); });
  }

  private send(msg: AgentToServer): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** The streams this node's hub runs: its own config's, then each assigned app's (the first app to declare a name wins). */
  private setStreams(assignments: Assignment[]): void {
    const hub = this.o.hub;
    if (!hub) return;
    const streams: Record<string, StreamSpec> = { ...this.o.hubStreams };
    // an app's replicas publish with their identity tokens to the streams it declares
    const byApp = new Map<string, string[]>();
    for (const a of [...assignments].sort((x, y) => (x.app < y.app ? -1 : x.app > y.app ? 1 : 0))) {
      const own = byApp.get(a.app) ?? [];
      byApp.set(a.app, own);
      for (const [name, spec] of Object.entries(a.spec.streams ?? {})) {
        // a stream another app declared first (or the hub config) is not this app's to publish to
        if (!streams[name]) { streams[name] = spec; own.push(name); }
        else if (JSON.stringify(streams[name]) !== JSON.stringify(spec)) this.o.log.warn({ stream: name, app: a.app }, 'two declarations of one stream differ; the first is used');
      }
    }
    hub.identity.setAppStreams(byApp);
    try {
      hub.hub.setStreams(streams);
    } catch (err) {
      this.o.log.error({ err }, 'setting the hub\'s streams failed');
    }
  }

  /** Workloads find the node's data hub through these. */
  private hubEnv(): Record<string, string> {
    const h = this.o.hub;
    if (!h) return {};
    // a hub on TLS is verified with the hub CA, handed over as PEM (a file path would not exist inside a container)
    const ca = this.identity.hubNames ? this.identity.hubCa() : null;
    return { OUTPOST_HUB_URL: h.http, OUTPOST_HUB_MQTT: h.mqtt, ...(ca ? { OUTPOST_HUB_CA: ca } : {}) };
  }

  statuses(): ReplicaStatus[] {
    return [...this.runners.values()].map((r) => r.status);
  }

  /** Each replica this agent runs with its app (the metrics count them). */
  replicas(): { app: string; status: ReplicaStatus }[] {
    return [...this.runners.values()].map((r) => ({ app: r.a.app, status: r.status }));
  }
}
