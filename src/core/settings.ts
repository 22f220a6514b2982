// Every setting of Outpost's long-running processes (`outpost server`,
// `agent`, `hub`, `up`): one table per process, each setting with its flag,
// environment variable, config-file key (the table's key), type, default and
// meaning. src/config resolves them (flag > variable > file > default),
// src/cli/program.ts declares the flags from them, and
// docs/reference/config.md is generated from them (npm run docs).
//
// Pure data and parsers: no I/O, no process state, so the CLI can declare its
// flags from here without loading the config module or a YAML parser.
import type { EnvName } from './environment.js';
import { IDLE_LIMIT, RESPONSE_LIMIT, type ProxyLimit } from './proxy-limits.js';

/** How a setting's text (a flag, a variable) or YAML value (a config file) becomes its value. */
export interface Kind<T> {
  /** what a value must be (a bad one is told so, the reference shows it): "a number of ms >= 1000" */
  readonly want: string;
  /** the value, or undefined when `raw` is not one */
  parse(raw: unknown): T | undefined;
  /** the value as a config file would hold it (for --print-config and the docs' defaults) */
  toFile?(v: T): unknown;
  /** the only values it takes */
  readonly choices?: readonly string[];
  /** a file or directory: `~/` is the home directory, and a relative path is taken from the config file's directory (the working directory for flags and variables) */
  readonly path?: boolean;
}

