// One error type for the whole system: a stable code users can search for, a
// message a person can act on, the path of the bad field when there is one, and
// the HTTP status it maps to. The API turns it into {"error": {...}} in one place.
//
// ERRORS is the one list of codes: the type, the HTTP statuses and
// docs/reference/errors.md (npm run docs) all come from it. A code keeps its
// name and status once users can see it.

export interface ErrorInfo {
  /** the HTTP status an API answers with; 500 for codes that describe a replica rather than a request */
  status: number;
  /** where users meet it: an API answer, the CLI's stderr, a replica's error or lastExit, a data hub's answer */
  seen: string;
  meaning: string;
}

export const ERRORS = {
  E_INVALID: { status: 400, seen: 'API, CLI, hub', meaning: 'a manifest, snapshot, request body, query parameter or lab topology breaks a rule; `path` names the field' },
  E_BAD_JSON: { status: 400, seen: 'API, CLI, hub', meaning: 'a body or file is not valid JSON (the message gives the position)' },
  E_BAD_YAML: { status: 400, seen: 'API, CLI', meaning: 'a manifest, `--config` or `--hub-config` file is not valid YAML (the message gives the line and column)' },
  E_USAGE: { status: 400, seen: 'CLI', meaning: 'the command line cannot work: a bad value of a setting (flag, variable or `--config` file; the message names which), an unknown key in a `--config` file, a file that cannot be read, no container engine for `--runtime docker`, the lab without root; exit status 2' },
  E_TOO_LARGE: { status: 413, seen: 'API, hub', meaning: 'a request body over the limit (4 MiB at the control plane, 16 MiB at a hub), or a hub batch of more than 100,000 points' },
  E_NOT_FOUND: { status: 404, seen: 'API, CLI', meaning: 'no app, node, site or route of that name; `outpost exec`: no such replica or container of the app (the message lists those there are)' },
  E_UNAUTHORIZED: { status: 401, seen: 'API, CLI, agent, hub', meaning: 'a missing, unknown, revoked or expired API token (API, CLI; the message says which); an agent connection without a node certificate this control plane issued, or (without TLS) an unknown node secret; a device without valid credentials at a hub; a registry refusing `deploy --pin`' },
  E_UNSCHEDULABLE: { status: 409, seen: 'API, CLI', meaning: 'the plan cannot place every replica; the message says which filter ruled out each node' },
  E_CONFLICT: { status: 409, seen: 'API, CLI', meaning: 'the state forbids it: `rollout undo` with no earlier good revision, `lab up` with a lab already up, `node rm` of a node still connected or running replicas, a device name already taken, a hub `Idempotency-Key` reused for another batch, `outpost exec` in a replica that is not running' },
  E_IMAGE_NOT_FOUND: { status: 500, seen: 'replica', meaning: 'the image is not in its registry' },
  E_PULL_FAILED: { status: 500, seen: 'replica', meaning: 'pulling or inspecting the image failed (registry unreachable, refused, interrupted)' },
  E_CREATE_FAILED: { status: 500, seen: 'replica', meaning: 'the engine could not create the container, or the process runtime got no `command`' },
  E_UNSUPPORTED: { status: 500, seen: 'replica', meaning: 'the node\'s runtime cannot give what the app asks: the process runtime and several containers, volumes, devices, capAdd, privileged, user, readOnlyRootfs, entrypoint or hostname (the message names the fields; run the app where a container engine is); `outpost exec` to a node whose agent is from before exec, or `-t` on a process node without util-linux\'s `script`' },
  E_START_FAILED: { status: 500, seen: 'replica', meaning: 'the container or process could not be started' },
  E_EXITED: { status: 500, seen: 'replica, CLI', meaning: 'the replica exited, during start-up or later; the message has the exit code, signal or OOMKilled' },
  E_HEALTH_TIMEOUT: { status: 500, seen: 'replica, CLI', meaning: 'no passing health check within `health.startTimeoutMs` of the start; from `deploy --wait`, the rollout did not finish within `--timeout`' },
  E_UNHEALTHY: { status: 500, seen: 'replica', meaning: 'the health check fails: the replica gets no clients, and `failureThreshold` failures in a row restart it' },
  E_RESTART_LIMIT: { status: 500, seen: 'replica, CLI', meaning: 'the replica was restarted `restart.maxRetries` times in a row, none of them staying up 60 s after it was ready, and is left failed, not restarted again; the message has the last failure. A deploy that changes the app, or an agent restart, starts it afresh' },
  E_ROLLED_BACK: { status: 500, seen: 'CLI', meaning: '`deploy --wait`: the new revision failed and the app went back to its last good revision' },
  E_DISK_FULL: { status: 500, seen: 'replica', meaning: 'the pull would leave less than `OUTPOST_DISK_RESERVE_MB` free on the node\'s image store; nothing was pulled' },
  E_NODE_OFFLINE: { status: 503, seen: 'API, CLI', meaning: 'the node is not connected (to this instance of the control plane), so nothing can be fetched or run through it (logs, exec); from `outpost exec`, also a node that disconnected while the command ran' },
  E_STORE: { status: 503, seen: 'server, API, CLI (restore)', meaning: 'the control plane cannot open or write its store (`--store`): PostgreSQL unreachable, a refused login, no such database, or a schema from a newer Outpost; the message says which. A write answered with it was not acknowledged: it did not land, unless the database went away during its very commit (then it shows in the state once the database is back)' },
  E_NOT_LEADER: { status: 503, seen: 'server', meaning: 'an instance decided something only the leader may (a reconcile pass, a node lost) after its leader lease passed to another instance: nothing was written, and the new leader decides again' },
  E_NO_SERVER: { status: 503, seen: 'CLI', meaning: 'the control plane does not answer at `OUTPOST_SERVER`; `outpost exec`: the connection closed while the command ran (the command is killed)' },
  E_INTERNAL: { status: 500, seen: 'API, CLI, replica', meaning: 'an unexpected failure (the control plane logs it), or an answer the CLI cannot read' },
  E_BAD_POINT: { status: 400, seen: 'hub', meaning: 'a value in a batch is not a point; `path` gives its position (`[2]`, `line 3`)' },
  E_BAD_TS: { status: 400, seen: 'hub', meaning: 'a point\'s `ts` is a time the stream does not take: older than the hub\'s retention (`maxAgeMs`), or further ahead of the hub\'s clock than the stream\'s `maxSkewMs` (a `ts` that is no time, neither a number nor an ISO-8601 string with a zone, is `E_BAD_POINT`); `path` gives the point\'s position (`[2]`, `line 3`); over MQTT the message is dropped and counted' },
  E_UNKNOWN_STREAM: { status: 404, seen: 'hub', meaning: 'no app on this node declares the stream (over MQTT: dropped and counted)' },
  E_PROTOCOL: { status: 426, seen: 'agent', meaning: 'the agent and the control plane speak different major versions of the agent protocol (the WebSocket subprotocol `outpost.vN`), or an agent sent a message out of order; an exec session whose agent sent more output than its window (the session ends)' },
  E_BUSY: { status: 503, seen: 'agent', meaning: 'too many agents are connecting at once; the answer says when to come back (Retry-After), and agents do' },
  E_FORBIDDEN: { status: 403, seen: 'API, CLI, agent, hub', meaning: 'the credential is valid but does not allow this: an API token whose role lacks the route\'s capability, or whose scope does not cover its app or site (the message names the capability and the target; docs/security.md), or that would create a token stronger than itself; an agent acting for another node or its replicas, a device publishing to a stream it has no right to or subscribing beyond its own topics' },
  E_POLICY: { status: 403, seen: 'replica', meaning: 'the node\'s agent refuses what the replica needs: a device, a host path or privileges its policy does not allow (`outpost agent --allow-devices`, `--allow-host-paths`, `--allow-privileged`); the message names the field and the flag. Nothing was created. The planner places no replica where this would happen; the agent checks again, after resolving symlinks' },
  E_NODE_NAME_TAKEN: { status: 409, seen: 'agent, API', meaning: 'another node\'s key already holds this node name; enrol under another name, or `outpost node rm NAME` the old node first' },
  E_NODE_REVOKED: { status: 403, seen: 'agent, API, CLI', meaning: 'the node was revoked (`outpost node revoke`): its certificate is refused and it gets no work' },
  E_TOKEN_INVALID: { status: 401, seen: 'agent, API', meaning: 'a join token that is unknown, revoked, past its TTL or out of uses, or whose CA fingerprint does not match the control plane\'s CA' },
  E_CERT_EXPIRED: { status: 401, seen: 'agent, CLI', meaning: 'a node certificate past its end; the agent re-enrols with its previous key (or a fresh join token) and the node record says why until it does' },
  E_TLS: { status: 502, seen: 'CLI, agent', meaning: 'the server\'s certificate (the control plane\'s, or a registry\'s for `deploy --pin`) is not signed by the trusted CA (`OUTPOST_CA`, the data dir\'s ca.crt, the one the join token names), or names another host; agents retry' },
  E_CA_MISMATCH: { status: 502, seen: 'agent', meaning: 'the control plane presents another CA than the one whose fingerprint the join token carries (another control plane, or something in the middle): the agent refuses to talk to it and stops' },
  E_RATE_LIMITED: { status: 429, seen: 'agent, hub', meaning: 'one connection sent more messages than its limit; the connection is closed and the refusal counted; an exec client that sent more stdin than its window before the command took it' },
  E_DIGEST_MISMATCH: { status: 500, seen: 'replica, CLI', meaning: 'the pulled image\'s digest is not the one the manifest pins (`image@sha256:...`); nothing was started' },
  E_COMPOSE_UNSUPPORTED: { status: 400, seen: 'CLI', meaning: '`outpost convert` or `deploy -f` of a Compose file: a field Outpost cannot honour (`ipc`, `extends`, a second network, `service_completed_successfully`, ...); the message names its Compose path and line, and every other such field after it. Nothing is deployed' },
  E_BUILD_FAILED: { status: 500, seen: 'CLI', meaning: '`outpost deploy -f` of a Compose file with `build:`: the engine could not build the service\'s image, or the registry refused its push; the message names the service and has the engine\'s words' },
  E_NO_ENDPOINT: { status: 503, seen: 'site proxy', meaning: 'a node\'s site proxy (`expose`) had no endpoint of the app that answered: none ready, or every one refused or timed out the connect (the message names those tried); it answers again as soon as one returns. A TCP proxy closes the connection instead' },
  E_AUTOPILOT_RANGE: { status: 409, seen: 'events, `outpost autopilot status`', meaning: 'the autopilot measured more load than `placement.autopilot.maxReplicas` replicas carry at `targetUtilisation`: it runs the maximum and says how many the load needs; raise the maximum or accept the latency' },
  E_UPSTREAM_TIMEOUT: { status: 504, seen: 'site proxy', meaning: 'a node\'s site proxy (`expose`) sent a request (or a WebSocket upgrade) to a replica that did not begin its answer within 60 s; counted as an error. The replica may still be working on it' },
  E_UPGRADE_BODY: { status: 400, seen: 'site proxy', meaning: 'an upgrade request (WebSocket) with a body reached a node\'s site proxy: it is not forwarded (nothing would frame the body once the connection is spliced)' },
  E_PORT_IN_USE: { status: 409, seen: 'node (`outpost nodes --json`: `proxy`), events', meaning: 'a node\'s site proxy could not listen on an app\'s `expose.port`: another process holds it on the agent\'s bind address (or, as the message says, the agent may not bind it: a port below 1024 without the privilege). The agent goes on and tries again every few seconds; the app is served on the node\'s other ports and on other nodes' },
  E_HUB_OFF: { status: 503, seen: '(none yet)', meaning: 'reserved for a request that needs a node\'s data hub when it has none; no code path raises it today' },
} as const satisfies Record<string, ErrorInfo>;

