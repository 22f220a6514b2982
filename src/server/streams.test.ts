// The control plane's store of window results: each (node, hub, seq) once, queries, pruning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamStore } from './streams.js';

test('a re-sent result is acknowledged again and stored once; old results are pruned', () => {
  const s = new StreamStore(':memory:');
  const w = (seq: number, start: number) => ({ seq, doc: { stream: 't', start, end: start + 1000, count: 3, mean: 2 } });
  assert.deepEqual(s.add('n1', 'hub-a', [w(1, 0), w(2, 1000)], 5), [1, 2]);
  assert.deepEqual(s.add('n1', 'hub-a', [w(2, 1000), w(3, 2000)], 6), [2, 3], 'the re-sent 2 is acknowledged');
  assert.deepEqual(s.add('n1', 'hub-b', [w(1, 3000)], 7), [1], 'another hub id is another sequence');
  assert.deepEqual(s.add('n1', 'hub-a', [{ seq: 9, doc: { stream: 't' } } as never, { seq: 1.5, doc: w(0, 0).doc }], 8), [], 'malformed items are not acknowledged');
  assert.deepEqual(s.windows('t', { node: 'n1' }).map((x) => x.start), [0, 1000, 2000, 3000]);
  assert.deepEqual(s.windows('t', { from: 1000, to: 3000 }).map((x) => [x.node, x.start, x.mean]), [['n1', 1000, 2], ['n1', 2000, 2]]);
  assert.deepEqual(s.summary(), [{ node: 'n1', stream: 't', windows: 4, firstStart: 0, lastEnd: 4000 }]);
  assert.equal(s.prune(2500), 2);
  assert.deepEqual(s.windows('t', {}).map((x) => x.start), [2000, 3000]);
  s.close();
});
