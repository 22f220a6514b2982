import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutpostError } from './errors.js';
import { parseBody, parseMessage, tsOf } from './points.js';

const err = (f: () => unknown) => {
  try { f(); } catch (e) { return e as OutpostError; }
  throw new Error('no error');
};

test('HTTP bodies: arrays of numbers or {ts, v}, NDJSON lines, arrival time where no ts', () => {
  const a = parseBody('[1, 2.5, -3e2]', false, 1000);
  assert.deepEqual([...a.v], [1, 2.5, -300]);
  assert.equal(a.ts, null);
  assert.equal(tsOf(a, 2), 1000);
  const b = parseBody('[1, {"ts": 5, "v": 2}]', false, 1000);
  assert.deepEqual([...b.ts!], [1000, 5]);
  const c = parseBody('1\n[2,3]\n{"ts":7,"v":4}\n\n', true, 9);
  assert.deepEqual([...c.v], [1, 2, 3, 4]);
  assert.deepEqual([...c.ts!], [9, 9, 9, 7]);
});

test('the first bad value is named by its position', () => {
  let e = err(() => parseBody('[1, 2, 1e999, 4]', false, 0));
  assert.equal(e.code, 'E_BAD_POINT');
  assert.equal(e.path, '[2]');
  e = err(() => parseBody('[1, "2"]', false, 0));
  assert.equal(e.path, '[1]');
  e = err(() => parseBody('[1, {"v": null}]', false, 0));
  assert.match(e.message, /\[1\]: \.v must be a finite number/);
  e = err(() => parseBody('1\n2\n{"ts": -1, "v": 3}', true, 0));
  assert.equal(e.path, 'line 3');
  e = err(() => parseBody('[1, 2,', false, 0));
  assert.equal(e.code, 'E_BAD_JSON');
  e = err(() => parseBody(JSON.stringify(new Array(100_001).fill(1)), false, 0));
  assert.equal(e.code, 'E_TOO_LARGE');
  assert.equal(e.status, 413);
});

test('MQTT messages never throw: a reason comes back instead', () => {
  assert.deepEqual([...(parseMessage(Buffer.from('21.5'), 0) as { v: Float64Array }).v], [21.5]);
  assert.deepEqual([...(parseMessage(Buffer.from('[1,2]'), 0) as { v: Float64Array }).v], [1, 2]);
  assert.equal((parseMessage(Buffer.from('{"ts":3,"v":1}'), 0) as { ts: Float64Array }).ts![0], 3);
  for (const bad of ['', 'abc', 'NaN', 'Infinity', '0x10', '[1,"a"]', '{"v":"1"}', '\u0000\u00ff', 'null']) {
    assert.equal(typeof parseMessage(Buffer.from(bad), 0), 'string', bad);
  }
});
