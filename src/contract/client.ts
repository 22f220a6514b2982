// One typed client of the control plane's API (./api.ts), used by the CLI, the
// lab, the benchmarks and the tests. It uses node:http rather than fetch: the
// first fetch of a Node 20 process loads undici (~35 ms), a third of a short
// command's time. Errors arrive as OutpostErrors with the server's code.
//
// Several URLs are instances of one control plane. A request goes to the one
// that answered last, and moves on to the next when that one cannot be
// reached: a connection that never opened carried nothing, so any method moves
// on. A connection lost after the request went out may have been acted on, so
// only GET and HEAD (which change nothing) are sent again elsewhere; anything
// else fails with E_NO_SERVER saying so (the API has no idempotency keys that
// would make a second POST safe). A certificate that does not verify stops at
// once (E_TLS): moving on would hide a wrong CA or something in the middle.
import http from 'node:http';
import https from 'node:https';
import { OutpostError, type ErrorCode } from '../core/errors.js';
import type {
  AddSiteBody, ApiErrorAnswer, ApiTokenBody, ApiTokenView, AuditEntry, AuditQuery, CreatedApiToken, WhoAmI, CreatedDevice, CreatedToken, DeviceBody, DeviceView, JoinTokenView, NodeTrust, TokenBody, AppDetail, AppQuery, AppView, AppWaitQuery, DeployAnswer, DeployQuery, HealthAnswer, HeldWindow, ListPath,
  ListRoutes, LogsQuery, ModelAnswer, NextAfterHeader, NodeQuery, NodeRecord, NodeView, RankedEndpoint, RemoveAnswer, RemoveQuery, RemoveSiteAnswer, ReplicaQuery,
  ReplicaRecord, RttDeclaration, SiteRecord, SiteView, StreamRow, StreamWindowQuery, UndoAnswer, SecretView, SecretBody, SetSecretAnswer, RotateKeyAnswer,
  EventsAnswer, EventsQuery, DemandView, AutopilotView,
} from './api.js';
import type { ExecConnection, ExecRequest } from './exec-client.js';

export interface RequestOptions {
  /** a string body goes as it is with this type (default application/json: the body is sent as JSON) */
  contentType?: string;
  /** give up when the connection is silent this long (0: never) */
  timeoutMs?: number;
}

/** A response read in full: its status, its headers and its JSON body. */
export interface Answer<T> {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: T;
}

/** One page of a list route; `next` is the `after` of the next page, null on the last. */
export interface Page<T> {
  items: T[];
  next: string | null;
}

/** The header a page's answer carries when more items remain. */
export const NEXT_AFTER: NextAfterHeader = 'x-next-after';
/** The page size `pages` asks for unless told otherwise. */
export const DEFAULT_PAGE_SIZE = 1000;

const DEFAULT_TIMEOUT_MS = 60_000;
/** with another URL to try, a connection not open within this goes on to it (a host that drops packets answers nothing) */
const CONNECT_TIMEOUT_MS = 10_000;
/** methods that change nothing: sent again to the next URL whatever became of them */
const SAFE_METHODS = new Set(['GET', 'HEAD']);

// one keep-alive connection reused by a command's successive requests (deploy --wait polls, pages)
const TLS_ERRORS = /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_VERIFY|SSL|TLS/;

const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 4 }), https: new https.Agent({ keepAlive: true, maxSockets: 4 }) };

type QueryValue = string | number | boolean | undefined;

/** `?k=v&...` of the defined values (booleans as 1 and 0), or '' when there are none. */
export function queryString(q: object = {}): string {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(q) as [string, QueryValue][]) {
    if (v === undefined) continue;
    s.set(k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
  }
  return s.size ? `?${s}` : '';
}

const seg = encodeURIComponent;

/**
 * The URLs of one control plane's instances, in the order to try them: the
 * one that answered last first (sticky), then the others as given.
 */
export class ServerUrls {
  readonly all: readonly string[];
  private at = 0;

  constructor(urls: string | readonly string[]) {
    this.all = (typeof urls === 'string' ? [urls] : [...urls]).map((u) => u.replace(/\/+$/, ''));
    if (this.all.length === 0) throw new OutpostError('E_USAGE', 'no control plane URL given');
  }

