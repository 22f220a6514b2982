// The registry auth file: what it may hold, and that one others can read is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OutpostError } from '../core/errors.js';
import { readRegistryAuth, registryKey } from './auth.js';

function write(doc: unknown, mode = 0o600): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-auth-'));
  const f = path.join(dir, 'config.json');
  fs.writeFileSync(f, typeof doc === 'string' ? doc : JSON.stringify(doc), { mode });
  fs.chmodSync(f, mode);
  return f;
}

const refused = (f: string, why: RegExp) => assert.throws(() => readRegistryAuth(f), (e: unknown) => e instanceof OutpostError && e.code === 'E_USAGE' && why.test(e.message));

test('credentials by registry, as docker login and podman login write them', () => {
  const a = readRegistryAuth(write({ auths: {
    'reg.example:5000': { auth: Buffer.from('alice:pa:ss').toString('base64') },
    'https://ghcr.io': { username: 'bob', password: 'pw' },
    'https://index.docker.io/v1/': { auth: Buffer.from('carol:x').toString('base64') },
    'quay.io': { identitytoken: 'tok' },
  } }));
  assert.deepEqual(a.forRegistry('reg.example:5000'), { username: 'alice', password: 'pa:ss' }, 'a password may hold a colon');
  assert.deepEqual(a.forRegistry('ghcr.io'), { username: 'bob', password: 'pw' });
  assert.deepEqual(a.forRegistry('docker.io'), { username: 'carol', password: 'x' }, 'Docker Hub under its login address');
  assert.deepEqual(a.forRegistry('quay.io'), { identitytoken: 'tok' });
  assert.equal(a.forRegistry('reg.example:5001'), null, 'another port is another registry');
  assert.equal(registryKey('HTTPS://Registry-1.Docker.io/v2/'), 'docker.io');
});

test('a file others can read, or one that is not an auth file, is refused with E_USAGE and the reason', () => {
  refused(write({ auths: {} }, 0o644), /can be read by others \(mode 0644\).*chmod 600/);
  refused(write({ auths: {} }, 0o640), /mode 0640/);
  refused(write('{"auths":'), /not valid JSON/);
  refused(write({ credsStore: 'desktop' }), /no "auths" map/);
  refused(write({ auths: { 'r.example': { auth: Buffer.from('nocolon').toString('base64') } } }), /not base64 of user:password/);
  refused(write({ auths: { 'r.example': {} } }), /no "auth"/);
  refused(path.join(os.tmpdir(), 'outpost-no-such-auth.json'), /cannot read .*ENOENT/);
  assert.equal(readRegistryAuth(write({ auths: {} }, 0o400)).forRegistry('x'), null, 'read-only for its owner is fine');
});
