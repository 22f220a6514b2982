// Every Prometheus metric Outpost exports, in two tables: the control plane's
// (GET /metrics, --metrics-listen) and the agent's (its --metrics-listen).
// The registries are built from these tables (src/metrics/registry.ts), and
// docs/observability.md's list is generated from them (npm run docs), so the
// names, types, labels and meanings cannot drift apart. Also here: what one
// replica's or one app's change means for the counters, decided the same way
// on both sides. Pure: no I/O, no prom-client.
import type { ReplicaError, ReplicaState, RolloutState } from './types.js';

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricDef {
  type: MetricType;
  /** label names, in the order the documentation lists them */
  labels: readonly string[];
  /** the meaning, as `# HELP` says it */
  help: string;
  /** a histogram's upper bounds, in the metric's unit */
  buckets?: readonly number[];
}

export type MetricTable = Record<string, MetricDef>;

/** Deploy terms last from milliseconds (a cached image) to minutes (a large pull). */
const PHASE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] as const;
/** |predicted - measured| / measured */
const ERROR_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5] as const;
const API_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30] as const;
const ROLLOUT_BUCKETS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800] as const;

export const REPLICA_STATES: readonly ReplicaState[] = ['pending', 'pulling', 'creating', 'starting', 'running', 'failed', 'stopped'];
export const PHASES = ['image', 'container', 'engine'] as const;
export type Phase = (typeof PHASES)[number];

