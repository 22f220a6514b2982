// A replica's declared checks as its watch runs them: each at its own interval,
// ready only while every one passes, unhealthy at one's own threshold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { healthSchema } from '../core/containers.js';
import { CheckSet } from './health.js';

const h = (o: object) => healthSchema.parse(o);

test('the replica is ready only while every check passes; the failing one is named and restarts it at its own threshold', async () => {
  let dbOk = true;
  let appRuns = 0;
  const set = new CheckSet([
    { container: null, check: async () => { appRuns++; return true; }, h: h({ http: '/', intervalMs: 10_000 }) },
    { container: 'db', check: async () => dbOk, h: h({ exec: ['x'], intervalMs: 10, failureThreshold: 2 }) },
  ]);
  assert.equal(set.tickMs, 10);
  assert.deepEqual(await set.run(0), { ready: true, failing: [], unhealthy: null });
  dbOk = false;
  await new Promise((r) => setTimeout(r, 15));
  const once = await set.run(100);
  assert.deepEqual([once.ready, once.failing, once.unhealthy], [false, ['container "db"\'s health check'], null]);
  await new Promise((r) => setTimeout(r, 15));
  assert.deepEqual((await set.run(100)).unhealthy, { name: 'container "db"\'s health check', failures: 2 });
  assert.equal(appRuns, 1, 'the app\'s check waits for its own 10 s interval');
});

test('failures within a check\'s start period make the replica not ready but do not count', async () => {
  const set = new CheckSet([{ container: null, check: async () => false, h: h({ exec: ['x'], intervalMs: 10, failureThreshold: 1, startPeriodMs: 1000 }) }]);
  const r = await set.run(500);
  assert.deepEqual([r.ready, r.unhealthy], [false, null]);
  await new Promise((res) => setTimeout(res, 15));
  assert.equal((await set.run(1500)).unhealthy?.failures, 1);
});
