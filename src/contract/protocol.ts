// The agent protocol: the messages on an agent's one long-lived WebSocket
// (JSON text), as zod schemas both sides import. Desired state flows down as
// the node's whole assignment set (level-triggered: applying it twice changes
// nothing); status, timings and log data flow up.
//
// Versioning: the major version is the WebSocket subprotocol (`outpost.v1`),
// negotiated at the upgrade; a control plane refuses an agent that offers no
// major it speaks (E_PROTOCOL). Within a major, fields are only ever added as
// optional, and unknown fields are dropped, not refused: a newer agent works
// with an older control plane of the same major and the other way round.
//
// Every string, array and map has a bound: one message cannot make the
// control plane store or loop over more than a node could honestly report.
import { z } from 'zod';
import { NAME_RE } from '../core/names.js';
import { appSchema } from '../core/manifest.js';
import { MAX_ROUTED_APPS } from '../core/routes.js';
import { deviceSchema } from '../core/devices.js';
import { policySchema } from '../core/nodepolicy.js';

export const AGENT_PATH = '/v1/agent/connect';
export const PROTOCOL_MAJOR = 1;
export const SUBPROTOCOL = `outpost.v${PROTOCOL_MAJOR}`;
/** the request header naming the node at the upgrade, so admission knows who is knocking before any message */
export const NODE_HEADER = 'x-outpost-node';
/** an upgrade refused for load carries this (and Retry-After in whole seconds) */
export const RETRY_HEADER = 'x-retry-after-ms';
/** the largest message either side sends (a status for every replica of a full node fits) */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** the most bytes of exec input or output one message carries (base64 in `data`) */
export const EXEC_CHUNK_BYTES = 64 * 1024;

const MAX_LIST = 10_000;
const str = (max = 256) => z.string().max(max);
const ms = z.number().finite().nonnegative();
const num = z.number().finite();
/** a map with at most `max` keys */
const boundedRecord = <T extends z.ZodTypeAny>(v: T, max = 1000, key: z.ZodString = str(256)) =>
  z.record(key, v).refine((o) => Object.keys(o).length <= max, { message: `at most ${max} entries` });

const layer = z.object({ digest: str(200), bytes: z.number().int().nonnegative() });
const layers = z.array(layer).max(MAX_LIST);
/** the names a node's hub asks its serving certificate to cover (checked in full where it is issued) */
export const hubNames = z.array(str(253)).max(8);
const replicaError = z.object({ code: str(64), message: str(4096) });
/** an exec session's id, chosen by the control plane */
const sid = str(64);
/** exec bytes, base64 */
const execData = z.string().max(Math.ceil(EXEC_CHUNK_BYTES / 3) * 4);
const termSize = z.number().int().min(1).max(10_000);

export const nodeInfoSchema = z.object({
  name: z.string().regex(NAME_RE, 'node names are [a-z0-9-], 1-63 characters'),
  hostname: str(),
  arch: str(32),
  cpus: z.number().finite().positive().max(4096),
  memoryMiB: z.number().finite().positive().max(64 * 1024 * 1024),
  labels: boundedRecord(str(), 64, str(63)),
  site: z.string().regex(NAME_RE).nullable(),
  runtime: z.enum(['docker', 'process']),
  address: str(),
  images: z.array(str(512)).max(MAX_LIST),
  layers,
  imageLayers: boundedRecord(layers, 2000, str(512)),
  agentVersion: str(64),
  hostId: str().optional(),
  hub: z.object({ http: str(), mqtt: str() }).nullable().optional(),
  /** what the agent allows; an agent from before policies sends none, and is given nothing that needs one */
  policy: policySchema.optional(),
  /** the device paths on the node that its policy allows */
  devices: z.array(str(256)).max(MAX_LIST).optional(),
});

const timings = z.object({ imageMs: ms.nullable().optional(), containerMs: ms.nullable().optional(), engineMs: ms.nullable().optional() });

export const replicaStatusSchema = z.object({
  id: str(128),
  state: z.enum(['pending', 'pulling', 'creating', 'starting', 'running', 'failed', 'stopped']),
  endpoint: str(512).nullable().optional(),
  ready: z.boolean().optional(),
  restarts: z.number().int().nonnegative().optional(),
  measured: timings.optional(),
  startedAt: num.optional(),
  progress: z.object({ bytes: z.number().nonnegative(), total: z.number().nonnegative().nullable(), status: str(512).optional() }).nullable().optional(),
  error: replicaError.nullable().optional(),
  lastExit: replicaError.nullable().optional(),
});

const streamStats = z.object({ pointsIn: ms, bytesIn: ms, rejected: ms, late: ms, filtered: ms, windows: ms });

