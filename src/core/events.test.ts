// The events a status report gives, and `since` as the API reads it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutpostError } from './errors.js';
import { EVENT_TYPES, commandLine, execEvent, parseSince, replicaEvents } from './events.js';
import { replica } from './testkit.js';
import type { ReplicaRecord } from './types.js';

const o = { image: 'localhost/app:1', revision: 2 };
/** the types a sequence of reports gives, each against the one before */
function walk(steps: Partial<ReplicaRecord>[], pulledBytes?: number): string[] {
  let prev = replica('web-0-0', 'web', 'n1', { state: 'pending' });
  const out: string[] = [];
  for (const s of steps) {
    const next = { ...prev, ...s, measured: { ...prev.measured, ...s.measured } };
    out.push(...replicaEvents(prev, next, 1, { ...o, pulledBytes }).map((e) => e.type));
    prev = next;
  }
  return out;
}

test('a first deploy: pull, start and ready, in that order, each once', () => {
  assert.deepEqual(walk([
    { state: 'pulling' }, { state: 'pulling', progress: { bytes: 10, total: 100 } },
    { state: 'creating', measured: { imageMs: 900, containerMs: null, engineMs: null } },
    { state: 'starting', startedAt: 5, measured: { imageMs: 900, containerMs: 30, engineMs: null } },
    { state: 'running', ready: true, measured: { imageMs: 900, containerMs: 30, engineMs: 400 } },
  ], 5000), ['pull.started', 'pull.finished', 'replica.started', 'replica.ready']);
  const prev = replica('web-0-0', 'web', 'n1', { state: 'pulling' });
  const [fin] = replicaEvents(prev, { ...prev, state: 'creating', measured: { imageMs: 900, containerMs: null, engineMs: null } }, 1, { ...o, pulledBytes: 5000 });
  assert.deepEqual([fin!.data.bytes, fin!.data.ms, fin!.app, fin!.node, fin!.replica, fin!.revision], [5000, 900, 'web', 'n1', 'web-0-0', 2]);
});

test('a crash: exited with its reason, then restarted with it; an OOM kill is its own type', () => {
  const exit = { code: 'E_EXITED', message: 'the replica stopped (exit code 3)' };
  assert.deepEqual(walk([
    { state: 'starting', startedAt: 1 }, { state: 'running', ready: true },
    { state: 'failed', error: exit, lastExit: exit },
    { state: 'creating', restarts: 1, error: null },
    { state: 'starting', restarts: 1, startedAt: 2 }, { state: 'running', ready: true, restarts: 1 },
  ]), ['replica.started', 'replica.ready', 'replica.exited', 'replica.restarted', 'replica.started', 'replica.ready']);
  const prev = replica('web-0-0', 'web', 'n1', { state: 'running', ready: true });
  const oom = { code: 'E_EXITED', message: 'the replica stopped (OOMKilled at the 64 MiB memory limit)' };
  const [e] = replicaEvents(prev, { ...prev, state: 'failed', error: oom, lastExit: oom }, 1, o);
  assert.equal(e!.type, 'replica.oom');
  assert.deepEqual(e!.reason, oom);
  const kill = { code: 'E_EXITED', message: 'the replica stopped (exit code 137: SIGKILL (the OOM killer at the 64 MiB memory limit, or a kill from outside))' };
  assert.equal(replicaEvents(prev, { ...prev, state: 'failed', error: kill, lastExit: kill }, 1, o)[0]!.type, 'replica.exited', 'a bare SIGKILL is not called an OOM kill');
  const [r] = replicaEvents({ ...prev, state: 'failed', lastExit: oom }, { ...prev, state: 'pulling', restarts: 1, lastExit: oom }, 1, o);
  assert.deepEqual([r!.type, r!.reason, r!.data.restarts], ['replica.restarted', oom, 1]);
});

test('health: unhealthy once while failing, ready again when it passes; a restart limit is a failure', () => {
  const sick = { code: 'E_UNHEALTHY', message: 'http /healthz failed' };
  assert.deepEqual(walk([
    { state: 'starting', startedAt: 1 }, { state: 'running', ready: true },
    { state: 'running', ready: false, error: sick }, { state: 'running', ready: false, error: sick },
    { state: 'running', ready: true, error: null },
  ]), ['replica.started', 'replica.ready', 'replica.unhealthy', 'replica.ready']);
  const failed = replica('a-0-0', 'a', 'n', { state: 'failed', error: { code: 'E_EXITED', message: 'x' } });
  assert.deepEqual(replicaEvents(failed, { ...failed, error: { code: 'E_RESTART_LIMIT', message: 'gave up' } }, 1, o).map((e) => e.type), ['replica.failed']);
});

