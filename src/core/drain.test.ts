import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateApp } from './manifest.js';
import { drainOf, drainVerdict } from './drain.js';
import { node, replica } from './testkit.js';

const ports = [{ name: 'http', container: 5000 }];
const exposed = validateApp({ name: 'web', image: 'x', ports, expose: { port: 8080, drainS: 5 } });
const running = replica('web-0-0', 'web', 'n1', { endpoint: 'http://n1:5000' });
const n1 = node('n1');

test('only an exposed app\'s replica that may have clients drains, until drainS from now', () => {
  assert.deepEqual(drainOf(exposed, running, n1, false, 1000), { since: 1000, until: 6000 });
  assert.equal(drainOf(validateApp({ name: 'web', image: 'x', ports }), running, n1, false, 1000), null, 'not exposed: no proxy sends it anything');
  assert.equal(drainOf(validateApp({ name: 'web', image: 'x', ports, expose: { port: 8080, drainS: 0 } }), running, n1, false, 1000), null, 'drainS 0');
  assert.equal(drainOf(exposed, { ...running, state: 'starting' }, n1, false, 1000), null, 'never served');
  assert.equal(drainOf(exposed, { ...running, endpoint: null }, n1, false, 1000), null);
  assert.equal(drainOf(exposed, running, n1, true, 1000), null, 'its node lost');
  assert.equal(drainOf(exposed, running, { ...n1, state: 'unreachable' }, false, 1000), null, 'its node away');
  assert.equal(drainOf(exposed, { ...running, drain: { since: 1, until: 2 } }, n1, false, 1000), null, 'already draining');
  assert.equal(drainOf(undefined, running, n1, false, 1000), null);
});

test('a drain ends when no proxy holds the replica any more, or at its deadline; unwatched tables wait for the deadline', () => {
  const d = { since: 1000, until: 6000 };
  assert.deepEqual(drainVerdict(d, 2000, ['n2'], false), { done: false, until: 6000 });
  assert.deepEqual(drainVerdict(d, 2000, [], false), { done: true, why: 'drained' });
  assert.deepEqual(drainVerdict(d, 2000, [], true), { done: false, until: 6000 });
  assert.deepEqual(drainVerdict(d, 6000, ['n2'], true), { done: true, why: 'deadline' });
});