export const hubStatsSchema = z.object({
  hubId: str(128),
  pointsIn: ms,
  bytesIn: ms,
  rejected: boundedRecord(ms, 64, str(64)),
  windows: ms,
  bytesForwarded: ms,
  reduction: num.nullable(),
  queueDepth: ms,
  oldestUnsentMs: ms.nullable(),
  rawBytes: ms,
  streams: boundedRecord(streamStats, 256, str(128)),
  broker: z.object({ queued: ms, queuedBytes: ms, queuedClients: ms, droppedPerClient: ms, droppedTotal: ms }).nullable().optional(),
  bridge: z.object({ connected: z.boolean(), windowsSent: ms, pointsSent: ms, windowsWaiting: ms, lostBatches: ms, lastError: str(1024).nullable() }).nullable().optional(),
});

const perItemUs = z.object({ process: ms, storage: ms, compute: ms });
const appName = z.string().regex(NAME_RE);
const listenerState = z.object({ app: appName, port: z.number().int().min(1).max(65535), protocol: z.enum(['http', 'tcp']), state: z.enum(['listening', 'refused']), error: replicaError.nullable().optional() });
/** a site proxy's table: each exposed app with its endpoints, nearest first (src/core/routes.ts) */
export const appRouteSchema = z.object({
  app: appName, port: z.number().int().min(1).max(65535), protocol: z.enum(['http', 'tcp']), drainMs: z.number().int().nonnegative().max(600_000),
  endpoints: z.array(z.object({ replica: str(128), node: appName, endpoint: str(512) })).max(64),
});
/** a latency sketch (src/core/sketch.ts): a window's buckets densely from the lowest used (ms from 1 us to a day span ~310 buckets) */
const sketchDoc = z.object({
  n: z.number().int().nonnegative(), sum: ms, max: ms, zero: z.number().int().nonnegative(),
  o: z.number().int().min(-1000).max(1000), c: z.array(z.number().int().nonnegative()).max(400),
});
const statusCount = z.number().int().nonnegative();
/** one app's requests through a site proxy in a window, by the node that answered ('' for none) */
const demandEntry = z.object({
  app: appName, node: z.union([appName, z.literal('')]),
  requests: z.number().int().nonnegative(), errors: z.number().int().nonnegative(),
  status: z.object({ '2xx': statusCount, '3xx': statusCount, '4xx': statusCount, '5xx': statusCount }),
  connect: sketchDoc, firstByte: sketchDoc, total: sketchDoc,
});
/** the site proxy's closed windows a `demand` message carries at most (an agent keeps no more while disconnected) */
export const DEMAND_BACKLOG = 30;
/** (app, answering node) pairs in one window at most (an agent drops the rest, counted) */
export const DEMAND_ENTRIES = 1000;
const windowDoc = boundedRecord(z.union([num, str(256), z.null()]), 64, str(64));

export const agentToServerSchema = z.discriminatedUnion('type', [
  /** `features`: the control-plane messages added within this major that this agent takes (none is sent to an agent that does not list it) */
  z.object({ type: z.literal('register'), node: nodeInfoSchema, features: z.array(str(64)).max(64).optional() }),
  z.object({ type: z.literal('status'), replicas: z.array(replicaStatusSchema).max(MAX_LIST), pulled: z.object({ bytes: ms, ms }).nullable().optional() }),
  z.object({ type: z.literal('images'), images: nodeInfoSchema.shape.images, layers, imageLayers: nodeInfoSchema.shape.imageLayers }),
  z.object({ type: z.literal('rtt'), rttMs: boundedRecord(ms, 1000, str(63)) }),
  z.object({ type: z.literal('stages'), app: z.string().regex(NAME_RE), perItemUs }),
  z.object({ type: z.literal('logs.data'), reqId: str(64), data: z.string().max(1024 * 1024) }),
  z.object({ type: z.literal('logs.end'), reqId: str(64), error: str(4096).optional() }),
  /** window results, oldest first, each once until acknowledged (re-sent after a reconnect) */
  z.object({ type: z.literal('windows'), hubId: str(128), items: z.array(z.object({ seq: z.number().int().nonnegative(), doc: windowDoc })).max(MAX_LIST) }),
  z.object({ type: z.literal('hub'), stats: hubStatsSchema }),
  /** a certificate request for the node's name, signed by its key (renewal over the live connection) */
  z.object({ type: z.literal('renew'), csr: str(8192), hub: hubNames.optional() }),
  /** identity tokens wanted for these replicas of the node's (at their start, and again at half a token's life) */
  z.object({ type: z.literal('identity'), replicas: z.array(str(128)).max(MAX_LIST) }),
  /** an exec session's command runs (its output follows) */
  z.object({ type: z.literal('exec.started'), sid }),
  /** output of an exec session, within the window the control plane granted */
  z.object({ type: z.literal('exec.data'), sid, stream: z.enum(['stdout', 'stderr']), data: execData }),
  /** input bytes of an exec session handed to its command: the control plane may send that many more */
  z.object({ type: z.literal('exec.ack'), sid, bytes: z.number().int().nonnegative() }),
  /** an exec session ended: its command's exit code (128 + N for signal N), or null with why it could not run */
  z.object({ type: z.literal('exec.exit'), sid, code: z.number().int().min(0).max(255).nullable(), error: replicaError.optional() }),
  /**
   * the site proxy serves route table `seq`; `busy`: replicas no longer in it
   * that still have requests in flight here (sent again, shorter, as they finish)
   */
  z.object({ type: z.literal('routes.ack'), seq: z.number().int().nonnegative(), busy: z.array(str(128)).max(MAX_LIST) }),
  /** the site proxy's listeners, whole, whenever one changes (a port in use: refused, tried again) */
  z.object({ type: z.literal('proxy'), listeners: z.array(listenerState).max(1000) }),
  /**
   * the site proxy's closed windows (`ms` long, from `start`, epoch ms), each
   * sent once and again only after a reconnect until acknowledged
   * (demand.ack): per app and answering node, requests, errors, status
   * classes and latency sketches (only to a control plane whose welcome lists `demand`)
   */
  z.object({
    type: z.literal('demand'),
    windows: z.array(z.object({ start: z.number().int().nonnegative(), ms: z.number().int().min(1000).max(600_000), entries: z.array(demandEntry).max(DEMAND_ENTRIES) })).min(1).max(DEMAND_BACKLOG),
  }),
]);

