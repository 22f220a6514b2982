import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT_METRICS, SERVER_METRICS, replicaEvents, rolloutEvent, type MetricTable } from './metrics.js';
import type { RolloutState } from './types.js';

test('every metric follows Prometheus\' naming: outpost_ prefix, _total counters only, base units', () => {
  for (const [table, t] of [['server', SERVER_METRICS], ['agent', AGENT_METRICS]] as [string, MetricTable][]) {
    for (const [name, d] of Object.entries(t)) {
      assert.match(name, /^outpost_[a-z][a-z0-9_]*$/, `${table}: ${name}`);
      assert.equal(name.endsWith('_total'), d.type === 'counter', `${table}: ${name} is a ${d.type}: only counters end in _total`);
      assert.doesNotMatch(name, /_(ms|milliseconds|kb|mb|mib|percent)(_|$)/, `${table}: ${name}: base units (seconds, bytes, ratios)`);
      if (d.type === 'histogram') assert.match(name, /_(seconds|ratio|bytes)$/, `${table}: ${name}: a histogram names its unit`);
      assert.equal(d.type === 'histogram', !!d.buckets, `${table}: ${name}: buckets go with histograms`);
      for (const l of d.labels) assert.match(l, /^[a-z][a-z_]*$/, `${table}: ${name} label ${l}`);
      assert.ok(d.help.length > 10, `${table}: ${name} says what it means`);
    }
  }
});

const exit = (message: string) => ({ code: 'E_EXITED', message });

test('a replica\'s run that ends is counted once, an OOM kill as one, a status sent again as nothing', () => {
  const running = { state: 'running' as const, restarts: 0 };
  const oom = replicaEvents(running, { state: 'failed', restarts: 0, lastExit: exit('the replica stopped (OOMKilled at the 64 MiB memory limit)') });
  assert.deepEqual([oom.ended?.code, oom.oom], ['E_EXITED', true]);
  // the same failed status again (a reconnect re-sends every status): nothing new
  const again = replicaEvents({ state: 'failed', restarts: 0, lastExit: oom.ended }, { state: 'failed', restarts: 0, lastExit: oom.ended });
  assert.deepEqual([again.ended, again.oom, again.restarts], [null, false, 0]);
  // a SIGKILL may come from outside: not an OOM kill
  assert.equal(replicaEvents(running, { state: 'failed', lastExit: exit('the replica stopped (exit code 137: SIGKILL (the OOM killer at the 64 MiB memory limit, or a kill from outside))') }).oom, false);
  // the restart shows in the next status
  assert.equal(replicaEvents({ state: 'failed', restarts: 1 }, { state: 'creating', restarts: 3 }).restarts, 2);
  // a pull that failed ends a run too, with its code
  assert.equal(replicaEvents({ state: 'pulling' }, { state: 'failed', error: { code: 'E_PULL_FAILED', message: 'x' } }).ended?.code, 'E_PULL_FAILED');
});

test('deploy terms are counted as the replica enters the state after each; an adopted replica adds none', () => {
  const m = { imageMs: 1200, containerMs: 90, engineMs: 700 };
  assert.deepEqual(replicaEvents({ state: 'pulling' }, { state: 'creating', measured: m }).phases, { image: 1200 });
  assert.deepEqual(replicaEvents({ state: 'creating' }, { state: 'starting', measured: m }).phases, { container: 90 });
  assert.deepEqual(replicaEvents({ state: 'starting' }, { state: 'running', measured: m }).phases, { engine: 700 });
  assert.deepEqual(replicaEvents({ state: 'pending' }, { state: 'running', measured: m }).phases, {});
  assert.deepEqual(replicaEvents({ state: 'running' }, { state: 'running', measured: m }).phases, {});
  assert.deepEqual(replicaEvents(null, { state: 'creating', measured: { imageMs: 0 } }).phases, { image: 0 });
});

test('a rollout starts once and ends once, with its outcome', () => {
  const ro = (revision: number, status: RolloutState['status']): RolloutState => ({ revision, status, startedAt: 0 });
  assert.deepEqual(rolloutEvent(undefined, ro(1, 'progressing')), { started: true, ended: null });
  assert.deepEqual(rolloutEvent(ro(1, 'progressing'), ro(1, 'progressing')), { started: false, ended: null });
  assert.deepEqual(rolloutEvent(ro(1, 'progressing'), ro(1, 'complete')), { started: false, ended: 'complete' });
  assert.deepEqual(rolloutEvent(ro(2, 'progressing'), ro(1, 'rolled-back')), { started: false, ended: 'rolled-back' });
  assert.deepEqual(rolloutEvent(ro(1, 'progressing'), ro(1, 'failed')), { started: false, ended: 'failed' });
  // a new revision while one rolls out: that one is superseded, the new one starts
  assert.deepEqual(rolloutEvent(ro(2, 'progressing'), ro(3, 'progressing')), { started: true, ended: 'superseded' });
  // a failed first revision that later completes, a rolled-back one whose replicas become ready: no second outcome
  assert.deepEqual(rolloutEvent(ro(1, 'failed'), ro(1, 'complete')), { started: false, ended: null });
  assert.deepEqual(rolloutEvent(ro(1, 'rolled-back'), ro(1, 'rolled-back')), { started: false, ended: null });
  // a deploy after a complete one
  assert.deepEqual(rolloutEvent(ro(1, 'complete'), ro(2, 'progressing')), { started: true, ended: null });
});
