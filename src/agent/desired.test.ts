// The agent's saved desired state: what it reloads is checked like what the control plane sends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DesiredStore } from './desired.js';
import { validateApp } from '../core/manifest.js';

test('a saved state reloads; a damaged or tampered one is refused with the bad field, and runs nothing', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-desired-'));
  const store = new DesiredStore(dir);
  const a = { id: 'web-0-0', app: 'web', specHash: 'h', spec: validateApp({ name: 'web', command: ['sleep', '1'] }) };
  store.save([a], 5);
  assert.deepEqual(store.load(), { assignments: [a], savedAt: 5 });
  assert.equal(fs.statSync(path.join(dir, 'desired.json')).mode & 0o077, 0);
  const file = path.join(dir, 'desired.json');
  fs.writeFileSync(file, JSON.stringify({ assignments: [{ ...a, spec: { ...a.spec, command: 'rm -rf /' } }], savedAt: 5 }));
  assert.equal(store.load(), null);
  assert.match(store.refused!, /^assignments\.0\.spec\.command: /);
  fs.writeFileSync(file, '{"assignments": [');
  assert.equal(store.load(), null);
  assert.match(store.refused!, /^not JSON/);
});