  /** the URL in use: the one that answered last */
  get current(): string {
    return this.all[this.at]!;
  }

  /** every URL once, the current one first */
  order(): string[] {
    return this.all.map((_, i) => this.all[(this.at + i) % this.all.length]!);
  }

  /** `url` answered: later requests go there first */
  answered(url: string): void {
    const i = this.all.indexOf(url);
    if (i >= 0) this.at = i;
  }

  /** the current URL failed: the next one is tried first from now on */
  next(): string {
    this.at = (this.at + 1) % this.all.length;
    return this.current;
  }
}

/** One URL's failure: `sent` when the request may have reached it. */
interface Attempt { url: string; why: string; sent: boolean }

/** The E_NO_SERVER of a request no URL answered. */
function noServer(method: string, p: string, tried: Attempt[]): OutpostError {
  const list = tried.map((a) => `${a.url} (${a.why})`).join(', ');
  const last = tried[tried.length - 1]!;
  if (last.sent && !SAFE_METHODS.has(method)) {
    return new OutpostError('E_NO_SERVER', `the connection to the control plane was lost after ${method} ${p.replace(/\?.*/, '')} was sent, so it was not sent again and may or may not have taken effect: look before retrying (tried ${list})`);
  }
  return new OutpostError('E_NO_SERVER', `cannot reach the control plane at ${list}; is \`outpost server\` or \`outpost up\` running? Set OUTPOST_SERVER to its URL (several instances: comma-separated).`);
}

export class ApiClient {
  private readonly httpsAgent: https.Agent;
  readonly servers: ServerUrls;

  /**
   * `server`: the control plane's URL, or its instances' (tried in turn).
   * `ca`: PEM of the CA to trust for an https:// server (the control plane's
   * own; the system's CAs when absent).
   */
  constructor(server: string | readonly string[], private readonly token: string, private readonly ca: string | null = null) {
    this.servers = new ServerUrls(server);
    this.httpsAgent = ca ? new https.Agent({ keepAlive: true, maxSockets: 4, ca }) : agents.https;
  }

  /** the URL requests go to first: the one that answered last */
  get server(): string {
    return this.servers.current;
  }

  // ---- the routes (./api.ts says what each takes and answers) -------------

  /** GET /healthz */
  healthz(): Promise<HealthAnswer> {
    return this.request('GET', '/healthz');
  }

  /** GET /v1/nodes: the whole list, or one page with `limit` (see `pages` for all of them page by page). */
  nodes(q: NodeQuery = {}): Promise<NodeView[]> {
    return this.request('GET', `/v1/nodes${queryString(q)}`);
  }

  /** GET /v1/nodes/NAME */
  node(name: string): Promise<NodeView> {
    return this.request('GET', `/v1/nodes/${seg(name)}`);
  }

  /** POST /v1/nodes/NAME/approve */
  approveNode(name: string): Promise<NodeTrust> {
    return this.request('POST', `/v1/nodes/${seg(name)}/approve`);
  }

  /** POST /v1/nodes/NAME/revoke */
  revokeNode(name: string): Promise<NodeTrust> {
    return this.request('POST', `/v1/nodes/${seg(name)}/revoke`);
  }

  /** DELETE /v1/nodes/NAME */
  removeNode(name: string): Promise<{ removed: string }> {
    return this.request('DELETE', `/v1/nodes/${seg(name)}`);
  }

  /** GET /v1/devices */
  devices(): Promise<DeviceView[]> {
    return this.request('GET', '/v1/devices');
  }

  /** POST /v1/devices: the answer holds the secret, once. */
  createDevice(body: DeviceBody): Promise<CreatedDevice> {
    return this.request('POST', '/v1/devices', body);
  }

  /** DELETE /v1/devices/NAME */
  removeDevice(name: string): Promise<{ removed: string }> {
    return this.request('DELETE', `/v1/devices/${seg(name)}`);
  }

  /** GET /v1/hub-ca: the PEM devices verify the nodes' hubs with. */
  async hubCa(): Promise<string> {
    return readAll(await this.succeeded(await this.raw('GET', '/v1/hub-ca', undefined, { timeoutMs: DEFAULT_TIMEOUT_MS })));
  }

