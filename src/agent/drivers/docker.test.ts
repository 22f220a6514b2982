// How a manifest's cpu and pids, and the default hardening, become the container's HostConfig (the engine itself is tested in test/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateApp } from '../../core/manifest.js';
import { DEFAULT_PIDS, cpuConfig, hardening } from './docker.js';

test('cpu is a share with no quota unless cpuLimit asks for a cap', () => {
  assert.deepEqual(cpuConfig(validateApp({ name: 'a', image: 'x' }).resources), { CpuShares: 102 });
  assert.deepEqual(cpuConfig(validateApp({ name: 'a', image: 'x', resources: { cpu: 2 } }).resources), { CpuShares: 2048 });
  assert.deepEqual(cpuConfig(validateApp({ name: 'a', image: 'x', resources: { cpu: 0.5, cpuLimit: 1.5 } }).resources), { CpuShares: 512, CpuPeriod: 10_000, CpuQuota: 15_000 });
  // the kernel's bounds for cpu.shares
  assert.equal(cpuConfig(validateApp({ name: 'a', image: 'x', resources: { cpu: 0.001 } }).resources).CpuShares, 2);
  assert.equal(cpuConfig(validateApp({ name: 'a', image: 'x', resources: { cpu: 1024 } }).resources).CpuShares, 262_144);
});

test('every container gets no-new-privileges, a pids limit (the manifest\'s, or 1024) and no NET_RAW, MKNOD, SETFCAP ...', () => {
  const h = hardening(validateApp({ name: 'a', image: 'x' }).resources);
  assert.deepEqual(h.SecurityOpt, ['no-new-privileges']);
  assert.equal(h.PidsLimit, DEFAULT_PIDS);
  for (const cap of ['NET_RAW', 'MKNOD', 'AUDIT_WRITE', 'SETFCAP', 'SETPCAP', 'SYS_CHROOT']) assert.ok(h.CapDrop.includes(cap), cap);
  // what images need to start as root and step down stays
  for (const cap of ['CHOWN', 'SETUID', 'SETGID', 'NET_BIND_SERVICE', 'DAC_OVERRIDE', 'FOWNER', 'KILL']) assert.ok(!h.CapDrop.includes(cap), cap);
  assert.equal(hardening(validateApp({ name: 'a', image: 'x', resources: { pids: 64 } }).resources).PidsLimit, 64);
});