export type ErrorCode = keyof typeof ERRORS;

/** A code's status; an unknown one (a newer control plane's, relayed by the CLI) is 500. */
function errorStatus(code: string): number {
  return (ERRORS as Record<string, ErrorInfo | undefined>)[code]?.status ?? 500;
}

export class OutpostError extends Error {
  readonly code: ErrorCode;
  readonly path?: string;
  readonly details?: unknown;
  constructor(code: ErrorCode, message: string, opts: { path?: string; details?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'OutpostError';
    this.code = code;
    this.path = opts.path;
    this.details = opts.details;
  }
  get status(): number {
    return errorStatus(this.code);
  }
  toJSON(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message };
    if (this.path !== undefined) body.path = this.path;
    if (this.details !== undefined) body.details = this.details;
    return body;
  }
}

export interface ErrorBody {
  code: string;
  message: string;
  path?: string;
  details?: unknown;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Errors from the HTTP layer (Fastify's body parsing, limits) as OutpostErrors; anything else is internal. */
export function toOutpostError(err: unknown): OutpostError {
  if (err instanceof OutpostError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new OutpostError('E_TOO_LARGE', 'request body too large');
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new OutpostError('E_INVALID', 'send the body as application/json (a manifest may also come as application/yaml)');
  if (e.code?.startsWith('FST_ERR_CTP') || (e.statusCode === 400 && e instanceof SyntaxError)) {
    return new OutpostError('E_BAD_JSON', `request body is not valid JSON: ${e.message ?? ''}`);
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return new OutpostError('E_INVALID', e.message ?? 'bad request');
  return new OutpostError('E_INTERNAL', 'internal error', { cause: err });
}