/** The control plane's metrics: the fleet as its state holds it, and what this instance saw happen. */
export const SERVER_METRICS = {
  outpost_nodes: { type: 'gauge', labels: ['state'], help: 'nodes by state (ready, unreachable, pending, revoked); every state is listed, 0 included' },
  outpost_apps: { type: 'gauge', labels: ['rollout'], help: 'apps by the status of their current or last rollout (progressing, complete, rolled-back, failed, none)' },
  outpost_replicas: { type: 'gauge', labels: ['app', 'state'], help: 'replicas by app and state (pending, pulling, creating, starting, running, failed, stopped); every state of every app is listed, 0 included' },
  outpost_replicas_ready: { type: 'gauge', labels: ['app'], help: 'replicas running and passing their health checks (what routing sends clients to), by app' },
  outpost_replicas_desired: { type: 'gauge', labels: ['app'], help: 'the replicas each app\'s spec asks for' },
  outpost_replica_restarts_total: { type: 'counter', labels: ['app'], help: 'restarts of replicas by their agents, as status reports to this instance told them (an app\'s series goes when the app is removed)' },
  outpost_replica_oom_kills_total: { type: 'counter', labels: ['app'], help: 'replica stops the engine or the cgroup reported as OOMKilled (a plain SIGKILL, exit code 137, is not counted: it may come from outside)' },
  outpost_replica_failures_total: { type: 'counter', labels: ['code'], help: 'replicas that stopped or failed, by the error code of why (E_EXITED, E_UNHEALTHY, E_PULL_FAILED, ...)' },
  outpost_deploy_phase_seconds: { type: 'histogram', labels: ['phase', 'source'], buckets: PHASE_BUCKETS, help: 'each replica start measured in full: its deploy terms (phase image = T_image, container = T_container, engine = T_engine, deploy = their sum), as predicted by the plan (source predicted) and as measured by the agent (source measured); the same samples as `outpost model`' },
  outpost_deploy_prediction_error_ratio: { type: 'histogram', labels: ['phase'], buckets: ERROR_BUCKETS, help: '|predicted - measured| / measured per deploy term of each start measured in full; a term measured as 0 (T_image of a cached image) is left out, as `outpost model` does' },
  outpost_rollouts_started_total: { type: 'counter', labels: [], help: 'rollouts started (a new revision deployed, an undo)' },
  outpost_rollouts_total: { type: 'counter', labels: ['outcome'], help: 'rollouts ended, by outcome: complete (every replica runs the revision and is ready), rolled-back (a new replica failed or the deadline passed), failed (nothing to roll back to), superseded (another revision was deployed first)' },
  outpost_rollout_duration_seconds: { type: 'histogram', labels: ['outcome'], buckets: ROLLOUT_BUCKETS, help: 'from a rollout\'s start to its end, by outcome' },
  outpost_node_rtt_seconds: { type: 'gauge', labels: ['node', 'site', 'source'], help: 'RTT from each site to each node: measured by its agent (source measured; the median of its last 3 rounds of TCP connects) or declared by an operator (source declared, which wins for placement and routing)' },
  outpost_route_predicted_seconds: { type: 'gauge', labels: ['app', 'site', 'node'], help: 'where each site\'s requests for each app go now and how fast: the predicted T_request (RTT + items x per-item cost, items = the app\'s demand at the site or 1) of the first endpoint GET /v1/apps/APP/endpoints?site=SITE answers, on the node named; no series when the app has no routable replica with a known RTT from the site' },
  outpost_app_requests_total: { type: 'counter', labels: ['app', 'site'], help: 'requests (TCP: connections) through the site proxies, by app and the site of the proxy\'s node (empty for nodes without one), as their agents reported them to this instance (each window once; measured demand, docs/routing.md)' },
  outpost_app_requests_per_second: { type: 'gauge', labels: ['app', 'site'], help: 'measured demand: requests per second through the site proxies over the last minute, by app and site (no series for a site without reports in the last ten minutes)' },
  outpost_app_request_latency_seconds: { type: 'gauge', labels: ['app', 'site', 'quantile'], help: 'the whole request as the site proxies measured it (to the last byte of the answer), quantile 0.5 and 0.95 over the last ten minutes of reports, by app and site (within 4.8%: merged log-bucket sketches)' },
  outpost_autopilot_decisions_total: { type: 'counter', labels: ['app', 'action'], help: 'decisions of the latency autopilot this instance made since it started, by app and action (move, scale-out, scale-in; dry-run decisions are not counted): docs/routing.md' },
  outpost_autopilot_replicas: { type: 'gauge', labels: ['app'], help: 'the replica count the autopilot runs the app with (its standing decision, or the manifest\'s count before the first)' },
  outpost_demand_reports_refused_total: { type: 'counter', labels: ['reason'], help: 'site proxy windows refused, by reason: clock (the window starts over an hour ago or ends over 2 minutes ahead: a node with a broken clock), figures (numbers that cannot be true: more errors than requests, buckets that do not add up, over a million requests a second, a latency over a year), duplicate (sent again after a reconnect: counted once); clock and figures are also logged' },
  outpost_node_hub_points_received_total: { type: 'counter', labels: ['node'], help: 'points each node\'s data hub received, every stream, as its agent last reported (since the hub\'s store was created)' },
  outpost_node_hub_received_bytes_total: { type: 'counter', labels: ['node'], help: 'bytes of points each node\'s data hub received, as last reported' },
  outpost_node_hub_windows_total: { type: 'counter', labels: ['node'], help: 'window results each node\'s data hub emitted, as last reported' },
  outpost_node_hub_forwarded_bytes_total: { type: 'counter', labels: ['node'], help: 'bytes of window results the control plane acknowledged to each node\'s hub, as last reported' },
  outpost_node_hub_rejected_total: { type: 'counter', labels: ['node', 'code'], help: 'inputs each node\'s data hub refused, by error code (bad points, bad JSON, too large, unauthorized), as last reported' },
  outpost_node_hub_queue_depth: { type: 'gauge', labels: ['node'], help: 'window results each node\'s hub holds that the control plane has not acknowledged, as last reported' },
  outpost_node_hub_oldest_unsent_seconds: { type: 'gauge', labels: ['node'], help: 'the age of the oldest of those, when the agent reported it (no series when none waits)' },
  outpost_agent_connections: { type: 'gauge', labels: [], help: 'agent connections this instance holds now (registered)' },
  outpost_agent_connects_total: { type: 'counter', labels: [], help: 'agents that registered with this instance' },
  outpost_agent_reconnects_total: { type: 'counter', labels: [], help: 'registrations of nodes the control plane knew already (an agent back after a drop, a restart of either side, a move between instances)' },
  outpost_agent_disconnects_total: { type: 'counter', labels: [], help: 'registered agent connections this instance lost' },
  outpost_agent_handshakes_deferred_total: { type: 'counter', labels: [], help: 'agent handshakes told to come back later (E_BUSY, 503): more at once than --admit-rate and --admit-burst allow' },
  outpost_agent_refusals_total: { type: 'counter', labels: ['code'], help: 'what the agent gateway refused, by error code: handshakes with bad credentials, messages failing the protocol\'s schemas, floods, acts for another node, enrolments' },
  outpost_api_request_duration_seconds: { type: 'histogram', labels: ['method', 'route', 'status'], buckets: API_BUCKETS, help: 'API requests, by method, route as declared (`/v1/apps/:name`; `none` for no route) and HTTP status, from arrival to the answer\'s end (a followed log stream: its whole life)' },
  outpost_api_errors_total: { type: 'counter', labels: ['code'], help: 'API requests answered with an error, by its code (E_UNAUTHORIZED, E_FORBIDDEN, E_INVALID, E_NOT_FOUND, ...)' },
  outpost_exec_sessions_total: { type: 'counter', labels: ['outcome'], help: 'exec sessions (`outpost exec`, the dashboard\'s terminal) this instance ended, by outcome: exited (the command exited, with any status), closed (its client left first: the command was killed), failed (the session failed: the node went away, a bad message, no start in time)' },
  outpost_exec_sessions_active: { type: 'gauge', labels: [], help: 'exec sessions whose command runs now through this instance' },
  outpost_store_commits_total: { type: 'counter', labels: [], help: 'group commits this instance made to its store' },
  outpost_store_conflicts_total: { type: 'counter', labels: [], help: 'commits that lost a race to another instance and were decided again (PostgreSQL)' },
} as const satisfies MetricTable;

