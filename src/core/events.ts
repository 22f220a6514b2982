// The event log's vocabulary: what happened, as the control plane decided it.
// Pure: the services (src/server/services/*) call these where they decide a
// fact, and the event rides the same store commit as the state change it
// describes (src/server/writer.ts): it is recorded if and only if the change
// is. The store gives each event its place in one order (`seq`), the same for
// every instance.
import { OutpostError } from './errors.js';
import type { ReplicaError, ReplicaRecord } from './types.js';

/** Every event type and what it means (docs/observability.md lists them from here). */
export const EVENT_TYPES = {
  'app.deployed': 'a deploy changed an app: a new revision (`data.newRevision`), or the same one with another replica count or placement; `data.cause` says who asked (`api`, `undo`, `secret NAME version N`)',
  'app.removed': 'the app and its replicas were removed (`data.replicas`: how many)',
  'app.unschedulable': 'the reconciler could not place every replica the app asks for (`reason`: why each node was ruled out); tried again when room appears',
  'rollout.complete': 'every replica runs the revision and is ready',
  'rollout.rolled-back': 'a new replica failed or the progress deadline passed: the app went back to its last good revision (`revision`: the one it went back to; `reason`: why)',
  'rollout.failed': 'the revision failed and there was no good one to go back to',
  'replica.scheduled': 'the planner placed a new replica on the node (`data.predictedMs`: the deploy time it predicts)',
  'replica.removed': 'the replica was retired (`data.why`: `older revision`, `node lost`, `scaled down`, or `moved` by the autopilot, after its successor was ready; `data.drainMs`: an exposed app\'s replica drains first, at most this long)',
  'autopilot.decided': 'the autopilot moved the app\'s replicas to where measured demand is (`data.action` `move`), added one (`scale-out`) or removed one (`scale-in`); `message` and `data.reason` say why, with `data.objectiveBefore`/`objectiveAfter` (ms), `data.demand` (measured rps per site), `data.targets`, `data.prepull`; with `dryRun` (`data.dryRun` true) it only says what it would do',
  'autopilot.unmet': 'the measured load needs more replicas than `placement.autopilot.maxReplicas` (`reason`: `E_AUTOPILOT_RANGE`, with the count it needs); told again only when that changes',
  'replica.drained': 'a retired replica of an exposed app left every site proxy and is stopped now (`data.why`: `drained`, its requests finished, or `deadline`: `expose.drainS` passed first; `data.ms`: how long it drained)',
  'pull.started': 'the node began pulling the replica\'s image (`data.image`)',
  'pull.finished': 'the image is on the node (`data.bytes` pulled, `data.ms` it took)',
  'replica.started': 'the container or process was created and its start began (`data.containerMs`)',
  'replica.ready': 'its health check passed: it gets clients (`data.engineMs` at the first start; again after it was unhealthy)',
  'replica.unhealthy': 'its health check fails: it gets no clients until it passes (`reason`)',
  'replica.exited': 'it stopped (`reason`: exit code or signal)',
  'replica.oom': 'the kernel killed it at its memory limit (`reason`)',
  'replica.restarted': 'the agent started it again after it stopped (`reason`: why it stopped; `data.restarts`: how often so far)',
  'replica.failed': 'it could not be started, or the agent gave up restarting it (`reason`: the error, e.g. `E_PULL_FAILED`, `E_HEALTH_TIMEOUT`, `E_RESTART_LIMIT`)',
  'disk.refused': 'the node refused to pull: the image would not leave its disk reserve free (`reason`: `E_DISK_FULL`)',
  'policy.refused': 'the node\'s agent refused what the replica asks (a device, a host path, privileges: `reason`: `E_POLICY`)',
  'proxy.refused': 'the node\'s site proxy could not listen on an exposed app\'s port (`reason`: `E_PORT_IN_USE`); it tries again',
  'node.joined': 'a node registered for the first time',
  'node.unreachable': 'the node\'s agent connection closed (or the control plane started and it has not connected yet): its loss clock runs',
  'node.lost': 'the node stayed unreachable past the node timeout: its replicas are rescheduled (apps with `onNodeLoss: reschedule`)',
  'node.returned': 'an unreachable or lost node\'s agent registered again (`data.awayMs`)',
  'exec.started': 'a command began in a replica (`outpost exec`, the dashboard\'s terminal): `data.by` the API token\'s name and id, `data.command` its arguments (cut at 200 characters; only the program for a reader without `audit:read`, as arguments may hold credentials); never its input or output',
  'exec.ended': 'that command ended: `data.exitCode` (null when it was killed or never ran), `data.ended` (`exit`, `client closed` or the error code), `data.durationMs`; `reason` when the session failed',
} as const;

