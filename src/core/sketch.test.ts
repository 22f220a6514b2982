import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogHistogram } from './sketch.js';

function exact(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(q * (s.length - 1))]!;
}

test('quantiles come back within 4.8% of the values added, over six decades', () => {
  const h = new LogHistogram();
  const xs: number[] = [];
  let seed = 7;
  for (let i = 0; i < 20_000; i++) {
    seed = (seed * 48271) % 2147483647;
    const v = 0.01 * 10 ** (6 * (seed / 2147483647));
    xs.push(v);
    h.add(v);
  }
  for (const q of [0, 0.01, 0.5, 0.9, 0.99, 1]) {
    const want = exact(xs, q);
    const got = h.quantile(q)!;
    assert.ok(Math.abs(got - want) / want <= 0.048, `q${q}: ${got} against ${want}`);
  }
  assert.equal(h.n, 20_000);
  assert.ok(h.buckets < 160 && h.toJSON().c.length < 160, 'six decades in fewer than 160 buckets');
});

test('sketches merge by adding counts, survive JSON, and take zeros and refuse nonsense', () => {
  const a = new LogHistogram();
  const b = new LogHistogram();
  for (let i = 1; i <= 100; i++) (i % 2 ? a : b).add(i);
  a.add(0);
  a.add(-1);
  a.add(Number.NaN);
  const m = LogHistogram.from(JSON.parse(JSON.stringify(a.toJSON())));
  m.merge(b);
  assert.equal(m.n, 101);
  assert.equal(m.quantile(0), 0);
  assert.equal(m.max, 100);
  assert.ok(Math.abs(m.quantile(0.5)! - 50) / 50 <= 0.048);
  assert.equal(new LogHistogram().quantile(0.5), null);
});
