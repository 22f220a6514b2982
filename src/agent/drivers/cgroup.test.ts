// The cgroup v2 path, against a directory laid out as a cgroup2 mount is
// (this machine's kernel gives every controller to v1, so a real v2 hierarchy
// with controllers cannot be had here): which controllers it enables where,
// which files it writes with which values, and when it declines. The v1 path
// runs for real in test/edge.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cgroupsV2, cpuWeight, oomKills } from './cgroup.js';

/** A cgroup2 mount's root as the kernel shows it, with `controllers` available; the kernel would make each new cgroup's files, so outpost.slice's are made here. */
function fakeV2(controllers: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-cg2-'));
  fs.writeFileSync(path.join(root, 'cgroup.controllers'), `${controllers}\n`);
  fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), '\n');
  fs.mkdirSync(path.join(root, 'outpost.slice'));
  fs.writeFileSync(path.join(root, 'outpost.slice', 'cgroup.subtree_control'), '\n');
  return root;
}

const read = (...p: string[]) => fs.readFileSync(path.join(...p), 'utf8');

test('v2: memory, pids and cpu are enabled at the root and in outpost.slice; a replica gets memory.max, no swap, pids.max, cpu.weight and cpu.max', () => {
  const root = fakeV2('cpuset cpu io memory hugetlb pids rdma misc');
  const g = cgroupsV2(root);
  assert.ok(!('reason' in g), JSON.stringify(g));
  assert.equal(g.version, 2);
  assert.equal(read(root, 'cgroup.subtree_control'), '+memory +pids +cpu');
  assert.equal(read(root, 'outpost.slice', 'cgroup.subtree_control'), '+memory +pids +cpu');
  const cg = g.create('app-0-1', { resources: { cpu: 0.5, cpuLimit: 1.5, memoryMiB: 96 }, pidsMax: 300 });
  const dir = path.join(root, 'outpost.slice', 'app-0-1');
  assert.deepEqual(cg, { version: 2, memory: dir, pids: dir, cpu: dir });
  assert.equal(read(dir, 'memory.max'), String(96 * 1048576));
  assert.equal(read(dir, 'memory.swap.max'), '0');
  assert.equal(read(dir, 'pids.max'), '300');
  assert.equal(read(dir, 'cpu.weight'), String(cpuWeight(512)));
  assert.equal(read(dir, 'cpu.max'), '15000 10000', '1.5 cores: 15 ms in each 10 ms period');
  // no cap asked for: no cpu.max written (the kernel's default, max, stays)
  const free = g.create('app-1-2', { resources: { cpu: 2, memoryMiB: 64 }, pidsMax: 1024 });
  assert.equal(fs.existsSync(path.join(free.cpu!, 'cpu.max')), false);
  assert.equal(read(free.cpu!, 'cpu.weight'), String(cpuWeight(2048)));
});

test('v2: controllers already on are not asked for again; without cpu the replica gets memory and pids only', () => {
  const root = fakeV2('memory pids');
  fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), 'memory\n');
  const g = cgroupsV2(root);
  assert.ok(!('reason' in g));
  assert.equal(read(root, 'cgroup.subtree_control'), '+pids');
  const cg = g.create('r', { resources: { cpu: 1, memoryMiB: 64 }, pidsMax: 10 });
  assert.equal(cg.cpu, null);
  assert.equal(fs.existsSync(path.join(cg.memory, 'cpu.weight')), false);
});

test('v2 is declined, saying why, when memory or pids is not available (a hybrid system: v1 holds them)', () => {
  for (const controllers of ['', 'hugetlb', 'memory cpu']) {
    const g = cgroupsV2(fakeV2(controllers));
    assert.ok('reason' in g);
    assert.match(g.reason, /memory and pids controllers are not available/);
  }
  const gone = cgroupsV2(path.join(os.tmpdir(), 'outpost-no-such-mount'));
  assert.ok('reason' in gone && /ENOENT/.test(gone.reason));
});

test('cpu.weight follows runc\'s conversion of shares; OOM kills are read from memory.events', () => {
  assert.deepEqual([2, 102, 1024, 262_144].map(cpuWeight), [1, 4, 39, 10_000]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-cg2-'));
  fs.writeFileSync(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n');
  assert.equal(oomKills({ version: 2, memory: dir, pids: dir, cpu: dir }), 2);
  assert.equal(oomKills({ version: 2, memory: path.join(dir, 'gone'), pids: dir, cpu: null }), null);
});