  /** GET /metrics: the Prometheus text format. */
  async metrics(): Promise<string> {
    return readAll(await this.succeeded(await this.raw('GET', '/metrics', undefined, { timeoutMs: DEFAULT_TIMEOUT_MS })));
  }

  /** GET /v1/tokens */
  tokens(): Promise<JoinTokenView[]> {
    return this.request('GET', '/v1/tokens');
  }

  /** POST /v1/tokens: the answer holds the token, once. */
  createToken(body: TokenBody): Promise<CreatedToken> {
    return this.request('POST', '/v1/tokens', body);
  }

  /** DELETE /v1/tokens/ID */
  revokeToken(id: string): Promise<JoinTokenView> {
    return this.request('DELETE', `/v1/tokens/${seg(id)}`);
  }

  /** GET /v1/whoami: the caller's token, role, scopes and capabilities. */
  whoami(): Promise<WhoAmI> {
    return this.request('GET', '/v1/whoami');
  }

  /** GET /v1/apitokens */
  apiTokens(): Promise<ApiTokenView[]> {
    return this.request('GET', '/v1/apitokens');
  }

  /** POST /v1/apitokens: the answer holds the token, once. */
  createApiToken(body: ApiTokenBody): Promise<CreatedApiToken> {
    return this.request('POST', '/v1/apitokens', body);
  }

  /** DELETE /v1/apitokens/ID */
  revokeApiToken(id: string): Promise<ApiTokenView> {
    return this.request('DELETE', `/v1/apitokens/${seg(id)}`);
  }

  /** GET /v1/audit: entries from `since` (epoch ms), oldest first. */
  audit(q: AuditQuery = {}): Promise<AuditEntry[]> {
    return this.request('GET', `/v1/audit${queryString(q)}`);
  }

  /** GET /v1/events: a page of the event log, in seq order. */
  events(q: EventsQuery = {}): Promise<EventsAnswer> {
    return this.request('GET', `/v1/events${queryString(q)}`);
  }

  /**
   * GET /v1/events/stream: the response, its server-sent events unread (no
   * timeout: the server sends a comment every 15 s). A client that lost the
   * stream resumes with `since` set to the last seq it got.
   */
  async eventStream(q: Omit<EventsQuery, 'limit' | 'newest'> = {}): Promise<http.IncomingMessage> {
    return this.succeeded(await this.raw('GET', `/v1/events/stream${queryString(q)}`));
  }

  /** PUT /v1/nodes/NAME/rtt: RTTs from sites to a node that cannot probe; null removes one. */
  declareRtt(node: string, rtt: RttDeclaration): Promise<NodeRecord> {
    return this.request('PUT', `/v1/nodes/${seg(node)}/rtt`, rtt);
  }

  /** GET /v1/apps */
  apps(q: AppQuery = {}): Promise<AppView[]> {
    return this.request('GET', `/v1/apps${queryString(q)}`);
  }

  /**
   * GET /v1/apps/NAME. With `after` (an earlier answer's version) and
   * `waitMs`, a long poll: the answer comes at the app's next change, or
   * after waitMs; the request then waits up to 10 s longer than that.
   */
  app(name: string, w: AppWaitQuery = {}): Promise<AppDetail> {
    return this.request('GET', `/v1/apps/${seg(name)}${queryString(w)}`, undefined, w.waitMs ? { timeoutMs: w.waitMs + 10_000 } : {});
  }

  /**
   * POST /v1/apps: create or update an app, or only plan it (`dryRun`). The
   * manifest goes as JSON when it is an object; as it is when it is text (YAML
   * or JSON, application/yaml unless `contentType` says otherwise), for the
   * server to parse and validate with line and column errors.
   */
  deploy(manifest: string | object, o: DeployQuery & { contentType?: string } = {}): Promise<DeployAnswer> {
    const contentType = o.contentType ?? (typeof manifest === 'string' ? 'application/yaml' : 'application/json');
    return this.request('POST', `/v1/apps${queryString({ dryRun: o.dryRun || undefined })}`, manifest, { contentType });
  }

