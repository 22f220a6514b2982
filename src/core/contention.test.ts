import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contention, learnStartCores, meanConcurrency, overlappedEngine } from './contention.js';

test('no slowdown while the starts fit the cores; proportional beyond', () => {
  assert.equal(contention(1, 1, 2), 1);
  assert.equal(contention(2, 1, 2), 1);
  assert.equal(contention(3, 1, 2), 1.5);
  assert.equal(contention(7, 1.2, 2), 4.2);
  assert.equal(contention(3, 1, 0), 3, 'a host that reports no cores counts as one');
});

test('mean concurrency weighs each overlapping start by how much of this one it covers', () => {
  const w = { start: 0, end: 100 };
  assert.equal(meanConcurrency(w, []), 1);
  assert.equal(meanConcurrency(w, [{ start: 0, end: 100 }, { start: 50, end: 300 }]), 2.5);
  assert.equal(meanConcurrency(w, [{ start: 100, end: 200 }, { start: -50, end: 0 }]), 1, 'touching is not overlapping');
});

test('starts that overlap slow each other, and a later start overlaps less', () => {
  const s = (host: string, at: number) => ({ host, cpus: 2, startCores: 1, at, engineMs: 200 });
  const together = overlappedEngine([s('h', 0), s('h', 0), s('h', 0)]);
  assert.deepEqual(together.map((x) => Math.round(x.engineMs)), [300, 300, 300]);
  const staggered = overlappedEngine([s('h', 0), s('h', 0), s('h', 10_000)]);
  assert.deepEqual(staggered.map((x) => Math.round(x.engineMs)), [200, 200, 200], 'two at a time fit two cores; the third starts alone');
  const hosts = overlappedEngine([s('a', 0), s('b', 0), s('c', 0)]);
  assert.deepEqual(hosts.map((x) => x.concurrency), [1, 1, 1]);
});

test('calibration: a slowed start teaches the cores per start; an unslowed overlap bounds them', () => {
  // three at once took 1.6x: c = 1.6 * 2 / 3
  assert.equal(learnStartCores(null, 150, 240, 3, 2), 1.07);
  // two at once with no slowdown on 2 cores: c cannot be above 1
  const c = learnStartCores(1.5, 150, 150, 2, 2)!;
  assert.ok(c < 1.5 && c >= 1, String(c));
  // a small overlap, or no uncontended T_engine to compare with, teaches nothing
  assert.equal(learnStartCores(1, 150, 400, 1.2, 2), 1);
  assert.equal(learnStartCores(null, null, 400, 3, 2), null);
});