export type AgentToServer = z.infer<typeof agentToServerSchema>;

export const assignmentSchema = z.object({
  id: str(128),
  app: z.string().regex(NAME_RE),
  specHash: str(128),
  spec: appSchema,
  /** bytes of the image's layers this node lacks, when some node has reported the image (the disk check before a pull) */
  imageBytes: z.number().nonnegative().nullable().optional(),
  /** the secrets the spec references, with their values (base64, at most 64 KiB each decoded) */
  secrets: z.array(z.object({
    name: z.string().regex(NAME_RE), version: z.number().int().positive(), value: z.string().max(90_000),
    env: str(256).optional(), file: str(4096).optional(),
  }).strict()).max(64).optional(),
  /** retired, draining: keep it running until it leaves the set */
  draining: z.boolean().optional(),
});

/** the public key of workload identity tokens, as a JWK */
export const identityKeySchema = z.object({ kty: z.literal('EC'), crv: z.literal('P-256'), x: str(64), y: str(64), kid: str(64), alg: z.literal('ES256'), use: z.literal('sig') });

const siteSchema = z.object({ name: z.string().regex(NAME_RE), probe: str(300), createdAt: num });

/** What the control plane sends; the agent validates every message against it (a message that fails is refused and counted). */
export const serverToAgentSchema = z.discriminatedUnion('type', [
  /** `features`: the messages added within this major that the control plane takes (an agent sends none of them to one that does not: it would be refused) */
  z.object({ type: z.literal('welcome'), node: z.string().regex(NAME_RE), protocol: str(64).optional(), features: z.array(str(64)).max(64).optional() }),
  /** the node's whole assignment set; `version` changes whenever the set does, so an agent can skip one it holds */
  z.object({
    type: z.literal('assign'), replicas: z.array(assignmentSchema).max(MAX_LIST), version: str(128).optional(),
    /** apps whose images to pull now, for replicas the autopilot is about to move here (feature `prepull`) */
    prepull: z.array(assignmentSchema.pick({ app: true, specHash: true, spec: true, imageBytes: true })).max(64).optional(),
  }),
  z.object({ type: z.literal('sites'), sites: z.array(siteSchema).max(MAX_LIST) }),
  /** `container`: one of a group's containers by name (default: the first) */
  z.object({ type: z.literal('logs'), reqId: str(64), replicaId: str(128), follow: z.boolean(), tail: z.number().int().nonnegative(), container: z.string().regex(NAME_RE).optional() }),
  z.object({ type: z.literal('logs.cancel'), reqId: str(64) }),
  z.object({ type: z.literal('error'), code: str(64), message: str(4096) }),
  /** the sequence numbers now stored (or already held: a re-send) */
  z.object({ type: z.literal('windows.ack'), hubId: str(128), seqs: z.array(z.number().int().nonnegative()).max(MAX_LIST) }),
  /** a renewed certificate for the node's key */
  z.object({ type: z.literal('cert'), cert: str(16384), notAfter: num, hubCert: str(16384).optional() }),
  /** the device credentials the node's data hub accepts (every device of all sites and of its own), whole each time */
  z.object({ type: z.literal('devices'), devices: z.array(deviceSchema).max(MAX_LIST) }),
  /** identity tokens (JWTs) by replica id, and the public key they verify with (the node's hub checks them with it) */
  z.object({
    type: z.literal('identity'), tokens: boundedRecord(str(4096), MAX_LIST, str(128)), key: identityKeySchema,
    /** replicas asked for that the control plane no longer has (removed meanwhile): no token will come */
    gone: z.array(str(128)).max(MAX_LIST).optional(),
  }),
  /** `outpost rm APP --volumes`: remove the app's named volumes on this node (sent after the assignment set without the app; only to agents whose register lists the feature) */
  z.object({ type: z.literal('volumes.remove'), app: z.string().regex(NAME_RE) }),
  /**
   * `outpost exec`: run `cmd` in a replica (`container`: one of a group's by
   * name), with a TTY of cols x rows and/or its stdin attached. `window`: the
   * output bytes the agent may send before an exec.ack returns some (only to
   * agents whose register lists `exec`)
   */
  z.object({
    type: z.literal('exec.start'), sid, replicaId: str(128), container: z.string().regex(NAME_RE).optional(),
    cmd: z.array(str(4096)).min(1).max(256), tty: z.boolean(), stdin: z.boolean(), cols: termSize.optional(), rows: termSize.optional(),
    window: z.number().int().positive().max(16 * 1024 * 1024),
  }),
  /** input for an exec session's command; `eof`: its stdin closes after this */
  z.object({ type: z.literal('exec.stdin'), sid, data: execData, eof: z.boolean().optional() }),
  z.object({ type: z.literal('exec.resize'), sid, cols: termSize, rows: termSize }),
  /** output bytes of an exec session delivered: the agent may send that many more */
  z.object({ type: z.literal('exec.ack'), sid, bytes: z.number().int().nonnegative() }),
  /** the session's client is gone: kill its command and what it started */
  z.object({ type: z.literal('exec.cancel'), sid }),
  /**
   * the node's site proxy table when it changed (only to agents whose
   * register lists `routes`): whole (`whole`) first on each connection, then
   * the apps whose entry changed and those no longer served (`removed`).
   * `seq` grows with every table this node is sent; the agent confirms it
   * with routes.ack
   */
  z.object({
    type: z.literal('routes'), seq: z.number().int().nonnegative(), apps: z.array(appRouteSchema).max(MAX_ROUTED_APPS),
    removed: z.array(appName).max(MAX_ROUTED_APPS).optional(), whole: z.boolean().optional(),
  }),
  /** the demand windows (by start) taken, or refused for good: not sent again (only to agents whose register lists `demand.ack`) */
  z.object({ type: z.literal('demand.ack'), starts: z.array(z.number().int().nonnegative()).max(DEMAND_BACKLOG) }),
]);

