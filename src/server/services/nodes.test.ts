// The node-loss clock: a node away longer than the timeout is lost, unless
// much of the fleet is away at once (a storm), which pauses every clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { openSqliteStore } from '../store/sqlite.js';
import { State } from '../state.js';
import { Writer } from '../writer.js';
import { Nodes } from './nodes.js';
import { nodeInfo } from '../test-fixtures.js';

async function fleet(n: number, clock: { t: number }) {
  const store = openSqliteStore(':memory:');
  const nodes = new Nodes(new Writer(store, await State.load(store), pino({ level: 'silent' })), () => clock.t, { timeoutMs: 15_000, stormFraction: 0.5, stormMinNodes: 10, stormGraceMs: 10_000 });
  const names = Array.from({ length: n }, (_, i) => `n${i}`);
  for (const x of names) await nodes.register(nodeInfo(x));
  return { nodes, names };
}

test('one node away longer than the timeout is lost; one that knocks at admission is not', async () => {
  const clock = { t: 0 };
  const { nodes } = await fleet(20, clock);
  nodes.disconnected('n0');
  nodes.disconnected('n1');
  clock.t = 10_000;
  assert.deepEqual(nodes.tick(), []);
  nodes.knocked('n1', 2000); // told by admission to come back in 2 s: alive and queued until then, plus jitter (1 s and half the wait)
  clock.t = 16_000;
  assert.deepEqual(nodes.tick(), ['n0']);
  assert.deepEqual([...nodes.lost()], ['n0']);
  clock.t = 29_000;
  assert.deepEqual(nodes.tick(), []);
  clock.t = 29_001;
  assert.deepEqual(nodes.tick(), ['n1']);
  await nodes.register(nodeInfo('n0'));
  nodes.tick();
  assert.deepEqual([...nodes.lost()], ['n1'], 'a node that came back is no longer lost');
});

test('a storm (most of the fleet away) pauses the clocks; when it ends, those still away get the timeout plus the longest back-off from then', async () => {
  const clock = { t: 0 };
  const { nodes, names } = await fleet(20, clock);
  for (const n of names.slice(0, 15)) nodes.disconnected(n);
  for (clock.t = 1000; clock.t <= 60_000; clock.t += 1000) assert.deepEqual(nodes.tick(), [], `nothing is lost during the storm (t=${clock.t})`);
  assert.equal(nodes.storm, true);
  for (const n of names.slice(0, 11)) await nodes.register(nodeInfo(n)); // 4 of 20 still away
  clock.t = 61_000;
  assert.deepEqual(nodes.tick(), []);
  assert.equal(nodes.storm, false);
  clock.t = 85_000;
  assert.deepEqual(nodes.tick(), [], 'the timeout and the longest back-off count from the end of the storm');
  clock.t = 87_000;
  assert.deepEqual(nodes.tick().sort(), ['n11', 'n12', 'n13', 'n14']);
  // a node that goes away after the storm gets the plain timeout
  nodes.disconnected('n0');
  clock.t = 93_000;
  assert.deepEqual(nodes.tick(), []);
  clock.t = 103_000;
  assert.deepEqual(nodes.tick(), ['n0']);
});

test('in a small fleet one node is a large fraction, and is still lost on time', async () => {
  const clock = { t: 0 };
  const { nodes } = await fleet(2, clock);
  nodes.disconnected('n0');
  clock.t = 16_000;
  assert.deepEqual(nodes.tick(), ['n0']);
});
