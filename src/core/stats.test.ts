import { test } from 'node:test';
import assert from 'node:assert/strict';
import { median, quantile, rng, weightedQuantile } from './stats.js';

test('quantiles interpolate; weighted quantiles follow the weights; the generator repeats by seed', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(quantile([0, 10], 0.25), 2.5);
  assert.ok(Number.isNaN(quantile([], 0.5)));
  // a site with 9x the demand decides the weighted median
  assert.equal(weightedQuantile([{ v: 1, w: 9 }, { v: 100, w: 1 }], 0.5), 1);
  assert.equal(weightedQuantile([{ v: 1, w: 1 }, { v: 100, w: 9 }], 0.5), 100);
  const a = rng(7);
  const b = rng(7);
  const xs = [a(), a(), a()];
  assert.deepEqual([b(), b(), b()], xs);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
});
