import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutpostError } from './errors.js';
import { parseBody, parseIsoTime, parseMessage, tsOf, tsRules } from './points.js';

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
  assert.equal(e.code, 'E_BAD_TS');
  assert.equal(e.path, 'line 3');
  assert.match(e.message, /^line 3\.ts: /);
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
    assert.equal((parseMessage(Buffer.from(bad), 0) as { code: string }).code, 'E_BAD_POINT', bad);
  }
});

const NOW = Date.UTC(2025, 0, 31, 12);
const DAY = 86_400_000;

test('a ts is read in the stream\'s unit, or as an ISO-8601 time with a zone', () => {
  const ts = (unit: 's' | 'ms' | 'us' | 'ns', body: string) => [...parseBody(body, false, NOW, tsRules(unit, NOW, DAY, 300_000)).ts!];
  assert.deepEqual(ts('s', `[{"ts": ${NOW / 1000}, "v": 1}, {"ts": ${NOW / 1000 - 0.5}, "v": 2}]`), [NOW, NOW - 500]);
  assert.deepEqual(ts('us', `[{"ts": ${NOW * 1000 + 250}, "v": 1}]`), [NOW + 0.25]);
  assert.deepEqual(ts('ns', `[{"ts": ${NOW * 1e6}, "v": 1}]`), [NOW]);
  assert.deepEqual(ts('ms', '[{"ts": "2025-01-31T11:59:59.5Z", "v": 1}, {"ts": "2025-01-31T13:00:00+01:00", "v": 2}]'), [NOW - 500, NOW]);
  // a string is ISO whatever the unit
  assert.deepEqual(ts('s', '[{"ts": "2025-01-31 12:00:00.000250z", "v": 1}]'), [NOW + 0.25]);
  assert.equal(parseIsoTime('2025-01-31T12:00:00-0130'), NOW + 90 * 60_000);
  // no zone (whose local time?), a date that does not exist, not ISO at all
  for (const bad of ['2025-01-31T12:00:00', '2025-02-30T12:00:00Z', '2025-01-31T24:00:00Z', '1738324800', 'Fri, 31 Jan 2025 12:00:00 GMT', '']) {
    assert.ok(Number.isNaN(parseIsoTime(bad)), bad);
  }
});

test('a ts older than the retention or too far ahead is E_BAD_TS with its path; the whole body is refused', () => {
  const r = tsRules('ms', NOW, DAY, 300_000);
  const refused = (body: string, ndjson = false) => err(() => parseBody(body, ndjson, NOW, r));
  // seconds sent as ms: January 1970, and the message says what it probably is
  let e = refused(`[1, {"ts": ${NOW / 1000}, "v": 2}]`);
  assert.equal(e.code, 'E_BAD_TS');
  assert.equal(e.status, 400);
  assert.equal(e.path, '[1]');
  assert.match(e.message, /^\[1\]\.ts: .*1970-01-21.*older than the hub keeps points.*tsUnit: s/);
  e = refused(`1\n{"ts": ${NOW + 365 * DAY}, "v": 2}`, true);
  assert.equal(e.path, 'line 2');
  assert.match(e.message, /2026-01-31.*further ahead.*maxSkewMs 300000/);
  e = refused(`{"ts": ${NOW * 1000}, "v": 2}`);
  assert.equal(e.path, '');
  assert.match(e.message, /^\.ts: .*tsUnit: us/);
  // a ts that is no time at all is a bad point, as it always was
  for (const x of ['"yesterday"', 'true', '"2025-01-31T12:00:00"', 'null']) {
    e = refused(`[{"ts": ${x}, "v": 2}]`);
    assert.deepEqual([e.code, e.path], ['E_BAD_POINT', '[0]'], x);
    assert.match(e.message, /^\[0\]\.ts: must be a number \(epoch ms\) or an ISO-8601 time/);
  }
  // the edges are in
  assert.deepEqual([...parseBody(`[{"ts": ${NOW - DAY}, "v": 1}, {"ts": ${NOW + 300_000}, "v": 2}]`, false, NOW, r).v], [1, 2]);
  // over MQTT the message is dropped with the code it is counted under
  const m = parseMessage(Buffer.from(`{"ts": ${NOW / 1000}, "v": 2}`), NOW, r) as { code: string; reason: string };
  assert.equal(m.code, 'E_BAD_TS');
  assert.match(m.reason, /^\.ts: .*older/);
  assert.equal((parseMessage(Buffer.from(`{"ts": ${NOW}, "v": 2}`), NOW, r) as { ts: Float64Array }).ts![0], NOW);
});
