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

test('secrets are saved sealed with the node\'s own key: the file holds no value, the same node reloads them, another key refuses them', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-desired-'));
  const value = Buffer.from('hunter2-very-secret').toString('base64');
  const a = { id: 'db-0-0', app: 'db', specHash: 'h', spec: validateApp({ name: 'db', command: ['sleep', '1'], secrets: [{ name: 'pw', env: 'PW' }] }), secrets: [{ name: 'pw', version: 1, value, env: 'PW' }] };
  new DesiredStore(dir).save([a], 5);
  const text = fs.readFileSync(path.join(dir, 'desired.json'), 'utf8');
  assert.ok(!text.includes(value) && !text.includes('hunter2'));
  assert.equal(fs.statSync(path.join(dir, 'secrets.key')).mode & 0o777, 0o600);
  assert.deepEqual(new DesiredStore(dir).load(), { assignments: [a], savedAt: 5 });
  fs.writeFileSync(path.join(dir, 'secrets.key'), Buffer.alloc(32, 7));
  const other = new DesiredStore(dir);
  assert.equal(other.load(), null);
  assert.match(other.refused!, /^sealed: /);
});