export type EventType = keyof typeof EVENT_TYPES;

/** One thing that happened, as an operator reads it. */
export interface EventDraft {
  /** what happened (EVENT_TYPES) */
  type: EventType;
  /** epoch ms, by the clock of the control-plane instance that decided it (order by `seq`, not by this) */
  at: number;
  /** the app it concerns, or null */
  app: string | null;
  /** the node it concerns, or null */
  node: string | null;
  /** the replica it concerns, or null */
  replica: string | null;
  /** the app's revision it concerns, when known */
  revision: number | null;
  /** one line for people */
  message: string;
  /** why, for failures, exits, restarts and refusals: an error code and message (as the replica's `error` or `lastExit`) */
  reason: ReplicaError | null;
  /** figures and names by type (`bytes`, `ms`, `restarts`, `cause`, ...) */
  data: Record<string, string | number | boolean | null>;
}

/** An event as the log keeps it: with its place in the order. */
export interface OutpostEvent extends EventDraft {
  /** its position in the log: every instance sees the same order; increasing, with gaps */
  seq: number;
}

/** An event, its unknown fields null. */
export function draft(type: EventType, at: number, f: Partial<Omit<EventDraft, 'type' | 'at'>> & { message: string }): EventDraft {
  return { type, at, app: f.app ?? null, node: f.node ?? null, replica: f.replica ?? null, revision: f.revision ?? null, message: f.message, reason: f.reason ?? null, data: f.data ?? {} };
}

/** Error codes a node refuses with before anything runs: each its own event type. */
const REFUSALS: Record<string, EventType> = { E_DISK_FULL: 'disk.refused', E_POLICY: 'policy.refused' };

/**
 * The agent's exit reason names an OOM kill this way when the engine or the
 * kernel says so (src/agent/runner.ts exitReason); a bare SIGKILL, which may
 * be the OOM killer or a kill from outside, is not one.
 */
export const isOomExit = (e: ReplicaError | null | undefined): boolean => !!e && /\bOOMKilled\b/.test(e.message);

/**
 * What a status report changed about a replica, as events, in the order they
 * happened: its stop, its restart, the pull, the start, readiness. A report
 * that skipped states (an agent reconnecting re-sends only where it is) gives
 * the events its fields show. `pulledBytes`: what the report says the pull
 * took from the registry, when it carried that.
 */
export function replicaEvents(prev: ReplicaRecord, next: ReplicaRecord, at: number, o: { image: string | null; revision: number | null; pulledBytes?: number | null }): EventDraft[] {
  const out: EventDraft[] = [];
  const on = { app: next.app, node: next.node, replica: next.id, revision: o.revision };
  const add = (type: EventType, message: string, reason: ReplicaError | null = null, data: EventDraft['data'] = {}) => out.push(draft(type, at, { ...on, message, reason, data }));
  const down = (s: ReplicaRecord['state']) => s === 'failed' || s === 'stopped';
  // it stopped (or failed to start): one event, by what the agent says of it
  if (down(next.state) && !down(prev.state)) {
    const why = next.error ?? next.lastExit ?? null;
    const refusal = why ? REFUSALS[why.code] : undefined;
    if (refusal) add(refusal, `${next.id} on ${next.node}: ${why!.message}`, why);
    else if (isOomExit(why)) add('replica.oom', `${next.id} on ${next.node} was killed at its memory limit`, why);
    else if (why?.code === 'E_EXITED' || (!why && next.state === 'stopped')) add('replica.exited', `${next.id} on ${next.node} stopped${why ? `: ${why.message}` : ''}`, why);
    else add('replica.failed', `${next.id} on ${next.node} failed${why ? `: ${why.code}` : ''}`, why);
  } else if (next.state === 'failed' && next.error?.code === 'E_RESTART_LIMIT' && prev.error?.code !== 'E_RESTART_LIMIT') {
    add('replica.failed', `${next.id} on ${next.node}: not restarted again (restart limit)`, next.error);
  }
  if (next.restarts > prev.restarts) {
    const why = next.lastExit ?? prev.lastExit ?? null;
    add('replica.restarted', `${next.id} on ${next.node} restarted (${next.restarts} so far)${why ? `: ${why.message}` : ''}`, why, { restarts: next.restarts });
  }
  if (next.state === 'pulling' && prev.state !== 'pulling') add('pull.started', `${next.node} pulls ${o.image ?? 'the image'} for ${next.id}`, null, { image: o.image });
  if (prev.state === 'pulling' && next.state !== 'pulling' && !down(next.state)) {
    const bytes = o.pulledBytes ?? null;
    add('pull.finished', `${next.node} pulled ${o.image ?? 'the image'}${bytes !== null ? ` (${bytes} bytes)` : ''}${next.measured.imageMs !== null ? ` in ${next.measured.imageMs} ms` : ''}`, null, { image: o.image, bytes, ms: next.measured.imageMs });
  }
  const started = (s: ReplicaRecord['state']) => s === 'starting' || s === 'running';
  if (started(next.state) && (!started(prev.state) || next.restarts > prev.restarts || (next.startedAt ?? null) !== (prev.startedAt ?? null))) {
    add('replica.started', `${next.id} started on ${next.node}`, null, { containerMs: next.measured.containerMs });
  }
  const ready = (r: ReplicaRecord) => r.state === 'running' && r.ready === true;
  if (ready(next) && !ready(prev)) {
    const first = prev.state !== 'running';
    add('replica.ready', `${next.id} on ${next.node} is ready${first && next.measured.engineMs !== null ? ` (engine ${next.measured.engineMs} ms)` : ''}`, null, first ? { engineMs: next.measured.engineMs } : {});
  } else if (next.state === 'running' && prev.state === 'running' && prev.ready !== false && next.ready === false) {
    add('replica.unhealthy', `${next.id} on ${next.node} fails its health check`, next.error);
  }
  return out;
}