test('refusals: a full disk and a node policy have their own types; other start failures are replica.failed', () => {
  const pulling = replica('a-0-0', 'a', 'n', { state: 'pulling' });
  const fail = (code: string, from = pulling) => replicaEvents(from, { ...from, state: 'failed', error: { code, message: code } }, 1, o).map((e) => e.type);
  assert.deepEqual(fail('E_DISK_FULL'), ['disk.refused'], 'and no pull.finished');
  assert.deepEqual(fail('E_POLICY', replica('a-0-0', 'a', 'n', { state: 'pending' })), ['policy.refused']);
  assert.deepEqual(fail('E_PULL_FAILED'), ['replica.failed']);
  assert.deepEqual(fail('E_HEALTH_TIMEOUT', replica('a-0-0', 'a', 'n', { state: 'starting' })), ['replica.failed']);
});

test('a report that changes nothing a person would call an event gives none', () => {
  const r = replica('a-0-0', 'a', 'n', { state: 'running', ready: true });
  assert.deepEqual(replicaEvents(r, { ...r, endpoint: 'http://x:1' }, 1, o), []);
  assert.deepEqual(replicaEvents(r, { ...r }, 1, o), []);
});

test('an exec session: its command as a shell would read it back, cut; how it ended in words', () => {
  assert.equal(commandLine(['sh', '-c', "echo 'hi'; exit 3", '']), `sh -c 'echo '\\''hi'\\''; exit 3' ''`);
  assert.equal(commandLine(['cat', '/etc/app.conf', 'a=b,c@d:1']), 'cat /etc/app.conf a=b,c@d:1');
  const long = commandLine(['echo', 'x'.repeat(500)]);
  assert.equal(long.length, 200);
  assert.ok(long.endsWith('…'));
  const f = { app: 'shop', node: 'edge-3', replica: 'shop-0-1', revision: 2, container: 'shop', by: 'admin (opt_admin)', cmd: ['sh'], tty: true, stdin: true };
  const s = execEvent(1, f);
  assert.deepEqual([s.type, s.message, s.reason, s.data], ['exec.started', 'admin (opt_admin) runs sh in shop-0-1 on edge-3', null, { by: 'admin (opt_admin)', command: 'sh', container: 'shop', tty: true, stdin: true }]);
  const end = (exitCode: number | null, ended: string, error: { code: string; message: string } | null = null) => execEvent(2, f, { exitCode, ended, durationMs: 41, error });
  assert.equal(end(3, 'exit').message, 'sh in shop-0-1 exited 3 after 41 ms');
  assert.equal(end(null, 'client closed').message, 'sh in shop-0-1 was killed: its client left after 41 ms');
  const failed = end(null, 'E_NODE_OFFLINE', { code: 'E_NODE_OFFLINE', message: 'node edge-3 disconnected' });
  assert.deepEqual([failed.type, failed.message, failed.reason?.code, failed.data.ended, failed.data.exitCode], ['exec.ended', 'sh in shop-0-1 failed: E_NODE_OFFLINE after 41 ms', 'E_NODE_OFFLINE', 'E_NODE_OFFLINE', null]);
});

test('every type has a meaning for the docs', () => {
  for (const [type, meaning] of Object.entries(EVENT_TYPES)) assert.ok(meaning.length > 20, type);
});

test('since: a seq, a duration back from now, or an RFC 3339 time with its zone; anything else E_INVALID at since', () => {
  const now = 1_700_000_000_000;
  assert.deepEqual(parseSince('42', now), { after: 42 });
  assert.deepEqual(parseSince('0', now), { after: 0 });
  assert.deepEqual(parseSince('10m', now), { from: now - 600_000 });
  assert.deepEqual(parseSince('1.5h', now), { from: now - 5_400_000 });
  assert.deepEqual(parseSince('2024-05-01T12:00:00Z', now), { from: Date.parse('2024-05-01T12:00:00Z') });
  assert.deepEqual(parseSince('2024-05-01T12:00:00.5+02:00', now), { from: Date.parse('2024-05-01T10:00:00.5Z') });
  for (const bad of ['', '-1', 'yesterday', '10 m', '2024-05-01', '2024-05-01T12:00:00', '2024-13-45T99:00:00Z', '1e3', '10y']) {
    assert.throws(() => parseSince(bad, now), (e: unknown) => e instanceof OutpostError && e.code === 'E_INVALID' && e.path === 'since', bad);
  }
});
