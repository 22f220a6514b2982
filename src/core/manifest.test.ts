import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifestText, specHash, validateApp } from './manifest.js';
import { OutpostError } from './errors.js';

function rejects(input: unknown, code: string, path: string): void {
  assert.throws(() => validateApp(input), (e: unknown) => {
    assert.ok(e instanceof OutpostError);
    assert.equal(e.code, code);
    assert.equal(e.path, path);
    return true;
  });
}

test('a minimal manifest gets defaults', () => {
  const a = validateApp({ name: 'web', image: 'localhost/web:1' });
  assert.equal(a.replicas, 1);
  assert.deepEqual(a.resources, { cpu: 0.1, memoryMiB: 64 });
  assert.equal(a.restart.policy, 'always');
  assert.deepEqual(a.placement.constraints, {});
});

test('cpu is a reservation with no cap unless cpuLimit asks for one', () => {
  assert.equal(validateApp({ name: 'a', image: 'x' }).resources.cpuLimit, undefined);
  assert.deepEqual(validateApp({ name: 'a', image: 'x', resources: { cpu: 0.5, cpuLimit: 2 } }).resources, { cpu: 0.5, cpuLimit: 2, memoryMiB: 64 });
});

test('bad fields are named by their path', () => {
  rejects({ name: 'Bad_Name', image: 'x' }, 'E_INVALID', 'name');
  rejects({ name: 'a', image: 'x', replicas: -1 }, 'E_INVALID', 'replicas');
  rejects({ name: 'a', image: 'x', replicas: '2' }, 'E_INVALID', 'replicas');
  rejects({ name: 'a', image: 'x', ports: [{ name: 'http', container: 70000 }] }, 'E_INVALID', 'ports[0].container');
  rejects({ name: 'a', image: 'x', placement: { demand: [{ site: 'f', rps: -3 }] } }, 'E_INVALID', 'placement.demand[0].rps');
  rejects({ name: 'a', image: 'x', resources: { cpu: Number.POSITIVE_INFINITY } }, 'E_INVALID', 'resources.cpu');
  rejects({ name: 'a', image: 'x', resources: { cpu: 1, cpuLimit: 0.5 } }, 'E_INVALID', 'resources.cpuLimit');
  rejects({ name: 'a', image: 'x', resources: { cpuLimit: 0 } }, 'E_INVALID', 'resources.cpuLimit');
  rejects({ name: 'a' }, 'E_INVALID', 'image');
  rejects({ image: 'x' }, 'E_INVALID', 'name');
});

test('restart.maxRetries: a whole number, and nothing to limit with policy never', () => {
  assert.equal(validateApp({ name: 'a', image: 'x' }).restart.maxRetries, undefined);
  assert.deepEqual(validateApp({ name: 'a', image: 'x', restart: { policy: 'on-failure', maxRetries: 5 } }).restart, { policy: 'on-failure', maxRetries: 5 });
  rejects({ name: 'a', image: 'x', restart: { maxRetries: 0 } }, 'E_INVALID', 'restart.maxRetries');
  rejects({ name: 'a', image: 'x', restart: { maxRetries: 1.5 } }, 'E_INVALID', 'restart.maxRetries');
  rejects({ name: 'a', image: 'x', restart: { policy: 'never', maxRetries: 3 } }, 'E_INVALID', 'restart.maxRetries');
});

test('unknown fields are refused, with their path', () => {
  rejects({ name: 'a', image: 'x', replica: 2 }, 'E_INVALID', 'replica');
  rejects({ name: 'a', image: 'x', resources: { cpus: 1 } }, 'E_INVALID', 'resources.cpus');
});

test('health must refer to a declared port', () => {
  rejects({ name: 'a', image: 'x', ports: [{ name: 'http', container: 80 }], health: { http: '/h', port: 'web' } }, 'E_INVALID', 'health.port');
  rejects({ name: 'a', image: 'x', ports: [{ name: 'p', container: 80 }, { name: 'p', container: 81 }] }, 'E_INVALID', 'ports[1].name');
});

test('YAML and JSON text parse; broken text gets E_BAD_YAML / E_BAD_JSON', () => {
  assert.deepEqual(parseManifestText('name: a\nimage: x\n'), { name: 'a', image: 'x' });
  assert.deepEqual(parseManifestText('{"name":"a"}'), { name: 'a' });
  assert.throws(() => parseManifestText('name: [a\n'), (e: unknown) => e instanceof OutpostError && e.code === 'E_BAD_YAML');
  assert.throws(() => parseManifestText('{"name":'), (e: unknown) => e instanceof OutpostError && e.code === 'E_BAD_JSON');
  assert.throws(() => parseManifestText('name: a\nname: b\n'), (e: unknown) => e instanceof OutpostError && e.code === 'E_BAD_YAML');
});

test('the spec hash changes with what runs, not with scale or placement', () => {
  const a = validateApp({ name: 'a', image: 'x:1', replicas: 1 });
  const b = validateApp({ name: 'a', image: 'x:1', replicas: 5, placement: { constraints: { arch: 'amd64' } } });
  const c = validateApp({ name: 'a', image: 'x:2' });
  const d = validateApp({ name: 'a', image: 'x:1', env: { A: '1' } });
  assert.equal(specHash(a), specHash(b));
  assert.notEqual(specHash(a), specHash(c));
  assert.notEqual(specHash(a), specHash(d));
});

test('expose: a port 1-65535, http by default, a drain of 5 s; it needs a declared port and rolls nothing', () => {
  const ports = [{ name: 'http', container: 5000 }];
  const a = validateApp({ name: 'a', image: 'x', ports, expose: { port: 8080 } });
  assert.deepEqual(a.expose, { port: 8080, protocol: 'http', drainS: 5 });
  assert.equal(validateApp({ name: 'a', image: 'x', ports, expose: { port: 1883, protocol: 'tcp', drainS: 0 } }).expose?.protocol, 'tcp');
  rejects({ name: 'a', image: 'x', ports, expose: { port: 0 } }, 'E_INVALID', 'expose.port');
  rejects({ name: 'a', image: 'x', ports, expose: { port: 65536 } }, 'E_INVALID', 'expose.port');
  rejects({ name: 'a', image: 'x', ports, expose: { port: 80.5 } }, 'E_INVALID', 'expose.port');
  rejects({ name: 'a', image: 'x', ports, expose: { port: 80, protocol: 'udp' } }, 'E_INVALID', 'expose.protocol');
  rejects({ name: 'a', image: 'x', ports, expose: { port: 80, drainS: -1 } }, 'E_INVALID', 'expose.drainS');
  rejects({ name: 'a', image: 'x', ports, expose: { port: 80, host: 'x' } }, 'E_INVALID', 'expose.host');
  rejects({ name: 'a', image: 'x', expose: { port: 8080 } }, 'E_INVALID', 'expose');
  assert.equal(specHash(a), specHash(validateApp({ name: 'a', image: 'x', ports })), 'exposing an app does not roll its replicas');
});
