// What an exec session leaves behind: an exec.started event when its command
// is sent to run, and when it ends an exec.ended event, its audit entry and
// its count in the metrics. Who ran what where and how it ended; never its
// input or output. The events ride a store commit of their own (no state
// changes with them): a store that fails then loses them, logged, and the
// session goes on (its audit entry is written apart).
import type { Logger } from 'pino';
import type { ExecStart } from '../contract/exec.js';
import type { Principal } from '../core/capabilities.js';
import { execEvent, type EventDraft, type ExecFacts } from '../core/events.js';
import type { OutpostError } from '../core/errors.js';
import type { ControlPlane } from './controlplane.js';
import type { ServerMetrics } from './metrics.js';

export interface ExecTarget {
  app: string;
  replica: string;
  node: string;
  /** the app's revision the replica runs, when known */
  revision: number | null;
  /** the container asked for, or the app's first */
  container: string;
  /** the app has several containers (the agent is told which) */
  group: boolean;
}

/** One session, as the records name it. */
export interface ExecSessionInfo {
  target: ExecTarget;
  principal: Principal;
  /** the client's address */
  from: string;
  /** its start message; null when it sent none */
  start: ExecStart | null;
}

export interface ExecRecorder {
  /** the command is about to be sent to the node */
  started(s: ExecSessionInfo): void;
  /** the session is over: the command's exit status (null: none), and `exit`, `client closed` or the error it failed with */
  ended(s: ExecSessionInfo, exitCode: number | null, ended: string, error: OutpostError | null, durationMs: number): void;
}

export function execRecorder(cp: ControlPlane, metrics: ServerMetrics | null, log: Logger): ExecRecorder {
  const facts = ({ target: t, principal: p, start }: ExecSessionInfo & { start: ExecStart }): ExecFacts => ({
    app: t.app, node: t.node, replica: t.replica, revision: t.revision, container: t.container,
    by: p.name ? `${p.name} (${p.id})` : p.id, cmd: start.cmd, tty: start.tty, stdin: start.stdin,
  });
  const logged = (e: EventDraft): void => {
    cp.writer.run(() => ({ changes: [], events: [e], result: undefined })).catch((err: unknown) => {
      log.warn({ err, event: e }, 'an exec event was not written');
    });
  };
  return {
    started: (s) => {
      if (s.start) logged(execEvent(Date.now(), facts({ ...s, start: s.start })));
    },
    ended: (s, exitCode, ended, error, durationMs) => {
      const { target: t, principal: p } = s;
      const clean = ended === 'exit' || ended === 'client closed';
      cp.audit.record({
        at: Date.now(), principal: { id: p.id, name: p.name }, action: 'app:exec', request: `GET /v1/apps/${t.app}/exec`, target: t.app, from: s.from,
        status: 101, error: clean ? null : ended,
        exec: {
          replica: t.replica, node: t.node, container: t.container, command: s.start?.cmd ?? [], tty: s.start?.tty ?? false, stdin: s.start?.stdin ?? false,
          exitCode, ended, durationMs,
        },
      });
      metrics?.execEnded(ended);
      // a session that never asked for a command ran nothing: it has no events (its audit entry says it)
      if (s.start) logged(execEvent(Date.now(), facts({ ...s, start: s.start }), { exitCode, ended, durationMs, error: error ? { code: error.code, message: error.message } : null }));
    },
  };
}