/** The messages an agent of this version takes beyond the major's first ones (its register lists them; `routes` only with a proxy on). */
export const AGENT_FEATURES = ['volumes.remove', 'exec', 'routes', 'demand.ack', 'prepull'] as const;

export type ServerToAgent = z.infer<typeof serverToAgentSchema>;

type Parsed<T> = { ok: true; msg: T } | { ok: false; code: 'E_BAD_JSON' | 'E_INVALID'; message: string; path?: string };

function parseWith<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, raw: string): Parsed<T> {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    return { ok: false, code: 'E_BAD_JSON', message: `not JSON: ${(e as Error).message}` };
  }
  const r = schema.safeParse(v);
  if (r.success) return { ok: true, msg: r.data };
  const issue = r.error.issues[0]!;
  const path = issue.path.join('.');
  return { ok: false, code: 'E_INVALID', message: `${path ? `${path}: ` : ''}${issue.message}`, path };
}

/** Parses one agent message: the message, or why it was refused (with the path of the bad field). */
export function parseAgentMessage(raw: string): Parsed<AgentToServer> {
  return parseWith(agentToServerSchema, raw);
}

/** Parses one control-plane message on the agent's side, the same way. */
export function parseServerMessage(raw: string): Parsed<ServerToAgent> {
  return parseWith(serverToAgentSchema, raw);
}

/** The majors a client offers in Sec-WebSocket-Protocol, e.g. "outpost.v1, outpost.v2" -> [1, 2]. */
export function offeredMajors(header: string | undefined): number[] {
  return (header ?? '').split(',').map((s) => /^outpost\.v(\d+)$/.exec(s.trim())?.[1]).filter((s): s is string => s !== undefined).map(Number);
}
