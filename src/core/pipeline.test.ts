import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pipeline, streamsSchema } from './pipeline.js';
import { rng } from './stats.js';

/** An independent, two-pass computation of what a window must report. */
function reference(xs: number[]) {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sorted = [...xs].sort((a, b) => a - b);
  const q = (p: number) => { const h = (n - 1) * p; const lo = Math.floor(h); return sorted[lo]! + (h - lo) * (sorted[Math.min(lo + 1, n - 1)]! - sorted[lo]!); };
  return { count: n, sum: xs.reduce((a, b) => a + b, 0), mean, min: Math.min(...xs), max: Math.max(...xs), stddev: Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / n), p50: q(0.5), p99: q(0.99), product: xs.reduce((a, b) => a * b, 1) };
}

test('time windows are aligned to multiples of their length, emitted after end + lateMs, and match a two-pass computation', () => {
  const spec = streamsSchema.parse({ t: { windowMs: 1000, lateMs: 200, ops: ['count', 'sum', 'mean', 'min', 'max', 'stddev', 'p50', 'p99', 'product'] } }).t!;
  const p = new Pipeline('t', spec);
  const rnd = rng(7);
  const byWindow = new Map<number, number[]>();
  for (let i = 0; i < 3000; i++) {
    const ts = 10_500 + i; // 10.5 s .. 13.5 s: windows 10000, 11000, 12000, 13000
    const v = 0.5 + rnd();
    p.add(ts, v);
    const s = Math.floor(ts / 1000) * 1000;
    byWindow.set(s, [...(byWindow.get(s) ?? []), v]);
  }
  assert.deepEqual(p.due(12_100).map((w) => w.start), [10_000], '11000 ends at 12000 but has 200 ms of lateness left');
  const out = p.due(14_100);
  assert.deepEqual(out.map((w) => [w.start, w.end]), [[11_000, 12_000], [12_000, 13_000]]);
  for (const w of out) {
    const r = reference(byWindow.get(w.start)!);
    assert.equal(w.count, r.count);
    for (const k of ['sum', 'mean', 'min', 'max', 'stddev', 'p50', 'p99'] as const) assert.ok(Math.abs((w[k] as number) - r[k]) <= 1e-9 * Math.max(1, Math.abs(r[k])), `${k}: ${w[k]} vs ${r[k]}`);
    assert.ok(Math.abs((w.product as number) / r.product - 1) < 1e-9, 'product');
  }
  p.add(11_999, 1);
  assert.equal(p.counters.late, 1, 'a point for an emitted window is late and dropped');
  assert.equal(p.pending, 500);
});

test('a long window keeps its product in log space when the double overflows', () => {
  const p = new Pipeline('t', streamsSchema.parse({ t: { windowCount: 2000, ops: ['product'] } }).t!);
  for (let i = 0; i < 2000; i++) p.add(i, i % 2 ? -10 : 10, i);
  const [w] = p.due(0);
  assert.equal(w!.product, null);
  assert.ok(Math.abs((w!.logAbsProduct as number) - 2000 * Math.log(10)) < 1e-6);
  assert.equal(w!.productSign, 1);
});

test('count windows close as they fill and remember the position of their last point', () => {
  const p = new Pipeline('c', streamsSchema.parse({ c: { windowCount: 3, ops: ['sum'] } }).c!);
  for (let i = 1; i <= 7; i++) p.add(100 + i, i, i);
  assert.deepEqual(p.due(0).map((w) => [w.start, w.end, w.sum]), [[101, 103, 6], [104, 106, 15]]);
  assert.equal(p.watermark, 6);
  assert.equal(p.pending, 1);
});

test('range and dead-band filters drop points before the window', () => {
  const p = new Pipeline('f', streamsSchema.parse({ f: { windowCount: 100, ops: ['count'], filter: { min: 0, max: 100, deadband: 0.5 } } }).f!);
  for (const v of [1, 1.2, 1.6, -5, 500, 2.0, 2.2]) p.add(0, v);
  assert.equal(p.counters.filtered, 4, '1.2 and 2.0 (within 0.5 of the last kept), -5 and 500 (out of range)');
  assert.equal(p.pending, 3);
});