/** Where a list or a stream starts: after a seq, or from a time (epoch ms). */
export type Since = { after: number } | { from: number };

/**
 * `since` as the API takes it: a seq (a whole number: events after it), a
 * duration back from `now` (`90s`, `10m`, `2h`, `7d`), or an RFC 3339 time
 * with its zone (`2024-05-01T12:00:00Z`). Anything else is E_INVALID at `since`.
 */
export function parseSince(s: string, now: number): Since {
  const t = s.trim();
  if (/^\d{1,15}$/.test(t)) return { after: Number(t) };
  const d = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(t);
  if (d) return { from: now - Number(d[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[d[2] as 'ms'] };
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return { from: ms };
  }
  throw new OutpostError('E_INVALID', `since must be a seq (a whole number), a duration (90s, 10m, 2h, 7d) or an RFC 3339 time with its zone (2024-05-01T12:00:00Z); got ${JSON.stringify(s.slice(0, 64))}`, { path: 'since' });
}

/** What an exec session's events say of it: where the command ran, who ran it, what. */
export interface ExecFacts {
  app: string;
  node: string;
  replica: string;
  revision: number | null;
  container: string;
  /** the API token's name and id, as `data.by` of app.deployed */
  by: string;
  cmd: readonly string[];
  tty: boolean;
  stdin: boolean;
}

/** How it ended: the exit status (null: killed or never run), `exit`, `client closed` or the error code, and the error. */
export interface ExecEnd {
  exitCode: number | null;
  ended: string;
  durationMs: number;
  error: ReplicaError | null;
}

/** a command line in an event: enough to tell what ran, never a whole script */
export const EXEC_COMMAND_CHARS = 200;

/** argv as one line a shell would read back (arguments quoted where they need it), cut at `max` characters. */
export function commandLine(argv: readonly string[], max = EXEC_COMMAND_CHARS): string {
  const line = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * An exec event as a reader without `audit:read` sees it: a command line can
 * carry a credential (`psql postgres://u:pw@...`), so it is cut to its
 * program; the whole line stays for those who may read the audit log.
 */
export function withoutCommandLine(e: OutpostEvent): OutpostEvent {
  if ((e.type !== 'exec.started' && e.type !== 'exec.ended') || typeof e.data.command !== 'string') return e;
  const line = e.data.command;
  const program = line.split(' ')[0] ?? '';
  const cut = program === line ? line : `${program} …`;
  return { ...e, data: { ...e.data, command: cut }, message: e.message.split(line).join(cut) };
}

/** An exec session's exec.started (no `end`) or exec.ended event. */
export function execEvent(at: number, f: ExecFacts, end?: ExecEnd): EventDraft {
  const line = commandLine(f.cmd);
  const on = { app: f.app, node: f.node, replica: f.replica, revision: f.revision };
  const data = { by: f.by, command: line, container: f.container, tty: f.tty, stdin: f.stdin };
  if (!end) return draft('exec.started', at, { ...on, message: `${f.by} runs ${line} in ${f.replica} on ${f.node}`, data });
  const how = end.ended === 'exit' ? `exited ${end.exitCode}` : end.ended === 'client closed' ? 'was killed: its client left' : `failed: ${end.ended}`;
  return draft('exec.ended', at, {
    ...on, message: `${line} in ${f.replica} ${how} after ${end.durationMs} ms`, reason: end.error,
    data: { ...data, exitCode: end.exitCode, ended: end.ended, durationMs: end.durationMs },
  });
}
