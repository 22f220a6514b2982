import { test } from 'node:test';
import assert from 'node:assert/strict';
import { carriesPin, imageRefProblem, parseImageRef, pullRef, repository } from './imageref.js';
import { hasImage, normalizeRef } from './images.js';
import { validateApp } from './manifest.js';
import { OutpostError } from './errors.js';

const D1 = `sha256:${'a'.repeat(64)}`;
const D2 = `sha256:${'b'.repeat(64)}`;

test('references split into registry, repository, tag and digest as engines read them', () => {
  assert.deepEqual(parseImageRef('nginx'), { name: 'nginx', registry: 'docker.io', path: 'library/nginx' });
  assert.deepEqual(parseImageRef('team/app:1.2'), { name: 'team/app', registry: 'docker.io', path: 'team/app', tag: '1.2' });
  assert.deepEqual(parseImageRef(`127.0.0.1:5000/sensor-stats:0.1@${D1}`), { name: '127.0.0.1:5000/sensor-stats', registry: '127.0.0.1:5000', path: 'sensor-stats', tag: '0.1', digest: D1 });
  assert.deepEqual(parseImageRef(`127.0.0.1:5000/sensor-stats@${D1}`), { name: '127.0.0.1:5000/sensor-stats', registry: '127.0.0.1:5000', path: 'sensor-stats', digest: D1 });
  assert.equal(parseImageRef('localhost/web:1').registry, 'localhost');
  assert.equal(parseImageRef('[::1]:5000/a/b:c').registry, '[::1]:5000');
  assert.equal(parseImageRef('ghcr.io/org/sub/app').path, 'org/sub/app');
  // the same repository however it is written
  assert.equal(repository(parseImageRef('nginx:1')), repository(parseImageRef('docker.io/library/nginx')));
});

test('a pin is pulled by name and digest; a tag beside the digest is dropped (engines differ on it)', () => {
  assert.equal(pullRef(parseImageRef(`reg.example:5000/app:1@${D1}`)), `reg.example:5000/app@${D1}`);
  assert.equal(pullRef(parseImageRef('reg.example:5000/app:1')), 'reg.example:5000/app:1');
  assert.equal(pullRef(parseImageRef('app')), 'app');
  assert.equal(normalizeRef(`app:1@${D1}`), `docker.io/library/app@${D1}`);
  assert.ok(hasImage([`docker.io/library/app@${D1}`], `app:1@${D1}`), 'an inventory entry by digest matches a tag+digest pin');
});

test('malformed references are refused with the reason', () => {
  for (const [bad, why] of [
    [`app@sha256:${'a'.repeat(63)}`, /64 lower-case hex/],
    [`app@sha256:${'A'.repeat(64)}`, /64 lower-case hex/],
    [`app@sha512:${'a'.repeat(128)}`, /sha256:/],
    ['app@', /digest/],
    ['app:-x', /tag/],
    ['App', /repository name/],
    ['reg.example/App', /repository name/],
    ['app name', /repository name/],
    ['reg.example:5000/', /repository name/],
    [`${'a'.repeat(256)}`, /longer than 255/],
  ] as const) {
    assert.match(imageRefProblem(bad) ?? 'accepted', why, bad);
  }
  for (const good of ['x', 'x:1', 'a/b/c:v1.2_3', `a@${D1}`, `a:1@${D1}`, '127.0.0.1:1/no-such-image:1', 'my-reg.example.com:443/x__y.z-w']) {
    assert.equal(imageRefProblem(good), null, good);
  }
});

test('the manifest refuses a malformed image reference at path image', () => {
  for (const image of [`app@sha256:${'a'.repeat(10)}`, 'app@latest', 'Bad Name', 'x:1:2']) {
    assert.throws(() => validateApp({ name: 'a', image }), (e: unknown) => e instanceof OutpostError && e.code === 'E_INVALID' && e.path === 'image', image);
  }
  assert.equal(validateApp({ name: 'a', image: `x:1@${D1}` }).image, `x:1@${D1}`);
});

test('RepoDigests carry a pin only with its digest for its repository', () => {
  const pin = parseImageRef(`127.0.0.1:5000/app:1@${D1}`);
  assert.ok(carriesPin([`127.0.0.1:5000/app@${D1}`], pin));
  assert.ok(carriesPin([`127.0.0.1:5000/app@${D2}`, `127.0.0.1:5000/app@${D1}`], pin));
  assert.ok(!carriesPin([`127.0.0.1:5000/app@${D2}`], pin), 'another digest');
  assert.ok(!carriesPin([`127.0.0.1:5000/other@${D1}`], pin), 'the digest under another repository (Podman finds an image by digest alone)');
  assert.ok(!carriesPin([`127.0.0.1:5001/app@${D1}`], pin), 'another registry');
  assert.ok(!carriesPin([], pin));
  assert.ok(!carriesPin([`127.0.0.1:5000/app@${D1}`], parseImageRef('127.0.0.1:5000/app:1')), 'nothing pinned, nothing carried');
  // Docker writes Hub images short, Podman long
  assert.ok(carriesPin([`nginx@${D1}`], parseImageRef(`docker.io/library/nginx@${D1}`)));
  assert.ok(carriesPin([`docker.io/library/nginx@${D1}`], parseImageRef(`nginx:1.27@${D1}`)));
});

test('resources.pids is optional and bounded', () => {
  assert.equal(validateApp({ name: 'a', image: 'x' }).resources.pids, undefined);
  assert.equal(validateApp({ name: 'a', image: 'x', resources: { pids: 64 } }).resources.pids, 64);
  assert.throws(() => validateApp({ name: 'a', image: 'x', resources: { pids: 3 } }), (e: unknown) => e instanceof OutpostError && e.path === 'resources.pids');
});
