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

test('a replica in flight is a window of engine work from now; a long-overdue one is not', async () => {
  const { startWindow } = await import('./live.js');
  const { replica } = await import('./testkit.js');
  const predicted = { imageMs: 1000, containerMs: 100, engineMs: 200, deployMs: 1300 };
  // pulling since t=0, now t=500: starts in 600 ms, lasts 200
  assert.deepEqual(startWindow(replica('r', 'a', 'n', { state: 'pulling', createdAt: 0, predicted }), 500), { start: 600, end: 800 });
  // started 150 ms ago with 200 predicted: 50 ms to go
  assert.deepEqual(startWindow(replica('r', 'a', 'n', { state: 'starting', startedAt: 10_000, createdAt: 0, predicted }), 10_150), { start: -150, end: 50 });
  assert.equal(startWindow(replica('r', 'a', 'n', { state: 'starting', startedAt: 10_000, createdAt: 0, predicted }), 100_000), null, 'stuck for 90 s: not in flight');
  assert.equal(startWindow(replica('r', 'a', 'n', { state: 'running', predicted }), 0), null);
});

test('noise is not contention: a small slowdown where none was expected teaches nothing, even on many cores', () => {
  // 2 at once on 8 cores, 10% slower: c stays unknown
  assert.equal(learnStartCores(null, 200, 220, 2, 8), null);
  // but a clear slowdown teaches c
  assert.equal(learnStartCores(null, 200, 600, 16, 8), 1.5);
});