  /** DELETE /v1/apps/NAME (`volumes`: its named volumes too) */
  remove(name: string, o: RemoveQuery = {}): Promise<RemoveAnswer> {
    return this.request('DELETE', `/v1/apps/${seg(name)}${queryString({ volumes: o.volumes || undefined })}`);
  }

  /** POST /v1/apps/NAME/undo */
  undo(name: string): Promise<UndoAnswer> {
    return this.request('POST', `/v1/apps/${seg(name)}/undo`);
  }

  /** GET /v1/apps/NAME/replicas (E_NOT_FOUND for an unknown app) */
  appReplicas(name: string): Promise<ReplicaRecord[]> {
    return this.request('GET', `/v1/apps/${seg(name)}/replicas`);
  }

  /** GET /v1/apps/NAME/autopilot: the autopilot's range, standing decision and latest evaluation. */
  autopilot(app: string): Promise<AutopilotView> {
    return this.request('GET', `/v1/apps/${seg(app)}/autopilot`);
  }

  /** GET /v1/apps/NAME/demand: measured demand per site against the declared, per route against the model. */
  demand(app: string): Promise<DemandView> {
    return this.request('GET', `/v1/apps/${seg(app)}/demand`);
  }

  /** GET /v1/apps/NAME/endpoints: healthy endpoints, nearest first from `site`. */
  endpoints(app: string, site: string, items?: number): Promise<RankedEndpoint[]> {
    return this.request('GET', `/v1/apps/${seg(app)}/endpoints${queryString({ site, items })}`);
  }

  /**
   * GET /v1/apps/NAME/logs: the response, its text unread (it streams; with
   * `follow` it never ends by itself, so no timeout applies). An error answer
   * is thrown as its OutpostError.
   */
  async logs(app: string, q: LogsQuery = {}): Promise<http.IncomingMessage> {
    return this.succeeded(await this.raw('GET', `/v1/apps/${seg(app)}/logs${queryString({ follow: q.follow ?? false, tail: q.tail ?? 200, container: q.container, replica: q.replica })}`));
  }

  /**
   * GET /v1/apps/NAME/exec, upgraded to a WebSocket: runs `r.cmd` in one of
   * the app's replicas (`r.replica`, or its first running one) through its
   * agent's connection. Answers once the control plane took the session (a
   * refusal is thrown as its OutpostError); the connection's `exited` is the
   * command's exit status. The ws module is loaded here, by what execs only.
   */
  async exec(app: string, r: ExecRequest): Promise<ExecConnection> {
    const { openExec } = await import('./exec-client.js');
    const path = `/v1/apps/${seg(app)}/exec${queryString({ replica: r.replica, container: r.container })}`;
    const { conn, server } = await openExec(this.servers.order(), this.token, this.ca, path, r);
    this.servers.answered(server);
    return conn;
  }

  /** GET /v1/backup: the response, its gzip'd body unread (it streams; silence for 60 s gives up). */
  async backup(): Promise<http.IncomingMessage> {
    return this.succeeded(await this.raw('GET', '/v1/backup', undefined, { timeoutMs: DEFAULT_TIMEOUT_MS }));
  }

  /** The response, its body unread, when it succeeded; an error answer is thrown as its OutpostError. */
  private async succeeded(res: http.IncomingMessage): Promise<http.IncomingMessage> {
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    let body: Partial<ApiErrorAnswer> | null = null;
    try { body = JSON.parse(await readAll(res)) as Partial<ApiErrorAnswer>; } catch { /* not JSON: the status says it */ }
    throw answerError(status, body);
  }

  /** GET /v1/replicas */
  replicas(q: ReplicaQuery = {}): Promise<ReplicaRecord[]> {
    return this.request('GET', `/v1/replicas${queryString(q)}`);
  }

  /** GET /v1/sites */
  sites(): Promise<SiteView[]> {
    return this.request('GET', '/v1/sites');
  }

  /** POST /v1/sites: add (or change) a site. */
  addSite(name: string, probe: string): Promise<SiteRecord> {
    const body: AddSiteBody = { name, probe };
    return this.request('POST', '/v1/sites', body);
  }

  /** GET /v1/secrets: names, versions, the apps that use each (never values) */
  secrets(): Promise<SecretView[]> {
    return this.request('GET', '/v1/secrets');
  }