export interface Setting<V = unknown> {
  readonly kind: Kind<NonNullable<V>>;
  /** the flag as commander declares it (`--node-timeout <ms>`, `--no-hub`); none: the setting has no flag */
  readonly flag?: string;
  readonly env?: EnvName;
  readonly default?: NonNullable<V>;
  /** the default as users read it, when it is worked out at run time (`the hostname`) */
  readonly defaultText?: string;
  /** no default: the process refuses to start without it */
  readonly required?: boolean;
  /** the flag's own help, when it says the opposite of the setting (`--no-hub`) */
  readonly flagHelp?: string;
  /** never printed (--print-config shows `***`) */
  readonly secret?: boolean;
  readonly meaning: string;
  /** never set: carries the value's type to ConfigOf */
  readonly _value?: V;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Table = Record<string, Setting<any>>;

/** The typed settings a table resolves to. */
export type ConfigOf<T extends Table> = { -readonly [K in keyof T]: T[K] extends Setting<infer V> ? V : never };

type Doc = Pick<Setting, 'flag' | 'flagHelp' | 'env' | 'defaultText' | 'secret' | 'meaning'>;

const withDefault = <T>(kind: Kind<T>, dflt: T, d: Doc): Setting<T> => ({ ...d, kind: kind as Kind<NonNullable<T>>, default: dflt as NonNullable<T> });
const optional = <T>(kind: Kind<T>, d: Doc): Setting<T | undefined> => ({ ...d, kind: kind as Kind<NonNullable<T>> });
const required = <T>(kind: Kind<T>, d: Doc): Setting<T> => ({ ...d, kind: kind as Kind<NonNullable<T>>, required: true });
/** The same setting with another default (one process's, not another's). */
const redefault = <V>(s: Setting<V>, dflt: NonNullable<V>, meaning = s.meaning): Setting<V> => ({ ...s, default: dflt, meaning });

// ---- kinds ----

function numberOf(raw: unknown): number | undefined {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** A number: `above` is an exclusive lower bound, `min` and `max` inclusive ones. */
export function num(o: { min?: number; above?: number; max?: number; integer?: boolean; unit?: string } = {}): Kind<number> {
  const bounds = o.min !== undefined && o.max !== undefined ? ` from ${o.min} to ${o.max}`
    : [o.above !== undefined ? ` > ${o.above}` : '', o.min !== undefined ? ` >= ${o.min}` : '', o.max !== undefined ? ` <= ${o.max}` : ''].join('');
  const noun = o.integer ? 'an integer' : 'a number';
  return {
    want: `${noun}${o.unit ? ` of ${o.unit}` : ''}${bounds}`,
    parse(raw) {
      const n = numberOf(raw);
      if (n === undefined || (o.integer && !Number.isInteger(n))) return undefined;
      if ((o.min !== undefined && n < o.min) || (o.above !== undefined && n <= o.above) || (o.max !== undefined && n > o.max)) return undefined;
      return n;
    },
  };
}

const ms = (o: { min?: number; above?: number }) => num({ ...o, unit: 'ms' });
const port = (): Kind<number> => ({ ...num({ min: 0, max: 65535, integer: true }), want: 'a port from 0 to 65535 (0: any free one)' });

/** Text: a YAML number is taken as its digits (a site called 42). */
export function str(o: { pattern?: RegExp; want?: string } = {}): Kind<string> {
  return {
    want: o.want ?? 'a non-empty string',
    parse(raw) {
      const s = typeof raw === 'string' ? raw : typeof raw === 'number' && Number.isFinite(raw) ? String(raw) : undefined;
      return s !== undefined && s !== '' && (!o.pattern || o.pattern.test(s)) ? s : undefined;
    },
  };
}

export const pathKind: Kind<string> = { ...str({ want: 'a path' }), path: true };

export function oneOf<const C extends string>(choices: readonly C[]): Kind<C> {
  return {
    want: `one of ${choices.join(', ')}`,
    choices,
    parse: (raw) => (typeof raw === 'string' && (choices as readonly string[]).includes(raw) ? raw as C : undefined),
  };
}

export const bool: Kind<boolean> = {
  want: 'true or false',
  parse: (raw) => (raw === true || raw === 'true' || raw === '1' ? true : raw === false || raw === 'false' || raw === '0' ? false : undefined),
};

/** `HOST:PORT`, `[v6]:PORT`, `:PORT` (every address) or a bare port (127.0.0.1). */
export const listenKind: Kind<{ host: string; port: number }> = {
  want: 'HOST:PORT (or a port)',
  parse(raw) {
    const s = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw : '';
    const m = /^(.*):(\d+)$/.exec(s);
    const host = m ? m[1]!.replace(/^\[|\]$/g, '') || '0.0.0.0' : '127.0.0.1';
    const p = m ? m[2]! : s;
    const n = /^\d+$/.test(p) ? Number(p) : NaN;
    return Number.isInteger(n) && n <= 65535 ? { host, port: n } : undefined;
  },
  toFile: (v) => `${v.host.includes(':') ? `[${v.host}]` : v.host}:${v.port}`,
};

/** Node labels: `k=v,k=v` (a flag, a variable) or a map (a config file). */
export const labelsKind: Kind<Record<string, string>> = {
  want: 'k=v,k=v (or a map of strings)',
  parse(raw) {
    const out: Record<string, string> = {};
    if (typeof raw === 'string') {
      for (const part of raw.split(',').filter(Boolean)) {
        const i = part.indexOf('=');
        if (i <= 0) return undefined;
        out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
      }
      return out;
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return undefined;
      out[k] = String(v);
    }
    return out;
  },
};

/** A list: `a,b` (a flag, a variable) or a list (a config file), every item passing `ok`. */
function listKind(want: string, ok: (item: string) => boolean): Kind<string[]> {
  return {
    want,
    parse(raw) {
      const items = typeof raw === 'string' ? raw.split(',').map((x) => x.trim()).filter(Boolean) : Array.isArray(raw) ? raw : undefined;
      if (!items || items.some((x) => typeof x !== 'string' || !ok(x))) return undefined;
      return [...new Set(items as string[])];
    },
  };
}

const noDotDot = (p: string) => !p.split('/').includes('..');

/**
 * The control plane's URLs: `URL,URL` (a flag, a variable) or a list (a
 * config file). Several are instances of one control plane, tried in turn; all
 * of one scheme, since it decides how a node proves who it is (a certificate
 * over https, a secret over http).
 */
export const serverUrlsKind: Kind<string[]> = {
  want: 'one or more http:// or https:// URLs (comma-separated; a list in a config file), all http:// or all https://',
  parse(raw) {
    const items = typeof raw === 'string' ? raw.split(',').map((x) => x.trim()) : Array.isArray(raw) ? raw : [];
    const urls = items.map((x) => (typeof x === 'string' ? controlPlaneUrl(x) : undefined));
    if (urls.length === 0 || urls.some((u) => u === undefined)) return undefined;
    const list = [...new Set(urls as string[])];
    return list.every((u) => u.startsWith('https:')) || list.every((u) => u.startsWith('http:')) ? list : undefined;
  },
  toFile: (v) => v.join(','),
};

/** An http(s) URL as requests are built on it (no trailing slash), or undefined when it is none. */
function controlPlaneUrl(s: string): string | undefined {
  if (!URL.canParse(s)) return undefined;
  const u = new URL(s);
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname || u.search || u.hash || u.username) return undefined;
  return s.replace(/\/+$/, '');
}

// ---- settings shared by several processes ----

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** MiB kept free on an engine's image store by default (DockerDriver's own default too). */
export const DISK_RESERVE_MB = 512;

