// Device secrets, bearer tokens and the ACL decisions both hub transports use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { devicesSchema, hashSecret, mayPublish, maySubscribe, newDeviceSecret, parseBearer, secretMatches, topicStream } from './devices.js';

test('a new secret is 32 random bytes in base64url; only its own secret matches its hash', () => {
  const a = newDeviceSecret();
  const b = newDeviceSecret();
  assert.match(a.secret, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a.secret, b.secret);
  assert.equal(a.secretHash, hashSecret(a.secret));
  assert.ok(secretMatches(a.secretHash, a.secret));
  assert.ok(!secretMatches(a.secretHash, b.secret));
  assert.ok(!secretMatches(a.secretHash, ''));
});

test('a bearer token splits at its last dot; anything else is no credential', () => {
  assert.deepEqual(parseBearer('Bearer pump.7.abc_-X'), { name: 'pump.7', secret: 'abc_-X' });
  assert.deepEqual(parseBearer('bearer  d.s'), { name: 'd', secret: 's' });
  for (const h of [undefined, '', 'Bearer', 'Bearer nodot', 'Bearer .s', 'Bearer d.', 'Basic ZDpz', 'Bearer a.b c']) assert.equal(parseBearer(h), null, String(h));
});

test('topics: a stream\'s shared topic and a device\'s subtopic feed the stream; a device stays within its streams and its own subtopics', () => {
  const dev = { name: 'd1', secretHash: '0'.repeat(64), streams: ['s1'] };
  assert.deepEqual(topicStream('outpost/data/s1/d1'), { stream: 's1', device: 'd1' });
  assert.equal(topicStream('outpost/data/s1/d1/x'), null);
  assert.deepEqual(mayPublish(dev, 'outpost/data/s1'), { ok: true, stream: 's1' });
  assert.deepEqual(mayPublish(dev, 'outpost/data/s1/d1'), { ok: true, stream: 's1' });
  for (const t of ['outpost/data/s2', 'outpost/data/s1/d2', 'outpost/data/s1/d1/x', '$SYS/x', 'a/b']) assert.equal(mayPublish(dev, t).ok, false, t);
  assert.deepEqual(mayPublish('anonymous', 'a/b'), { ok: true, stream: null });
  assert.equal(mayPublish('anonymous', '$SYS/x').ok, false);
  for (const f of ['outpost/data/s1', 'outpost/data/s1/d1']) assert.ok(maySubscribe(dev, f), f);
  for (const f of ['#', 'outpost/#', 'outpost/data/+', 'outpost/data/s1/+', 'outpost/data/s1/#', 'outpost/data/s1/d2', 'outpost/data/s2', '$SYS/#']) assert.ok(!maySubscribe(dev, f), f);
  assert.ok(maySubscribe('anonymous', '#'));
});

test('a device list names each device once, with a 64-hex-digit hash', () => {
  const ok = { name: 'd1', secretHash: 'a'.repeat(64), streams: ['s1'] };
  assert.ok(devicesSchema.safeParse([ok]).success);
  assert.deepEqual(devicesSchema.safeParse([ok, ok]).error?.issues[0]?.path, [1, 'name']);
  for (const bad of [{ ...ok, secretHash: 'A'.repeat(64) }, { ...ok, name: 'a/b' }, { ...ok, name: '+' }, { ...ok, streams: ['a b'] }]) assert.ok(!devicesSchema.safeParse([bad]).success, JSON.stringify(bad));
});