  /** PUT /v1/secrets/NAME: a new value (its bytes); the apps that use it roll. */
  setSecret(name: string, value: Buffer): Promise<SetSecretAnswer> {
    const body: SecretBody = { value: value.toString('base64') };
    return this.request('PUT', `/v1/secrets/${seg(name)}`, body);
  }

  /** DELETE /v1/secrets/NAME (E_CONFLICT while an app uses it) */
  removeSecret(name: string): Promise<{ removed: string }> {
    return this.request('DELETE', `/v1/secrets/${seg(name)}`);
  }

  /** POST /v1/secrets/rotate-key */
  rotateSecretsKey(): Promise<RotateKeyAnswer> {
    return this.request('POST', '/v1/secrets/rotate-key');
  }

  /** DELETE /v1/sites/NAME */
  removeSite(name: string): Promise<RemoveSiteAnswer> {
    return this.request('DELETE', `/v1/sites/${seg(name)}`);
  }

  /** GET /v1/model */
  model(): Promise<ModelAnswer> {
    return this.request('GET', '/v1/model');
  }

  /** GET /v1/streams */
  streams(): Promise<StreamRow[]> {
    return this.request('GET', '/v1/streams');
  }

  /** GET /v1/streams/NAME: the window results held for a stream. */
  streamWindows(name: string, q: StreamWindowQuery = {}): Promise<HeldWindow[]> {
    return this.request('GET', `/v1/streams/${seg(name)}${queryString(q)}`);
  }

  // ---- pages of the list routes -----------------------------------------------

  /** One page of a list route: its items and the `after` of the next page (null on the last). */
  async page<P extends ListPath>(path: P, q: ListRoutes[P]['query'] = {}): Promise<Page<ListRoutes[P]['item']>> {
    const a = await this.exchange<ListRoutes[P]['item'][]>('GET', `${path}${queryString(q)}`);
    const next = a.headers[NEXT_AFTER];
    return { items: a.body, next: typeof next === 'string' && next !== '' ? next : null };
  }

  /**
   * Every item of a list route, a page at a time (`pageSize` items each,
   * 1 to 5000), following `x-next-after` until a page comes without it. A
   * control plane that does not page answers everything at once: one page.
   * Every page is yielded, an empty one included, so a caller knows the list
   * has begun.
   */
  async *pages<P extends ListPath>(path: P, q: ListRoutes[P]['query'] = {}, pageSize = DEFAULT_PAGE_SIZE): AsyncGenerator<ListRoutes[P]['item'][], void, undefined> {
    let after = q.after;
    for (;;) {
      const p = await this.page(path, { ...q, limit: pageSize, after });
      yield p.items;
      if (p.next === null) return;
      if (p.next === after) throw new OutpostError('E_INTERNAL', `the control plane at ${this.server} answered ${path} after "${after}" with the same next page again`);
      after = p.next;
    }
  }

  /** Every item of a list route, fetched page by page. */
  async listAll<P extends ListPath>(path: P, q: ListRoutes[P]['query'] = {}, pageSize = DEFAULT_PAGE_SIZE): Promise<ListRoutes[P]['item'][]> {
    const all: ListRoutes[P]['item'][] = [];
    for await (const items of this.pages(path, q, pageSize)) all.push(...items);
    return all;
  }

  // ---- the transport ------------------------------------------------------------

  /**
   * Any route, its answer cast to T: the typed methods above are built on it.
   * `body` goes as JSON; a string with a `contentType` goes as it is. Gives up
   * (E_NO_SERVER) when the connection is silent for `timeoutMs` (default
   * 60 s): a control plane that vanished must not hang a command for ever.
   */
  async request<T>(method: string, p: string, body?: unknown, o: RequestOptions = {}): Promise<T> {
    return (await this.exchange<T>(method, p, body, o)).body;
  }

