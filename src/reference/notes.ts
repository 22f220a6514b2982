// The hand-written one-liners of the generated tables that have no schema to
// come from: what each HTTP route takes and answers, and what each stream
// operator computes. They are keyed by what the code declares (the routes
// registered in the API files, the operators OP_RE accepts), and the
// generator fails when a key and the code disagree, so none is missing or stale.

export interface RouteNote {
  /** query parameters and body */
  takes: string;
  answers: string;
  /** the CLI command that uses it */
  cli?: string;
}

/** Links to the JSON shapes documented in api.md. */
const T = (name: string, list = false) => `[\`${name}\`](#${name.toLowerCase()})${list ? '[]' : ''}`;

export const CONTROL_PLANE_ROUTES: Record<string, RouteNote> = {
  'GET /healthz': { takes: 'no token', answers: '`{"ok": true}`' },
  'GET /': { takes: 'no token', answers: 'a redirect to `/ui/`' },
  'GET /ui/*': { takes: 'no token (the page signs in with an API token and sends it on its API calls)', answers: 'the dashboard\'s files ([observability.md](../observability.md#dashboard)); 503 with a hint when it was not built' },
  'GET /metrics': { takes: 'a token with `metrics:read` (admin, operator, viewer)', answers: 'the Prometheus text format (`text/plain; version=0.0.4`): every metric of [observability.md](../observability.md#metrics)', cli: 'outpost metrics' },
  'GET /v1/nodes': { takes: '`state`, `site` (filters); `limit`, `after` (pages, below)', answers: `${T('NodeView', true)}, by name`, cli: 'outpost nodes' },
  'GET /v1/nodes/:name': { takes: '', answers: T('NodeView') },
  'GET /v1/apps': { takes: '`limit`, `after` (pages, below)', answers: `${T('AppView', true)}, by name`, cli: 'outpost apps' },
  'GET /v1/apps/:name': { takes: '`after`, `waitMs` (a long poll, below)', answers: `${T('AppView')} with \`replicas\` as the app's ${T('ReplicaRecord', true)}, and \`version\``, cli: 'outpost rollout history, deploy --wait' },
  'POST /v1/apps': { takes: 'the manifest as JSON or YAML text (below); `dryRun=1` plans only', answers: `${T('DeployAnswer')}: 201 when the app is new, 200 otherwise`, cli: 'outpost deploy, outpost plan (dryRun)' },
  'DELETE /v1/apps/:name': { takes: '`volumes=true`: also its named volumes, on the nodes connected to this instance (works for an app already removed)', answers: '`{"removed": [replica ids]}`, with `volumes`: `"volumes": {"told": [nodes], "unreached": [nodes that ran it]}`', cli: 'outpost rm [--volumes]' },
  'POST /v1/apps/:name/undo': { takes: '', answers: '`{"app", "revision", "changed", "replicas"}` as in ' + T('DeployAnswer'), cli: 'outpost rollout undo' },
  'GET /v1/streams': { takes: '', answers: T('StreamRow', true), cli: 'outpost streams' },
  'GET /v1/streams/:name': { takes: '`node`, `from`, `to` (epoch ms, on a window\'s start), `limit` (100,000)', answers: `${T('HeldWindow', true)}, oldest first`, cli: 'outpost stream' },
  'GET /v1/sites': { takes: '', answers: `${T('SiteRecord', true)}, each with \`rttMs\` (node -> ms, declared winning over measured) and \`declared\` (the nodes whose RTT was declared)`, cli: 'outpost sites' },
  'POST /v1/sites': { takes: '`{"name", "probe": "HOST:PORT"}`', answers: `${T('SiteRecord')}, 201`, cli: 'outpost site add' },
  'DELETE /v1/sites/:name': { takes: '', answers: '`{"removed": name}`', cli: 'outpost site rm' },
  'PUT /v1/nodes/:name/rtt': { takes: '`{"SITE": ms, "OTHER": null}` (null removes a declared RTT)', answers: T('NodeRecord'), cli: 'outpost site rtt' },
  'GET /v1/apps/:name/autopilot': { takes: '', answers: `${T('AutopilotView')}: the app's \`placement.autopilot\` with its defaults, the standing decision (replica count, the measured demand it planned for, target nodes, pre-pulls, the last decision with its reason), the replicas running, and the latest evaluation (phase, measured demand, the placement's predicted objective against the best plan's, each replica's rate, service time and utilisation; made by the leading instance)`, cli: 'outpost autopilot status' },
  'GET /v1/apps/:name/demand': { takes: '', answers: `${T('DemandView')}: what the site proxies measured in the last ten minutes, per site (rps over the last minute, errors, latency p50/p95) against the manifest's declared demand, and per route the measured p50 against the predicted T_request (kept in memory by the instance the agents report to)`, cli: 'outpost demand, replicas APP' },
  'GET /v1/apps/:name/endpoints': { takes: '`site` (required), `items`', answers: `${T('RankedEndpoint', true)}: running, ready replicas on reachable nodes, nearest first`, cli: 'outpost endpoints' },
  'GET /v1/ca': { takes: 'no token', answers: 'the PEM of the CA clients trust for this server (404 with `--insecure`)' },
  'GET /v1/hub-ca': { takes: 'no token', answers: 'the PEM of the hub CA devices verify the nodes\' hubs with (404 with `--insecure`)' },
  'GET /v1/identity/keys': { takes: 'no token', answers: '`{"keys": [JWK]}`: the ES256 public key that verifies the replicas\' identity tokens (JWTs), by `kid`' },
  'POST /v1/enroll': { takes: 'no admin token: `Authorization: Bearer <join token>` (or none: re-enrolment with the node\'s key); body `{"name", "csr"}`', answers: `${T('EnrolAnswer')}; \`E_TOKEN_INVALID\` (401), \`E_NODE_NAME_TAKEN\` (409), \`E_NODE_REVOKED\` (403)`, cli: 'outpost agent' },
  'GET /v1/tokens': { takes: '', answers: `${T('JoinTokenView', true)} (never a secret)`, cli: 'outpost token list' },
  'POST /v1/tokens': { takes: '`{"ttl": "30m", "uses": 1, "site"?, "labels"?, "note"?}`', answers: `${T('CreatedToken')}, 201: the token, once`, cli: 'outpost token create' },
  'DELETE /v1/tokens/:id': { takes: '', answers: T('JoinTokenView'), cli: 'outpost token revoke' },
  'GET /v1/devices': { takes: '', answers: `${T('DeviceView', true)} (never a secret)`, cli: 'outpost device list' },
  'POST /v1/devices': { takes: '`{"name", "streams": [...], "site"?}`', answers: `${T('CreatedDevice')}, 201: the secret, once; the hubs get the device at once`, cli: 'outpost device create' },
  'DELETE /v1/devices/:name': { takes: '', answers: '`{"removed": name}`; the hubs disconnect it', cli: 'outpost device rm' },
  'POST /v1/nodes/:name/approve': { takes: '', answers: T('NodeTrust'), cli: 'outpost node approve' },
  'POST /v1/nodes/:name/revoke': { takes: '', answers: `${T('NodeTrust')}; the node's connection closes (4403 \`E_NODE_REVOKED\`) and its replicas move`, cli: 'outpost node revoke' },
  'DELETE /v1/nodes/:name': { takes: '', answers: '`{"removed": name}`; `E_CONFLICT` while it is connected or has replicas', cli: 'outpost node rm' },
  'GET /v1/model': { takes: '`samples` (0 to 1,000; default 0)', answers: `${T('ModelError')} over every recorded deployment, with \`cold\` and \`warm\` (image pulled or cached), each a ${T('ModelError')}; with \`samples=N\`, \`recent\`: the newest N ${T('ModelSample', true)}, oldest first`, cli: 'outpost model' },
  'GET /v1/replicas': { takes: '`app`, `node`, `state` (filters); `limit`, `after` (pages, below)', answers: `${T('ReplicaRecord', true)}, by id`, cli: 'outpost replicas' },
  'GET /v1/apps/:name/replicas': { takes: '', answers: T('ReplicaRecord', true), cli: 'outpost replicas APP' },
  'GET /v1/backup': { takes: '', answers: 'application/gzip: the backup (JSON lines: header, trust files, every record, the model\'s samples, an end line; [operations](../operations.md#backup-and-restore)), streamed', cli: 'outpost backup' },
  'GET /v1/cluster': { takes: '', answers: `${T('ClusterStatus')}: the instances (one on SQLite), the leader lease, each instance's lag behind the store`, cli: 'outpost server status' },
  'GET /v1/secrets': { takes: '', answers: `${T('SecretView', true)}: names, versions, the apps that use each; never a value`, cli: 'outpost secret list' },
  'PUT /v1/secrets/:name': { takes: '`{"value": base64}` (at most 64 KiB decoded; `E_TOO_LARGE` above)', answers: `${T('SetSecretAnswer')}: the apps that use it roll`, cli: 'outpost secret set' },
  'DELETE /v1/secrets/:name': { takes: '', answers: '`{"removed": name}`; `E_CONFLICT` while an app uses it', cli: 'outpost secret rm' },
  'POST /v1/secrets/rotate-key': { takes: '', answers: `${T('RotateKeyAnswer')}: every secret re-encrypted with a new envelope key`, cli: 'outpost secret rotate-key' },
  'GET /v1/apps/:name/logs': { takes: '`follow` (`1`: keep streaming), `tail` (lines, 200), `container` (one of a group\'s; default the first), `replica` (only this one; else E_NOT_FOUND listing the app\'s)', answers: 'text/plain: every replica\'s output (or the one asked for), each line prefixed `[replica id] ` when there are several', cli: 'outpost logs' },
  'GET /v1/apps/:name/exec': { takes: 'a WebSocket upgrade (subprotocol `outpost.exec.v1`; the token in Authorization, or a browser\'s as the subprotocol `outpost.bearer.<base64url>`); `replica`, `container`', answers: '101, then the session of [exec](../observability.md#exec): `start`, stdin, output, `exit`; refused before the upgrade with `E_FORBIDDEN` (no `app:exec`), `E_NOT_FOUND`, `E_CONFLICT` (not running), `E_NODE_OFFLINE`, `E_UNSUPPORTED` (an agent from before exec); a plain GET gets the same refusal, else `E_INVALID` (how a browser learns why its WebSocket was refused)', cli: 'outpost exec' },
  'GET /v1/whoami': { takes: '', answers: 'the caller\'s token: `{"id", "name", "role", "apps", "sites", "expiresAt", "capabilities": [...]}`', cli: 'outpost whoami' },
  'GET /v1/apitokens': { takes: '', answers: `${T('ApiTokenRecord', true)} without \`secretHash\``, cli: 'outpost token list' },
  'POST /v1/apitokens': { takes: '`{"name", "role", "apps"?, "sites"?, "ttl"?}` (globs such as `shop-*`; a duration such as `90d`)', answers: `${T('ApiTokenRecord')} without \`secretHash\`, with \`token\` (\`opt_ID.SECRET\`), 201: the token, once; \`E_FORBIDDEN\` for a token with more rights than the caller's`, cli: 'outpost token create --role' },
  'DELETE /v1/apitokens/:id': { takes: '', answers: `${T('ApiTokenRecord')} without \`secretHash\`; \`E_CONFLICT\` for \`opt_admin\``, cli: 'outpost token revoke' },
  'GET /v1/audit': { takes: '`since` (epoch ms, 0), `limit` (1,000; at most 10,000)', answers: `${T('AuditEntry', true)}, oldest first`, cli: 'outpost audit' },
  'GET /v1/events': { takes: '`since` (a seq, a duration such as `10m`, or an RFC 3339 time; default: the whole log), `app`, `node` (filters), `limit` (1,000; at most 10,000; 0: only `last`), `newest` (`true`: the newest `limit` that match, not the oldest)', answers: `${T('EventsAnswer')}: \`events\` (${T('OutpostEvent', true)}, in seq order), \`last\`, \`more\``, cli: 'outpost events' },
  'GET /v1/events/stream': { takes: 'as `GET /v1/events` without `limit` and `newest` (default `since`: now); `Last-Event-ID` (a seq) wins over `since`', answers: 'text/event-stream: each event as `id: SEQ` and `data: JSON`; a comment with the cursor as `id` every 15 s ([events](../observability.md#events))', cli: 'outpost events --follow' },
};

