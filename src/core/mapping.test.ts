import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePath, compileTopic, streamSourceSchema, topicPatternError, valueAt } from './mapping.js';

test('topic patterns: + matches one level and names the device; # matches the rest and its parent; others do not match', () => {
  const p = compileTopic('plant/+/env');
  assert.deepEqual(p.match('plant/dev-17/env'), { device: 'dev-17' });
  assert.equal(p.match('plant/dev-17/env/x'), null);
  assert.equal(p.match('plant/env'), null);
  assert.equal(p.match('other/dev-17/env'), null);
  const h = compileTopic('site/a/#', 3);
  assert.deepEqual(h.match('site/a/line-2/temp'), { device: 'line-2' });
  assert.deepEqual(h.match('site/a'), { device: null }, '# matches its parent level');
  assert.deepEqual(compileTopic('fixed/topic').match('fixed/topic'), { device: null });
  assert.deepEqual(compileTopic('+/+/t', 2).match('a/b/t'), { device: 'b' });
  assert.deepEqual(p.match('plant//env'), { device: null }, 'an empty level names no device');
});

test('topic patterns that are not: # not last, + or # inside a level, $ topics', () => {
  assert.equal(topicPatternError('a/+/b/#'), null);
  assert.match(topicPatternError('a/#/b')!, /last level/);
  assert.match(topicPatternError('a/b+/c')!, /whole level/);
  assert.match(topicPatternError('$SYS/#')!, /\$/);
  const r = streamSourceSchema.safeParse({ topic: 'a/x#', field: '$.t' });
  assert.equal(r.success, false);
  assert.deepEqual(r.error!.issues[0]!.path, ['topic']);
  assert.equal(streamSourceSchema.safeParse({ topic: 'a/+', field: 'temperature' }).success, false, 'a path starts with $');
});

test('field paths read objects and arrays; a missing step is undefined', () => {
  const msg = { temperature: 21.5, env: { h: 40, list: [1, { x: 9 }] }, 'a-b': 3 };
  assert.equal(valueAt(msg, compilePath('$.temperature')), 21.5);
  assert.equal(valueAt(msg, compilePath('$.env.h')), 40);
  assert.equal(valueAt(msg, compilePath('$.env.list[1].x')), 9);
  assert.equal(valueAt(msg, compilePath('$.a-b')), 3);
  assert.equal(valueAt(msg, compilePath('$.env.missing')), undefined);
  assert.equal(valueAt(msg, compilePath('$.temperature.x')), undefined);
  assert.equal(valueAt(msg, compilePath('$.env[0]')), undefined, 'an index into an object');
  assert.equal(valueAt(msg, compilePath('$.constructor')), undefined, 'inherited properties are not fields');
});

test('a source table routes a topic to every stream reading it, with the device; an object gives each stream its field', async () => {
  const { SourceTable, pointsAt } = await import('./mapping.js');
  const t = new SourceTable({
    temperature: { from: [{ topic: 'plant/+/env', field: '$.temperature', ts: '$.time' }] },
    humidity: { from: [{ topic: 'plant/+/env', field: '$.humidity' }] },
    other: {},
  });
  assert.equal(t.size, 2);
  const r = t.routes('plant/dev-3/env');
  assert.deepEqual(r.map((x) => [x.source.stream, x.device]), [['temperature', 'dev-3'], ['humidity', 'dev-3']]);
  assert.deepEqual(t.routes('plant/dev-3/power'), []);
  const msg = { temperature: 21.5, humidity: 40, time: 1_700_000_000 };
  assert.deepEqual(pointsAt(msg, r[0]!.source.field!, r[0]!.source.ts), { v: [21.5], ts: [1_700_000_000] });
  assert.deepEqual(pointsAt(msg, r[1]!.source.field!, null), { v: [40], ts: null });
  assert.deepEqual(pointsAt([{ humidity: 1 }, { humidity: 2 }], r[1]!.source.field!, null), { v: [1, 2], ts: null });
  assert.match(pointsAt([{ humidity: 1 }, { h: 2 }], r[1]!.source.field!, null) as string, /^\[1\]: the field is missing/);
  assert.match(pointsAt({ humidity: '40' }, r[1]!.source.field!, null) as string, /not a finite number/);
});

test('a first-level wildcard does not match $ topics; a source under outpost/data/ is refused', () => {
  assert.equal(compileTopic('+/telemetry').match('$SYS/telemetry'), null);
  assert.equal(compileTopic('#').match('$SYS/broker/load'), null);
  assert.deepEqual(compileTopic('+/telemetry').match('dev-1/telemetry'), { device: 'dev-1' });
  assert.match(topicPatternError('outpost/data/x/+')!, /their own streams/);
});