/** An agent's metrics: its node, its replicas, its link to the control plane and its data hub. */
export const AGENT_METRICS = {
  outpost_agent_connected: { type: 'gauge', labels: [], help: '1 while the agent is registered with a control-plane instance, else 0' },
  outpost_agent_connects_total: { type: 'counter', labels: [], help: 'registrations with the control plane since the agent started' },
  outpost_agent_reconnects_total: { type: 'counter', labels: [], help: 'registrations after the first (the link came back)' },
  outpost_agent_disconnects_total: { type: 'counter', labels: [], help: 'registered connections to the control plane that were lost' },
  outpost_agent_messages_refused_total: { type: 'counter', labels: [], help: 'control-plane messages that failed the protocol\'s schemas (the connection is then closed)' },
  outpost_agent_replicas: { type: 'gauge', labels: ['app', 'state'], help: 'replicas this agent runs, by app and state; every state of every app it runs is listed, 0 included' },
  outpost_agent_replica_restarts_total: { type: 'counter', labels: ['app'], help: 'restarts of replicas on this node' },
  outpost_agent_replica_oom_kills_total: { type: 'counter', labels: ['app'], help: 'replica stops on this node the engine or the cgroup reported as OOMKilled' },
  outpost_agent_deploy_phase_seconds: { type: 'histogram', labels: ['phase'], buckets: PHASE_BUCKETS, help: 'deploy terms measured on this node: image (T_image, 0 for a cached image), container (T_container), engine (T_engine, to the first passing health check)' },
  outpost_agent_image_pulls_total: { type: 'counter', labels: [], help: 'image pulls that fetched layers' },
  outpost_agent_image_pulled_bytes_total: { type: 'counter', labels: [], help: 'bytes those pulls fetched' },
  outpost_agent_demand_windows_waiting: { type: 'gauge', labels: [], help: 'the site proxy\'s closed windows (measured demand) the control plane has not acknowledged yet: sent after the next reconnect (at most 30 are kept)' },
  outpost_agent_demand_windows_dropped_total: { type: 'counter', labels: [], help: 'closed windows dropped unsent because more than 30 waited (the control plane was away for longer)' },
  outpost_agent_site_rtt_seconds: { type: 'gauge', labels: ['site'], help: 'the RTT to each site this agent measured last (the median of its last 3 rounds of TCP connects)' },
  outpost_hub_points_received_total: { type: 'counter', labels: ['stream'], help: 'points the node\'s data hub received, by stream (since its store was created)' },
  outpost_hub_received_bytes_total: { type: 'counter', labels: ['stream'], help: 'bytes of points received, by stream' },
  outpost_hub_windows_total: { type: 'counter', labels: ['stream'], help: 'window results emitted, by stream' },
  outpost_hub_late_points_total: { type: 'counter', labels: ['stream'], help: 'points dropped because their window was already emitted, by stream' },
  outpost_hub_filtered_points_total: { type: 'counter', labels: ['stream'], help: 'points dropped by the stream\'s filter' },
  outpost_hub_rejected_total: { type: 'counter', labels: ['code'], help: 'inputs the hub refused (HTTP requests, MQTT messages), by error code' },
  outpost_hub_forwarded_bytes_total: { type: 'counter', labels: [], help: 'bytes of window results the control plane acknowledged' },
  outpost_hub_queue_depth: { type: 'gauge', labels: [], help: 'window results waiting for the control plane\'s acknowledgement' },
  outpost_hub_oldest_unsent_seconds: { type: 'gauge', labels: [], help: 'the age of the oldest of those (0 when none waits)' },
  outpost_hub_raw_bytes: { type: 'gauge', labels: [], help: 'bytes of raw points the hub stores' },
} as const satisfies MetricTable;

