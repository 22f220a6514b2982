// The CA and serving certificate: made once, kept, re-issued when the names change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { openTls } from './authority.js';
import { makeCsr, newKeyPair, readCsr } from '../../trust/pki.js';
import { parseJoinToken, formatJoinToken } from '../../core/jointoken.js';

const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-tls-'));

test('two processes opening one data dir at once end up with one CA', async () => {
  const d = dir();
  const [a, b] = await Promise.all([openTls(d, '127.0.0.1'), openTls(d, '127.0.0.1')]);
  const again = await openTls(d, '127.0.0.1');
  assert.equal(a.fingerprint, again.fingerprint);
  assert.equal(b.fingerprint, again.fingerprint);
  assert.equal(fs.statSync(path.join(d, 'tls', 'ca.key')).mode & 0o077, 0);
});

test('the serving certificate covers localhost, the listen address and --tls-san names; a new name re-issues it under the same CA', async () => {
  const d = dir();
  const first = await openTls(d, '127.0.0.1');
  const c = new X509Certificate(first.cert);
  assert.ok(c.checkHost('localhost'));
  assert.ok(c.checkIP('127.0.0.1'));
  assert.ok(!c.checkHost('cp.example.net'));
  const second = await openTls(d, '127.0.0.1', { sans: ['cp.example.net', '10.9.8.7'] });
  const c2 = new X509Certificate(second.cert);
  assert.ok(c2.checkHost('cp.example.net'));
  assert.ok(c2.checkIP('10.9.8.7'));
  assert.equal(second.fingerprint, first.fingerprint, 'same CA: join tokens stay valid');
  assert.ok(c2.verify(new X509Certificate(first.trustPem).publicKey));
});

test('a CSR proves its key: a tampered one is refused', async () => {
  const kp = await newKeyPair();
  const csr = await makeCsr(kp, 'edge-1');
  const info = await readCsr(csr);
  assert.equal(info.commonName, 'edge-1');
  const body = csr.split('\n').filter((l) => !l.startsWith('-----')).join('');
  const der = Buffer.from(body, 'base64');
  der[der.length - 80]! ^= 0xff; // a bit inside the signed part
  const bad = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  await assert.rejects(readCsr(bad));
});

test('join tokens carry the CA fingerprint and round-trip; anything else is E_TOKEN_INVALID', () => {
  const t = { caFingerprint: 'a'.repeat(64), id: 'abcdef123456', secret: 'S'.repeat(32) };
  assert.deepEqual(parseJoinToken(formatJoinToken(t)), t);
  for (const bad of ['', 'K10abc::x:y', `OP1${'a'.repeat(63)}::abcdef12.${'s'.repeat(32)}`]) {
    assert.throws(() => parseJoinToken(bad), (e: Error & { code?: string }) => e.code === 'E_TOKEN_INVALID');
  }
});