export const HUB_ROUTES: Record<string, RouteNote> = {
  'GET /healthz': { takes: '', answers: '`{"ok": true}`' },
  'GET /v1/stats': { takes: '', answers: `the hub's accounting, a [\`HubStats\`](api.md#hubstats)` },
  'GET /v1/streams': { takes: '', answers: 'the streams this hub runs: `[{"name", ...StreamStats}]`' },
  'POST /v1/streams/:stream/points': { takes: 'a JSON point or array of points; NDJSON with content-type `application/x-ndjson` (or `jsonl`, `jsonlines`); `Content-Encoding: gzip` or `deflate`; an `Idempotency-Key`', answers: '`{"accepted", "late", "filtered"}` once stored; a re-sent key: the first answer, with `Idempotent-Replayed: true`' },
  'GET /v1/streams/:stream/windows': { takes: '`from`, `to` (epoch ms, on a window\'s start), `limit` (at most 10,000)', answers: 'the window results this hub holds, oldest first' },
  'GET /v1/streams/:stream/points': { takes: '`from`, `to` (epoch ms), `limit` (at most 100,000)', answers: 'raw points `[{"ts", "v"}]`, oldest first' },
};

/** What each operator a stream's `ops` may name adds to a window result. */
export const OPERATORS: Record<string, string> = {
  count: 'the points in the window (every result carries it)',
  sum: 'their sum, with Neumaier\'s compensation (a sum of many points matches an exact one)',
  mean: 'their arithmetic mean',
  min: 'the smallest',
  max: 'the largest',
  product: 'their product, null when it over- or underflows a double; with it come `logAbsProduct`, the natural log of its magnitude (null when a point is 0), and `productSign` (-1, 0 or 1), which hold a product of any size',
  stddev: 'the population standard deviation (divides by n, not n - 1), by Welford\'s method',
  pNN: 'the NNth percentile, 0 to 100 with decimals (`p50`, `p95`, `p99.9`), by linear interpolation between the closest ranks (numpy\'s default `linear` method); the window keeps its values for it',
};
