import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gcPlan, pullRefusal } from './disk.js';

const MiB = 1048576;

test('a pull that would eat the reserve is refused with the figures', () => {
  assert.equal(pullRefusal({ free: 2000 * MiB, total: 10000 * MiB }, 500 * MiB, 512 * MiB), null);
  assert.match(pullRefusal({ free: 800 * MiB, total: 10000 * MiB }, 500 * MiB, 512 * MiB)!, /800 MiB free, 500 MiB for the image plus 512 MiB kept in reserve/);
  assert.equal(pullRefusal({ free: 600 * MiB, total: 10000 * MiB }, null, 512 * MiB), null, 'unknown size: only the reserve counts');
});

test('GC removes unused, unwanted images oldest first, only above the high-water mark, down to the low one', () => {
  const img = (id: string, created: number, bytes: number, o: Partial<{ inUse: boolean; wanted: boolean }> = {}) => ({ id, refs: [id], bytes, created, inUse: false, wanted: false, ...o });
  const images = [img('new', 3, 500), img('old', 1, 500), img('busy', 0, 5000, { inUse: true }), img('next', 2, 500, { wanted: true }), img('mid', 2, 500)];
  assert.deepEqual(gcPlan(images, { free: 2000, total: 10000 }).map((i) => i.id), []);
  // 90% used: free 1000 of 10000; needs 1500 more to reach 75%
  assert.deepEqual(gcPlan(images, { free: 1000, total: 10000 }).map((i) => i.id), ['old', 'mid', 'new']);
  assert.deepEqual(gcPlan(images, { free: 1600, total: 10000 }).map((i) => i.id), [], '84% used: below the high-water mark');
  assert.deepEqual(gcPlan(images, { free: 1400, total: 10000 }, 85, 80).map((i) => i.id), ['old', 'mid'], 'stops once under the low mark');
});
