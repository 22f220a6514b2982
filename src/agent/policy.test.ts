// The agent's policy against real files: symlinks, paths that do not exist
// yet, the devices of this machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { validateApp } from '../core/manifest.js';
import { allowedDevices, NO_POLICY, policyRefusal, resolvedPath } from './policy.js';

test('devices: globs expanded against the file system, devices only', () => {
  const found = allowedDevices(['/dev/nul?', '/dev/std*', '/dev/no-such-*', '/dev/shm']);
  assert.ok(found.includes('/dev/null'), 'a character device');
  // /dev/stdin and friends are links to /proc/self/fd: kept only where they lead to a device, never /dev/shm (a directory)
  assert.ok(!found.includes('/dev/shm'));
  assert.deepEqual(allowedDevices([]), []);
});

test('host paths: allowed below the prefix, never through a symlink out of it or a prefix of a name', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-policy-'));
  const data = path.join(root, 'data');
  const outside = path.join(root, 'etc');
  fs.mkdirSync(data);
  fs.mkdirSync(outside);
  fs.symlinkSync(outside, path.join(data, 'escape'));
  const policy = { devices: [], hostPaths: [data], privileged: false };
  const app = (hostPath: string) => validateApp({ name: 'a', image: 'i:1', volumes: [{ path: '/m', hostPath }] });
  assert.equal(policyRefusal(app(data), policy, 'docker', 'n'), null);
  assert.equal(policyRefusal(app(`${data}/not-yet/made`), policy, 'docker', 'n'), null, 'a path that does not exist yet is judged by its existing parent');
  const escape = policyRefusal(app(`${data}/escape/passwd`), policy, 'docker', 'n');
  assert.equal(escape?.code, 'E_POLICY');
  assert.equal(escape?.path, 'volumes[0].hostPath');
  assert.match(escape!.message, new RegExp(`host path ${data}/escape/passwd, which resolves to ${outside}/passwd, is not allowed \\(outpost agent --allow-host-paths would allow it\\)`));
  assert.equal(policyRefusal(app(`${data}base`), policy, 'docker', 'n')?.code, 'E_POLICY', 'a name that merely starts like the prefix');
  // the allowed prefix may itself be a link: compared once both are resolved
  fs.symlinkSync(data, path.join(root, 'link'));
  assert.equal(policyRefusal(app(`${root}/link/x`), { ...policy, hostPaths: [`${root}/link`] }, 'docker', 'n'), null);
  assert.equal(resolvedPath(`${root}/link/x/y`), `${data}/x/y`);
  fs.rmSync(root, { recursive: true });
});

test('devices and privileges: refused unless allowed, naming the field and the flag', () => {
  const group = validateApp({ name: 'g', containers: [{ name: 'a', image: 'a:1' }, { name: 'b', image: 'b:1', devices: ['/dev/null'], privileged: true }] });
  const e = policyRefusal(group, NO_POLICY, 'docker', 'edge-1');
  assert.equal(e?.code, 'E_POLICY');
  assert.equal(e?.path, 'containers[1].devices[0]');
  assert.equal(e?.message, 'node edge-1 refuses this replica: containers[1].devices[0]: device /dev/null is not allowed (outpost agent --allow-devices would allow it); containers[1].privileged: a privileged container is not allowed (outpost agent --allow-privileged would allow it)');
  assert.equal(policyRefusal(group, { devices: ['/dev/nul?'], hostPaths: [], privileged: true }, 'docker', 'edge-1'), null);
  // a path that matches the glob but is no device here
  const dir = validateApp({ name: 'd', image: 'i:1', devices: ['/dev/shm'] });
  assert.match(policyRefusal(dir, { devices: ['/dev/*'], hostPaths: [], privileged: false }, 'docker', 'n')!.message, /devices\[0\]: \/dev\/shm is not a device on this node/);
  assert.equal(policyRefusal(validateApp({ name: 'p', command: ['x'], networkMode: 'host' }), NO_POLICY, 'process', 'n'), null, 'a process has the host\'s network anyway');
});