test('stream specs name their bad fields', () => {
  const r = streamsSchema.safeParse({ t: { windowMs: 1000, windowCount: 5, ops: ['avg'] } });
  assert.ok(!r.success);
  const paths = r.error.issues.map((i) => i.path.join('.'));
  assert.ok(paths.includes('t.ops.0'), paths.join());
  assert.ok(!streamsSchema.safeParse({ 'bad/name': { windowMs: 1000, ops: ['count'] } }).success);
  assert.ok(!streamsSchema.safeParse({ t: { ops: ['count'] } }).success, 'a window is required');
});

test('groupBy device: one result per device and window, oldest first then by device; points with no device form their own group', () => {
  const spec = streamsSchema.parse({ t: { windowMs: 1000, lateMs: 0, ops: ['count', 'sum'], groupBy: 'device' } }).t!;
  const p = new Pipeline('t', spec);
  p.add(1_100, 1, 0, 'b');
  p.add(1_200, 2, 1, 'a');
  p.add(1_300, 3, 2, 'b');
  p.add(2_100, 4, 3, 'a');
  p.add(1_400, 5, 4, null);
  assert.equal(p.pending, 5);
  const out = p.due(3_000).map((w) => [w.start, w.device, w.count, w.sum]);
  assert.deepEqual(out, [[1_000, null, 1, 5], [1_000, 'a', 1, 2], [1_000, 'b', 2, 4], [2_000, 'a', 1, 4]]);
  p.add(1_500, 9, 5, 'c');
  assert.equal(p.counters.late, 1, 'a new device in an emitted window is late too');
  const plain = new Pipeline('u', streamsSchema.parse({ u: { windowMs: 1000, lateMs: 0, ops: ['count'] } }).u!);
  plain.add(1_100, 1, 0, 'a');
  plain.add(1_200, 1, 1, 'b');
  assert.deepEqual(plain.due(3_000).map((w) => [w.count, 'device' in w]), [[2, false]], 'without groupBy the tag changes nothing');
});

test('groupBy needs time windows; a stream source\'s bad pattern is refused with its path', () => {
  const r = streamsSchema.safeParse({ t: { windowCount: 10, ops: ['count'], groupBy: 'device' } });
  assert.equal(r.success, false);
  assert.deepEqual(r.error!.issues[0]!.path, ['t', 'groupBy']);
  const s = streamsSchema.safeParse({ t: { windowMs: 1000, ops: ['count'], from: [{ topic: 'a/#/b', field: '$.v' }] } });
  assert.equal(s.success, false);
  assert.deepEqual(s.error!.issues[0]!.path, ['t', 'from', 0, 'topic']);
});

test('a stream reads ts in ms and takes 5 minutes of clock skew unless told; other units and skews are checked', () => {
  const t = streamsSchema.parse({ t: { windowMs: 1000, ops: ['count'] } }).t!;
  assert.equal(t.tsUnit, 'ms');
  assert.equal(t.maxSkewMs, 300_000);
  assert.equal(streamsSchema.parse({ t: { windowMs: 1000, ops: ['count'], tsUnit: 'us', maxSkewMs: 0 } }).t!.tsUnit, 'us');
  for (const [bad, path] of [[{ tsUnit: 'h' }, 't.tsUnit'], [{ maxSkewMs: -1 }, 't.maxSkewMs'], [{ maxSkewMs: 8 * 86_400_000 }, 't.maxSkewMs']] as const) {
    const r = streamsSchema.safeParse({ t: { windowMs: 1000, ops: ['count'], ...bad } });
    assert.ok(!r.success, JSON.stringify(bad));
    assert.deepEqual(r.error.issues.map((i) => i.path.join('.')), [path]);
  }
});
