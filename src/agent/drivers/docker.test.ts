// How a manifest's cpu becomes the container's HostConfig (the engine itself is tested in test/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateApp } from '../../core/manifest.js';
import { cpuConfig } from './docker.js';

test('cpu is a share with no quota unless cpuLimit asks for a cap', () => {
  assert.deepEqual(cpuConfig(validateApp({ name: 'a', image: 'x' }).resources), { CpuShares: 102 });
  assert.deepEqual(cpuConfig(validateApp({ name: 'a', image: 'x', resources: { cpu: 2 } }).resources), { CpuShares: 2048 });
  assert.deepEqual(cpuConfig(validateApp({ name: 'a', image: 'x', resources: { cpu: 0.5, cpuLimit: 1.5 } }).resources), { CpuShares: 512, CpuPeriod: 10_000, CpuQuota: 15_000 });
  // the kernel's bounds for cpu.shares
  assert.equal(cpuConfig(validateApp({ name: 'a', image: 'x', resources: { cpu: 0.001 } }).resources).CpuShares, 2);
  assert.equal(cpuConfig(validateApp({ name: 'a', image: 'x', resources: { cpu: 1024 } }).resources).CpuShares, 262_144);
});