const dataDir = withDefault(pathKind, '~/.outpost', { flag: '--data-dir <dir>', env: 'OUTPOST_DATA_DIR', meaning: 'state directory' });
const logLevel = withDefault(oneOf(LOG_LEVELS), 'info', { env: 'OUTPOST_LOG_LEVEL', meaning: 'the log level; logs are JSON lines on stderr' });
const runtime = withDefault(oneOf(['auto', 'docker', 'process'] as const), 'auto', { flag: '--runtime <runtime>', meaning: 'auto, docker (Docker or Podman) or process' });
const nodeTimeoutMs = withDefault(ms({ min: 1000 }), 15_000, { flag: '--node-timeout <ms>', env: 'OUTPOST_NODE_TIMEOUT_MS', meaning: 'a node unreachable this long is lost: its replicas are rescheduled (apps with onNodeLoss: reschedule)' });
const hubHttpPort = withDefault(port(), 7081, { flag: '--hub-http-port <port>', env: 'OUTPOST_HUB_HTTP_PORT', meaning: 'the data hub\'s HTTP port (0: any free one)' });
const hubMqttPort = withDefault(port(), 1883, { flag: '--hub-mqtt-port <port>', env: 'OUTPOST_HUB_MQTT_PORT', meaning: 'the embedded MQTT broker\'s port (0: any free one)' });
const hubMqttUrl = optional(str({ pattern: /^mqtts?:\/\//, want: 'an mqtt:// or mqtts:// URL'}), { flag: '--hub-mqtt-url <url>', meaning: 'subscribe to this external broker (e.g. Mosquitto) instead of embedding one' });
const registryAuth = optional(pathKind, { flag: '--registry-auth <file>', env: 'OUTPOST_REGISTRY_AUTH', meaning: 'a Docker-style auth file (`{"auths": {"host:port": {"auth": base64("user:password")}}}`, as `docker login` writes) whose credentials go with image pulls from those registries; it must be mode 0600 or the process refuses to start' });
const hubConfig = optional(pathKind, { flag: '--hub-config <file>', meaning: 'YAML: streams the hub runs besides its apps\', retention, mqttUrl, devices, anonymous, allowOrigins, tls (hub.md)' });
const hubMqttsPort = withDefault(port(), 8883, { flag: '--hub-mqtts-port <port>', env: 'OUTPOST_HUB_MQTTS_PORT', meaning: 'the embedded broker\'s MQTT-over-TLS port, when the hub has a certificate (0: any free one)' });
const hubAnonymous = withDefault(bool, false, { flag: '--hub-anonymous', env: 'OUTPOST_HUB_ANONYMOUS', meaning: 'the data hub serves clients without credentials, with every right: only for a closed network' });
/** The agent's timers and disk reserve (tests and labs shorten the timers). */
const agentTuning = {
  probeIntervalMs: withDefault(ms({ above: 0 }), 30_000, { env: 'OUTPOST_PROBE_INTERVAL_MS', meaning: 'how often the agent times TCP connects to every site (it also probes on connect and when the site list changes)' }),
  stagesIntervalMs: withDefault(ms({ above: 0 }), 10_000, { env: 'OUTPOST_STAGES_INTERVAL_MS', meaning: 'how often the agent asks replicas of apps with `metrics.stages` for their per-item stage costs' }),
  demandWindowMs: withDefault(num({ min: 1000, max: 600_000, integer: true, unit: 'ms' }), 10_000, { env: 'OUTPOST_DEMAND_WINDOW_MS', meaning: 'the site proxy\'s counting window: requests and latencies per app are reported to the control plane as each closes (measured demand, docs/routing.md)' }),
  inventoryIntervalMs: withDefault(ms({ above: 0 }), 30_000, { env: 'OUTPOST_INVENTORY_INTERVAL_MS', meaning: 'how often the agent reports the images and layers it holds' }),
  diskReserveMb: withDefault(num({ min: 0, unit: 'MiB' }), DISK_RESERVE_MB, { env: 'OUTPOST_DISK_RESERVE_MB', meaning: 'MiB kept free on the image store (container runtime): a pull that would go below is refused with `E_DISK_FULL`' }),
};

/** What the agent lets replicas reach of its node (src/agent/policy.ts); all off, as Nomad and balena have it. */
const nodePolicy = {
  allowDevices: withDefault(listKind('device paths or globs under /dev, comma-separated (a list in a config file)', (x) => x.startsWith('/dev/') && noDotDot(x)), [], { flag: '--allow-devices <globs>', defaultText: 'none', meaning: 'the devices replicas may be given (`devices` in the manifest): paths or globs under /dev, where `*` and `?` stay within one path segment (`/dev/ttyUSB*,/dev/video*`). The agent reports the ones present when it connects (a device plugged in later counts from its next connection), and only apps whose devices are all there are placed here' }),
  allowHostPaths: withDefault(listKind('absolute paths without "..", comma-separated (a list in a config file)', (x) => x.startsWith('/') && noDotDot(x)), [], { flag: '--allow-host-paths <paths>', defaultText: 'none', meaning: 'the host paths bind mounts may come from (`volumes: [{ hostPath }]`): each path allows itself and what is below it, judged after symlinks are resolved on the node' }),
  allowPrivileged: withDefault(bool, false, { flag: '--allow-privileged', meaning: 'replicas may run privileged, with `networkMode: host` or with `capAdd: [ALL]`' }),
};

/** Who process-runtime replicas run as (src/agent/drivers/confine.ts). */
const replicaIdentity = {
  allowRoot: withDefault(bool, false, { flag: '--allow-root', env: 'OUTPOST_ALLOW_ROOT', meaning: 'process runtime: a root agent runs replicas as root (its own user) instead of `replicaUser`' }),
  replicaUser: withDefault(str(), 'nobody', { flag: '--replica-user <user>', meaning: 'process runtime: the user (name, or uid[:gid]) a root agent runs replicas as; never root (see allowRoot). An agent that is not root runs them as itself' }),
};

/** The site proxy for exposed apps (src/agent/proxy, docs/routing.md). */
const proxy = withDefault(oneOf(['on', 'off'] as const), 'on', { flag: '--proxy <mode>', meaning: 'the site proxy: on, every app with `expose` is served on its port at the bind address and forwarded to the nearest healthy replica; off, this node serves none (the control plane sends it no route tables)' });

/** The site proxy's time limits (src/core/proxy-limits.ts, docs/routing.md). */
const limitKind = (l: ProxyLimit) => num({ min: l.min, max: l.max, integer: true, unit: 'ms' });
const proxyLimits = {
  proxyResponseTimeoutMs: withDefault(limitKind(RESPONSE_LIMIT), RESPONSE_LIMIT.default, { flag: '--proxy-response-timeout <ms>', env: 'OUTPOST_PROXY_RESPONSE_TIMEOUT_MS', meaning: 'the site proxy answers 504 `E_UPSTREAM_TIMEOUT` when a replica has not begun its answer (or accepted a WebSocket upgrade) this long after the request was sent' }),
  proxyIdleTimeoutMs: withDefault(limitKind(IDLE_LIMIT), IDLE_LIMIT.default, { flag: '--proxy-idle-timeout <ms>', env: 'OUTPOST_PROXY_IDLE_TIMEOUT_MS', meaning: 'the site proxy closes a spliced TCP or WebSocket connection with no byte either way this long' }),
};

/** The agent's DNS answers for exposed apps (src/agent/proxy/dns.ts, docs/routing.md#dns); off unless asked for. */
const dnsListen = optional(listenKind, { flag: '--dns-listen <host:port>', defaultText: 'off', meaning: 'serve DNS (UDP and TCP) at this address: `APP.outpost` answers the address of the nearest healthy endpoint of an exposed app, by the route table the site proxy serves (TTL 5 s); names outside `outpost.` are refused. Needs `proxy` on. Port 53 needs the privilege to bind it' });

/** Prometheus metrics in plain HTTP (docs/observability.md); loopback unless the operator says the network is private. */
function metricsSettings(note: string) {
  return {
    metricsListen: optional(listenKind, { flag: '--metrics-listen <host:port>', meaning: `serve Prometheus metrics (docs/observability.md) at GET /metrics of this address, in plain HTTP, without a token: ${note}. An address other than loopback needs \`metricsPublic\` (\`--metrics-public\`)` }),
    metricsPublic: withDefault(bool, false, { flag: '--metrics-public', meaning: '`metricsListen` may be an address other than loopback: anyone who reaches it reads the metrics (app, node and site names, RTTs), so only on a private network' }),
  };
}

// ---- one table per process; the order is the flags' order in `--help` ----

export const SERVER_SETTINGS = {
  dataDir,
  store: optional(str({ pattern: /^postgres(ql)?:\/\/\S+$/, want: 'a postgres:// URL' }), { flag: '--store <url>', env: 'OUTPOST_STORE', secret: true, defaultText: 'the SQLite file `outpost.db` in the data dir', meaning: 'where the control plane keeps its state: a PostgreSQL database (`postgres://user:password@host:5432/db`; PostgreSQL 15 or later, one `outpost server` per database for now). The password is better given as PGPASSWORD or in ~/.pgpass than in the URL' }),
  listen: withDefault(listenKind, { host: '127.0.0.1', port: 7070 }, { flag: '--listen <host:port>', meaning: 'listen address (0.0.0.0:7070 for agents on other machines)' }),
  nodeTimeoutMs,
  streamRetentionDays: withDefault(num({ above: 0, unit: 'days' }), 30, { flag: '--stream-retention-days <days>', meaning: 'window results from the data hubs older than this are deleted' }),
  auditRetentionDays: withDefault(num({ above: 0, unit: 'days' }), 90, { flag: '--audit-retention-days <days>', meaning: 'audit log entries older than this are deleted (by the leader, every 10 minutes)' }),
  eventRetentionDays: withDefault(num({ above: 0, unit: 'days' }), 30, { flag: '--event-retention-days <days>', meaning: 'events older than this are deleted (by the leader, every 10 minutes; the newest is always kept)' }),
  admitRate: withDefault(num({ above: 0, unit: 'handshakes per second' }), 2000, { flag: '--admit-rate <n>', env: 'OUTPOST_ADMIT_RATE', meaning: 'agent handshakes admitted per second; those over it are told when to come back (503, Retry-After)' }),
  admitBurst: withDefault(num({ min: 1, integer: true }), 500, { flag: '--admit-burst <n>', env: 'OUTPOST_ADMIT_BURST', meaning: 'agent handshakes admitted at once after a quiet spell' }),
  insecure: withDefault(bool, false, { flag: '--insecure', meaning: 'plain HTTP instead of TLS (a warning is logged): tokens and assignments cross the network readable; only for a closed network or behind a TLS proxy' }),
  tlsCert: optional(pathKind, { flag: '--tls-cert <file>', meaning: 'an operator\'s serving certificate (PEM, with its chain) instead of the one Outpost issues from its own CA' }),
  tlsKey: optional(pathKind, { flag: '--tls-key <file>', meaning: 'the key of `--tls-cert`' }),
  tlsCa: optional(pathKind, { flag: '--tls-ca <file>', meaning: 'the CA that signed `--tls-cert`: written to `ca.crt` in the data dir for clients, and its fingerprint goes into join tokens' }),
  tlsSan: optional(str(), { flag: '--tls-san <names>', meaning: 'more DNS names or IPs (comma-separated) the serving certificate covers, besides localhost, the hostname and the listen address (all interfaces\' when listening on 0.0.0.0)' }),
  approveNodes: withDefault(bool, false, { flag: '--approve-nodes', meaning: 'a newly enrolled node waits (state pending) for `outpost node approve NAME` before it gets any replica' }),
  nodeCertTtlMs: withDefault(ms({ min: 600_000 }), 86_400_000, { flag: '--node-cert-ttl <ms>', meaning: 'lifetime of node certificates; agents renew at half-life over their live connection' }),
  secretsKeyFile: optional(pathKind, { flag: '--secrets-key-file <file>', defaultText: '`secrets.key` in the data dir, made at the first start', meaning: 'the envelope key secrets are encrypted with (32 bytes, mode 0600): a file the operator keeps, e.g. on another disk than the store; `outpost secret rotate-key` replaces it' }),
  sharedJoinToken: withDefault(bool, false, { flag: '--shared-join-token', meaning: 'also keep one join token with no TTL and no use limit in `join.token` (the old single token): only if you accept that anyone holding it can enrol nodes' }),
  ...metricsSettings('the same metrics as the API\'s GET /metrics, which needs a token with `metrics:read`'),
  logLevel,
};

/** A node's site: where its clients are (demand is counted per site, the autopilot plans for sites). */
const site = optional(str(), { flag: '--site <site>', meaning: 'the site this node sits at' });

export const AGENT_SETTINGS = {
  server: required(serverUrlsKind, { flag: '--server <urls>', meaning: 'control plane URL, e.g. https://cp.example:7070 (http:// only for a control plane started with --insecure); several instances of one control plane comma-separated (`https://cp1:7070,https://cp2:7070`): enrolment and the connection try them in turn, and the agent moves to the next when the one it is connected to stops answering' }),
  joinToken: optional(str(), { env: 'OUTPOST_JOIN_TOKEN', secret: true, meaning: 'a join token (`outpost token create`); needed to enrol, not afterwards. No flag: a process\'s arguments are readable by every process on the node' }),
  joinTokenFile: optional(pathKind, { flag: '--join-token-file <file>', meaning: 'a file holding the join token (wins over OUTPOST_JOIN_TOKEN)' }),
  name: optional(str(), { flag: '--name <name>', defaultText: 'the hostname', meaning: 'node name' }),
  site,
  labels: withDefault(labelsKind, {}, { flag: '--labels <k=v,...>', defaultText: 'none', meaning: 'node labels for placement constraints' }),
  ...nodePolicy,
  runtime,
  dataDir,
  advertise: withDefault(str(), '127.0.0.1', { flag: '--advertise <host>', meaning: 'address clients use to reach this node\'s replicas' }),
  bind: optional(str(), { flag: '--bind <host>', defaultText: '127.0.0.1 when advertising 127.0.0.1, else 0.0.0.0', meaning: 'address published ports bind to' }),
  network: withDefault(oneOf(['bridge', 'host'] as const), 'bridge', { flag: '--network <mode>', meaning: 'containers: bridge (ports published on the host) or host (they share the engine\'s network namespace)' }),
  registryAuth,
  hub: withDefault(bool, true, { flag: '--no-hub', flagHelp: 'do not start the data hub beside the agent', meaning: 'start the data hub beside the agent' }),
  hubBind: withDefault(str(), '127.0.0.1', { flag: '--hub-bind <host>', meaning: 'address the data hub listens on (0.0.0.0 for devices on the network; its URLs then name --advertise)' }),
  hubHttpPort,
  hubMqttPort,
  hubMqttsPort,
  hubMqttUrl,
  hubConfig,
  proxy,
  ...proxyLimits,
  dnsListen,
  hubTls: withDefault(oneOf(['auto', 'on', 'off'] as const), 'auto', { flag: '--hub-tls <mode>', meaning: 'the hub\'s HTTPS and MQTT over TLS with the node\'s hub certificate (from the control plane\'s hub CA): on, off, or auto (on when --hub-bind is not loopback and the control plane is https; a hub config\'s own tls wins)' }),
  ...replicaIdentity,
  hubAnonymous,
  ...agentTuning,
  ...metricsSettings('the agent\'s own metrics; none are served without it'),
  logLevel,
};

export const HUB_SETTINGS = {
  dataDir,
  bind: withDefault(str(), '127.0.0.1', { flag: '--bind <host>', meaning: 'address to listen on' }),
  advertise: optional(str(), { flag: '--advertise <host>', defaultText: 'the bind address; 127.0.0.1 when binding 0.0.0.0', meaning: 'address devices use' }),
  hubHttpPort,
  hubMqttPort,
  hubMqttsPort,
  hubMqttUrl,
  hubConfig: { ...hubConfig, meaning: 'YAML: streams, retention, mqttUrl, devices, anonymous, allowOrigins, tls (hub.md)' },
  hubAnonymous,
  logLevel,
};

export const UP_SETTINGS = {
  dataDir,
  site: { ...site, meaning: 'the site the local node sits at (its proxy\'s requests count as this site\'s demand; without one the autopilot has nothing to plan for)' },
  port: withDefault(port(), 7070, { flag: '--port <port>', meaning: 'API port (on 127.0.0.1)' }),
  runtime,
  registryAuth,
  ...nodePolicy,
  proxy: { ...proxy, meaning: `${proxy.meaning} (on 127.0.0.1)` },
  ...proxyLimits,
  demo: withDefault(bool, true, { flag: '--no-demo', flagHelp: 'do not deploy examples/sensor-stats', meaning: 'deploy examples/sensor-stats once up' }),
  nodeTimeoutMs,
  hubHttpPort,
  hubMqttPort,
  ...replicaIdentity,
  ...agentTuning,
  logLevel: redefault(logLevel, 'warn'),
};

/** The processes, as the reference shows them. */
export const PROCESSES = {
  server: { command: 'outpost server', settings: SERVER_SETTINGS as Table },
  agent: { command: 'outpost agent', settings: AGENT_SETTINGS as Table },
  hub: { command: 'outpost hub', settings: HUB_SETTINGS as Table },
  up: { command: 'outpost up', settings: UP_SETTINGS as Table },
} as const;

export type ProcessName = keyof typeof PROCESSES;

/** A value as a config file would hold it. */
export function fileValue<T>(kind: Kind<T>, v: T): unknown {
  return kind.toFile ? kind.toFile(v) : v;
}

/** A setting's default as users read it, or '' when it has none. */
export function defaultText(s: Setting): string {
  if (s.defaultText) return s.defaultText;
  if (s.default === undefined) return '';
  const v = fileValue(s.kind, s.default);
  return typeof v === 'string' ? v : JSON.stringify(v);
}
