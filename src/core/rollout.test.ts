import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rolloutStep } from './rollout.js';
import { replica } from './testkit.js';
import type { ReplicaRecord } from './types.js';

const old = (n: number) => Array.from({ length: n }, (_, i) => replica(`o${i}`, 'a', `n${i}`, { specHash: 'old', createdAt: i }));
const fresh = (n: number, ready: boolean) => Array.from({ length: n }, (_, i) => replica(`f${i}`, 'a', `m${i}`, { specHash: 'new', createdAt: 100 + i, state: ready ? 'running' : 'starting' }));

/** Runs a rollout to the end, checking the bounds at every step. */
function simulate(k: number, surge: number, unavailable: number): number {
  let stale: ReplicaRecord[] = old(k);
  let neu: ReplicaRecord[] = [];
  let steps = 0;
  let made = 0;
  while (stale.length > 0 || neu.length < k) {
    const s = rolloutStep(k, surge, unavailable, neu, stale);
    stale = stale.filter((r) => !s.remove.includes(r));
    neu = neu.map((r) => ({ ...r, state: 'running' as const })); // what was started last step is ready now
    for (let i = 0; i < s.create; i++) neu.push(replica(`f${made++}`, 'a', 'x', { specHash: 'new', state: 'starting' }));
    const readyNow = stale.length + neu.filter((r) => r.state === 'running').length;
    assert.ok(stale.length + neu.length <= k + surge, `at most k + surge exist (step ${steps})`);
    assert.ok(readyNow >= k - unavailable, `at least k - unavailable ready (step ${steps}: ${readyNow})`);
    assert.ok(++steps < 100, 'the rollout ends');
  }
  return steps;
}

test('rolling updates keep within surge and availability, and finish', () => {
  for (const [k, s, u] of [[1, 1, 0], [3, 1, 0], [3, 0, 1], [5, 2, 1], [4, 1, 1]] as const) simulate(k, s, u);
});

test('new replicas that are not ready hold the old ones in place', () => {
  const s = rolloutStep(2, 1, 0, fresh(1, false), old(2));
  assert.equal(s.remove.length, 0);
  assert.equal(s.create, 0, 'surge is used up');
  const t = rolloutStep(2, 1, 0, fresh(1, true), old(2));
  assert.equal(t.remove.length, 1);
});

test('old replicas that serve nothing are removed at once', () => {
  const dead = old(2).map((r) => ({ ...r, state: 'failed' as const }));
  const s = rolloutStep(2, 0, 0, [], dead);
  assert.equal(s.remove.length, 2);
  assert.equal(s.create, 2);
});
