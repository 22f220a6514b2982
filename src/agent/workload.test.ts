// Identity tokens on the node against a real signer: written 0400 in the
// replica's directory, asked for again once half a token's life is gone (not
// before), and the file replaced with the new one; the hub's check refuses a
// token for another node or signed by another key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { AgentToServer } from '../contract/protocol.js';
import { WorkloadSigner, ensureIdentityKey } from '../server/trust/workload.js';
import { WorkloadTokens } from '../hub/identity.js';
import { IdentityTokens, TOKEN_FILE } from './workload.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-workload-'));

function signer(): WorkloadSigner {
  const dir = tmp();
  ensureIdentityKey(dir);
  return new WorkloadSigner(dir);
}

test('a token is written for its replica, rotated at half its life (not before), and the file replaced', async () => {
  const s = signer();
  const asked: string[][] = [];
  let now = Date.now();
  // the control plane's side, answered at once: what the gateway does for the node's own replicas
  let tokens: IdentityTokens;
  const send = (m: AgentToServer) => {
    if (m.type !== 'identity') return false;
    asked.push(m.replicas);
    queueMicrotask(() => tokens.onTokens(Object.fromEntries(m.replicas.map((id) => [id, s.sign({ app: 'a', replica: id, node: 'n1' }, now)]))));
    return true;
  };
  const base = tmp();
  tokens = new IdentityTokens(base, send, pino({ level: 'silent' }));
  try {
    const owner = { uid: process.getuid!(), gid: process.getgid!() };
    const first = await tokens.issue('r1', owner);
    assert.ok(first, 'the directory was made');
    assert.ok(first.token);
    const file = path.join(first.dir, TOKEN_FILE);
    assert.equal(fs.readFileSync(file, 'utf8'), first.token);
    assert.equal(fs.statSync(file).mode & 0o777, 0o400);
    assert.equal(fs.statSync(first.dir).mode & 0o777, 0o700);

    tokens.refresh(now + 29 * 60_000);
    assert.deepEqual(asked, [['r1']], 'nothing asked before half the life');
    now += 31 * 60_000;
    tokens.refresh(now);
    assert.deepEqual(asked, [['r1'], ['r1']], 'asked again past half the life');
    await new Promise((r) => setImmediate(r));
    const second = fs.readFileSync(file, 'utf8');
    assert.notEqual(second, first.token, 'the file holds the new token');
    assert.equal(fs.statSync(file).mode & 0o777, 0o400);
    assert.deepEqual(fs.readdirSync(first.dir), [TOKEN_FILE], 'no temporary file left');

    tokens.forget('r1');
    tokens.refresh(now + 3 * 3600_000);
    assert.equal(asked.length, 2, 'a forgotten replica is not asked for');
  } finally {
    tokens.close();
  }
});

test('offline (or a control plane without identity tokens), a replica starts at once without one, and is asked for later', { timeout: 30_000 }, async () => {
  let up = false;
  const asked: string[][] = [];
  const tokens = new IdentityTokens(tmp(), (m) => { if (up && m.type === 'identity') asked.push(m.replicas); return up; }, pino({ level: 'silent' }), 60_000);
  try {
    const got = await tokens.issue('r1', { uid: process.getuid!(), gid: process.getgid!() });
    assert.equal(got?.token, null, 'no token, and no 60 s wait (the test would time out)');
    up = true;
    tokens.refresh();
    assert.deepEqual(asked, [['r1']], 'asked again once connected');
  } finally {
    tokens.close();
  }
});

test('a replica the control plane no longer has (gone) starts at once without a token, not after the wait', { timeout: 30_000 }, async () => {
  const tokens = new IdentityTokens(tmp(), () => true, pino({ level: 'silent' }), 60_000);
  try {
    const pending = tokens.issue('r1', { uid: process.getuid!(), gid: process.getgid!() });
    tokens.onTokens({}, ['r1']);
    assert.equal((await pending)?.token, null, 'answered by the reply, not by the 60 s wait (the test would time out)');
  } finally {
    tokens.close();
  }
});

test('the hub refuses a token for another node or from another key, and gives an app only its streams', () => {
  const s = signer();
  const hub = new WorkloadTokens();
  assert.throws(() => hub.authenticate(s.sign({ app: 'a', replica: 'r1', node: 'n1' })), /no identity key yet/);
  hub.setKey(s.jwk, 'n1');
  hub.setAppStreams(new Map([['a', ['sa']], ['b', ['sb']]]));
  assert.deepEqual(hub.authenticate(s.sign({ app: 'a', replica: 'r1', node: 'n1' })).streams, ['sa']);
  assert.throws(() => hub.authenticate(s.sign({ app: 'a', replica: 'r1', node: 'n2' })), (e: Error & { code?: string }) => e.code === 'E_UNAUTHORIZED' && /node n2/.test(e.message));
  assert.throws(() => hub.authenticate(signer().sign({ app: 'a', replica: 'r1', node: 'n1' })), /unknown key id/);
  assert.deepEqual(hub.authenticate(s.sign({ app: 'c', replica: 'r9', node: 'n1' })).streams, [], 'an app that declares none has none');
});