  /** As `request`, with the answer's status and headers. */
  async exchange<T>(method: string, p: string, body?: unknown, o: RequestOptions = {}): Promise<Answer<T>> {
    const res = await this.raw(method, p, body, { timeoutMs: DEFAULT_TIMEOUT_MS, ...o });
    let text: string;
    try {
      text = await readAll(res);
    } catch (e) {
      throw e instanceof OutpostError ? e : new OutpostError('E_NO_SERVER', `the control plane at ${this.server} broke off its answer (${(e as Error).message})`);
    }
    const status = res.statusCode ?? 0;
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      throw new OutpostError('E_INTERNAL', `the control plane answered ${status} with a body that is not JSON`);
    }
    if (status < 200 || status >= 300) throw answerError(status, json as Partial<ApiErrorAnswer> | null);
    return { status, headers: res.headers, body: json as T };
  }

  /**
   * The response itself, its body unread: for streams (logs --follow, which
   * sets no timeout). With several URLs, the first that answers (see the top
   * of this file for when a request moves on).
   */
  async raw(method: string, p: string, body?: unknown, o: RequestOptions = {}): Promise<http.IncomingMessage> {
    const contentType = o.contentType ?? 'application/json';
    const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' && contentType !== 'application/json' ? body : JSON.stringify(body));
    const order = this.servers.order();
    const tried: Attempt[] = [];
    for (const [i, url] of order.entries()) {
      const more = i < order.length - 1;
      const r = await this.attempt(url, method, p, data, contentType, o.timeoutMs, more);
      if ('why' in r) {
        tried.push(r);
        // a request that may have been acted on is not sent twice
        if (r.sent && !SAFE_METHODS.has(method)) break;
        continue;
      }
      // an instance that cannot serve now (shutting down, cut off from its store) is passed over by what changes nothing
      if (r.statusCode === 503 && more && SAFE_METHODS.has(method)) {
        r.resume();
        tried.push({ url, why: 'HTTP 503', sent: true });
        continue;
      }
      // an instance that answered 503 is not the one to go back to first
      if (r.statusCode !== 503) this.servers.answered(url);
      return r;
    }
    throw noServer(method, p, tried);
  }

  /** One try at one URL: its response, or why there is none and whether the request may have reached it. */
  private attempt(server: string, method: string, p: string, data: Buffer | undefined, contentType: string, timeoutMs: number | undefined, more: boolean): Promise<http.IncomingMessage | Attempt> {
    const url = new URL(server + p);
    const secure = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      let sent = false;
      let why: string | null = null;
      let connecting: NodeJS.Timeout | undefined;
      const opened = () => { sent = true; clearTimeout(connecting); };
      const req = (secure ? https : http).request(url, {
        method,
        agent: secure ? this.httpsAgent : agents.http,
        headers: { authorization: `Bearer ${this.token}`, ...(data ? { 'content-type': contentType, 'content-length': data.length } : {}) },
      }, (res) => { opened(); resolve(res); });
      if (more) connecting = setTimeout(() => { why = `not connected within ${CONNECT_TIMEOUT_MS / 1000} s`; req.destroy(); }, CONNECT_TIMEOUT_MS);
      // the request leaves once the connection is open (TLS: once its handshake is done); a reused one is open already
      req.on('socket', (s) => {
        if (req.reusedSocket) opened();
        else s.once(secure ? 'secureConnect' : 'connect', opened);
      });
      req.on('error', (e: Error & { code?: string }) => {
        clearTimeout(connecting);
        if (e.code && TLS_ERRORS.test(e.code)) {
          return reject(new OutpostError('E_TLS', `the control plane at ${server} could not be verified (${e.message}): set OUTPOST_CA to its ca.crt (or OUTPOST_DATA_DIR to its data dir)`));
        }
        resolve({ url: server, why: why ?? (e.message || e.code || 'connection failed'), sent });
      });
      // silent this long, before or during the answer (a stream's reader sees this error)
      if (timeoutMs) req.setTimeout(timeoutMs, () => { why = `no answer within ${timeoutMs / 1000} s`; req.destroy(new Error(why)); });
      req.end(data);
    });
  }
}

/** An error answer as the OutpostError it carries; HTTP STATUS when it carries none. */
function answerError(status: number, body: Partial<ApiErrorAnswer> | null): OutpostError {
  const e = body?.error;
  return new OutpostError((e?.code ?? 'E_INTERNAL') as ErrorCode, e?.message ?? `HTTP ${status}`, { path: e?.path, details: e?.details });
}

export async function readAll(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