// ---- what a change means for the counters ---------------------------------

/** The fields of a replica (a record, or an agent's status) the counters look at. */
export interface ReplicaFacts {
  state: ReplicaState;
  restarts?: number;
  error?: ReplicaError | null;
  lastExit?: ReplicaError | null;
  measured?: { imageMs?: number | null; containerMs?: number | null; engineMs?: number | null };
}

export interface ReplicaEvents {
  /** restarts since the previous state */
  restarts: number;
  /** why a run ended, when this change ended one (failed or stopped, from a state that was neither) */
  ended: ReplicaError | null;
  /** that end was an OOM kill, as the engine or the cgroup told it */
  oom: boolean;
  /** deploy terms this change finished measuring, ms */
  phases: Partial<Record<Phase, number>>;
}

const DOWN = new Set<ReplicaState>(['failed', 'stopped']);

/**
 * What happened between two states of one replica. A phase is counted when
 * the replica enters the state that follows it (creating after the image,
 * starting after the container, running from starting after the engine), so
 * an adopted replica (straight to running) adds none, and a status sent
 * again after a reconnect adds nothing.
 */
export function replicaEvents(prev: ReplicaFacts | null, next: ReplicaFacts): ReplicaEvents {
  const restarts = Math.max(0, (next.restarts ?? 0) - (prev?.restarts ?? 0));
  const ended = DOWN.has(next.state) && !(prev && DOWN.has(prev.state)) ? next.lastExit ?? next.error ?? null : null;
  const phases: Partial<Record<Phase, number>> = {};
  const m = next.measured ?? {};
  const entered = (s: ReplicaState) => next.state === s && prev?.state !== s;
  if (entered('creating') && m.imageMs != null) phases.image = m.imageMs;
  if (entered('starting') && m.containerMs != null) phases.container = m.containerMs;
  if (entered('running') && prev?.state === 'starting' && m.engineMs != null) phases.engine = m.engineMs;
  return { restarts, ended, oom: ended !== null && /OOMKilled/.test(ended.message), phases };
}

export type RolloutOutcome = 'complete' | 'rolled-back' | 'failed' | 'superseded';

export const EXEC_OUTCOMES = ['exited', 'closed', 'failed'] as const;
export type ExecOutcome = (typeof EXEC_OUTCOMES)[number];

/** An exec session's outcome, by how it ended (`exit`, `client closed`, or the error code it failed with). */
export const execOutcome = (ended: string): ExecOutcome => (ended === 'exit' ? 'exited' : ended === 'client closed' ? 'closed' : 'failed');

/** A rollout that began, ended (and how), or neither, between two states of one app. */
export function rolloutEvent(prev: RolloutState | undefined, next: RolloutState | undefined): { started: boolean; ended: RolloutOutcome | null } {
  if (!next) return { started: false, ended: null };
  const started = next.status === 'progressing' && (prev?.revision !== next.revision || prev.status !== 'progressing');
  // only the end of a rollout in progress counts (a failed first revision that later completes is not a second outcome)
  const ended = prev?.status !== 'progressing' ? null : next.status !== 'progressing' ? next.status : next.revision !== prev.revision ? 'superseded' : null;
  return { started, ended };
}
