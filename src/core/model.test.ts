import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calibrate, calibrateBandwidth, DEFAULTS, ewma, imageMs, predictDeploy } from './model.js';

test('T_image is missing bytes over bandwidth, 0 when cached', () => {
  // 50 MiB at 100 Mbit/s: 52428800 * 8 / 100000 = 4194.3 ms
  assert.equal(Math.round(imageMs(52428800, 100)), 4194);
  assert.equal(imageMs(0, 100), 0);
  const p = predictDeploy({ cached: true, missingBytes: 52428800, timings: { containerMs: 120, engineMs: 300, bandwidthMbps: 100, samples: 3 } });
  assert.deepEqual(p, { imageMs: 0, containerMs: 120, engineMs: 300, deployMs: 420 });
});

test('defaults stand in before the first measurement', () => {
  const p = predictDeploy({ cached: true, missingBytes: null, timings: { containerMs: null, engineMs: null, bandwidthMbps: null, samples: 0 } });
  assert.equal(p.deployMs, DEFAULTS.containerMs + DEFAULTS.engineMs);
});

test('calibration moves toward measurements by an EWMA', () => {
  assert.equal(ewma(null, 200), 200);
  assert.equal(ewma(100, 200, 0.5), 150);
  let t = { containerMs: null as number | null, engineMs: null as number | null, bandwidthMbps: null as number | null, samples: 0 };
  t = calibrate(t, { imageMs: 0, containerMs: 100, engineMs: 400 });
  assert.deepEqual([t.containerMs, t.engineMs, t.bandwidthMbps, t.samples], [100, 400, null, 1]);
  t = calibrate(t, { imageMs: 1000, containerMs: 200, engineMs: 400 });
  assert.equal(t.containerMs, 130);
  t = calibrateBandwidth(t, 12_500_000, 1000);
  assert.equal(t.bandwidthMbps, 100); // 12.5 MB in 1 s = 100 Mbit/s
  assert.equal(calibrateBandwidth(t, 0, 1000), t, 'a pull of nothing new says nothing about bandwidth');
});

test('the first start of a new image, overlapping others, does not teach contention from another image\'s T_engine', () => {
  const t = { containerMs: 20, engineMs: 200, bandwidthMbps: null, samples: 5, engineByImage: { 'a:1': 200 }, startCores: 1 };
  // image b starts for the first time, 3 at once on 2 cores, and is slow by nature (3 s)
  const next = calibrate(t, { imageMs: 0, containerMs: 20, engineMs: 3000 }, { concurrency: 3, cpus: 2, image: 'b:1' });
  assert.equal(next.startCores, 1, 'c is left alone');
  assert.equal(next.engineByImage!['b:1'], 2000, 'b\'s uncontended T_engine: 3000 / 1.5');
  // its next overlapping start, against its own T_engine, does teach c
  const again = calibrate(next, { imageMs: 0, containerMs: 20, engineMs: 3600 }, { concurrency: 3, cpus: 2, image: 'b:1' });
  assert.ok(again.startCores! > 1, String(again.startCores));
});
