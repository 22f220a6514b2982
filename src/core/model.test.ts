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
