import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyCounters, WINDOW_MS } from './counters.js';
import { LogHistogram } from '../../core/sketch.js';

test('windows are 10 s aligned to the epoch, per app and upstream node, taken once each when closed', () => {
  let now = 1_000_003_000;
  const c = new ProxyCounters(() => now);
  c.record('web', { node: 'e2', status: 200, error: false, connectMs: 0.2, firstByteMs: 1, totalMs: 1.5 });
  c.record('web', { node: '', status: 503, error: true, connectMs: null, firstByteMs: null, totalMs: 0.3 });
  c.record('mqtt', { node: 'e3', status: null, error: false, connectMs: 0.1, firstByteMs: 2, totalMs: 900 });
  assert.deepEqual(c.take(), [], 'the window is still open');
  now += WINDOW_MS;
  const w = c.take();
  assert.deepEqual(w.map((x) => [x.app, x.node, x.start, x.end, x.requests, x.errors]), [
    ['web', 'e2', 1_000_000_000, 1_000_010_000, 1, 0], ['web', '', 1_000_000_000, 1_000_010_000, 1, 1], ['mqtt', 'e3', 1_000_000_000, 1_000_010_000, 1, 0],
  ]);
  assert.deepEqual(w[1]!.status, { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 1 });
  assert.equal(w[1]!.connect.n, 0, 'no connect made');
  assert.deepEqual(c.take(), []);
});

test('a window of 1,000 requests a second is under 1,250 bytes as JSON (1 kbit/s over its 10 s), its quantiles within 4.8%', () => {
  let now = 0;
  const c = new ProxyCounters(() => now);
  const totals: number[] = [];
  let seed = 11;
  const rnd = () => { seed = (seed * 48271) % 2147483647; return seed / 2147483647; };
  for (let i = 0; i < 10_000; i++) {
    now = i;
    // 1-8 ms, a slow tail to 40 ms; kept-alive connections mostly (connect 0), a fresh one now and then
    const total = rnd() < 0.99 ? 1 + 7 * rnd() : 8 + 32 * rnd();
    totals.push(total);
    c.record('web', { node: 'e2', status: 200, error: false, connectMs: rnd() < 0.98 ? 0 : 0.1 + 0.2 * rnd(), firstByteMs: total * 0.9, totalMs: total });
  }
  now = WINDOW_MS;
  const [w] = c.take();
  const bytes = JSON.stringify(w).length;
  assert.ok(bytes < 1250, `${bytes} bytes`);
  const sorted = [...totals].sort((a, b) => a - b);
  for (const q of [0.5, 0.99]) {
    const want = sorted[Math.floor(q * (sorted.length - 1))]!;
    const got = LogHistogram.from(w!.total).quantile(q)!;
    assert.ok(Math.abs(got - want) / want <= 0.048, `p${q * 100}: ${got} against ${want}`);
  }
});
