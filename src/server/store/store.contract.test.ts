// The store contract: what every backend must do. Run here against SQLite
// (a file and :memory:); a new backend adds one line at the bottom.
import { test, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { StoreConflict, type Store } from './store.js';
import { openSqliteStore } from './sqlite.js';
import { MIGRATIONS } from './migrations.js';
import { openPostgresStore } from './postgres.js';
import { pgSkipReason, sharedPostgres } from './pgkit.js';

const rep = (id: string, app: string, node: string, extra: object = {}) => ({ id, app, node, createdAt: 1, ...extra });

export function storeContract(name: string, open: () => Promise<Store>, skip?: string): void {
  const test = (title: string, fn: () => Promise<void>) => nodeTest(title, { skip }, fn);
  test(`${name}: commits are numbered, and each record carries the revision of the commit that wrote it`, async () => {
    const s = await open();
    assert.equal(await s.revision(), 0);
    const r1 = await s.commit([{ kind: 'apps', key: 'web', doc: { name: 'web', v: 1 } }, { kind: 'nodes', key: 'n1', doc: { name: 'n1' } }]);
    assert.equal(r1, 1);
    const r2 = await s.commit([{ kind: 'apps', key: 'web', doc: { name: 'web', v: 2 } }]);
    assert.equal(r2, 2);
    assert.deepEqual(await s.get('apps', 'web'), { key: 'web', rev: 2, doc: { name: 'web', v: 2 } });
    assert.equal((await s.get('nodes', 'n1'))!.rev, 1);
    assert.equal(await s.get('apps', 'nope'), undefined);
    assert.equal(await s.commit([]), 2, 'an empty commit changes nothing');
    await s.close();
  });

  test(`${name}: a commit that loses a compare-and-set race applies none of its writes`, async () => {
    const s = await open();
    const r1 = await s.commit([{ kind: 'apps', key: 'web', doc: { v: 1 }, expect: 0 }]);
    await assert.rejects(s.commit([{ kind: 'apps', key: 'web', doc: { v: 9 }, expect: 0 }]), (e: unknown) => e instanceof StoreConflict && e.key === 'web' && e.actual === r1);
    await assert.rejects(
      s.commit([{ kind: 'sites', key: 'line', doc: { name: 'line' } }, { kind: 'apps', key: 'web', doc: { v: 9 }, expect: r1 - 1 }]),
      StoreConflict,
    );
    assert.equal(await s.get('sites', 'line'), undefined, 'the other write of the losing commit did not happen');
    assert.equal(await s.revision(), r1, 'nor did the revision move');
    const r2 = await s.commit([{ kind: 'apps', key: 'web', doc: { v: 2 }, expect: r1 }]);
    assert.deepEqual((await s.get('apps', 'web'))!.doc, { v: 2 });
    await assert.rejects(s.commit([{ kind: 'apps', key: 'web', doc: null, expect: r1 }]), StoreConflict, 'a delete checks too');
    await s.commit([{ kind: 'apps', key: 'web', doc: null, expect: r2 }]);
    assert.equal(await s.get('apps', 'web'), undefined);
    await s.close();
  });

  test(`${name}: lists come in key order, in pages, and replicas filter by app and node`, async () => {
    const s = await open();
    await s.commit(['c', 'a', 'e', 'b', 'd'].map((k) => ({ kind: 'nodes' as const, key: k, doc: { name: k } })));
    assert.deepEqual((await s.list('nodes')).map((r) => r.key), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual((await s.list('nodes', { limit: 2 })).map((r) => r.key), ['a', 'b']);
    assert.deepEqual((await s.list('nodes', { after: 'b', limit: 2 })).map((r) => r.key), ['c', 'd']);
    assert.deepEqual((await s.list('nodes', { after: 'e' })).map((r) => r.key), []);
    await s.commit([
      { kind: 'replicas', key: 'web-0-0', doc: rep('web-0-0', 'web', 'a') },
      { kind: 'replicas', key: 'web-1-1', doc: rep('web-1-1', 'web', 'b') },
      { kind: 'replicas', key: 'db-0-0', doc: rep('db-0-0', 'db', 'a') },
    ]);
    assert.deepEqual((await s.list('replicas', { app: 'web' })).map((r) => r.key), ['web-0-0', 'web-1-1']);
    assert.deepEqual((await s.list('replicas', { node: 'a' })).map((r) => r.key), ['db-0-0', 'web-0-0']);
    // a replica that moves is found on its new node only
    await s.commit([{ kind: 'replicas', key: 'web-0-0', doc: rep('web-0-0', 'web', 'c') }]);
    assert.deepEqual((await s.list('replicas', { node: 'a' })).map((r) => r.key), ['db-0-0']);
    assert.deepEqual((await s.list('replicas', { node: 'c', app: 'web' })).map((r) => r.key), ['web-0-0']);
    await s.close();
  });

  test(`${name}: model samples are kept once per replica, newest first`, async () => {
    const s = await open();
    const sample = (replica: string, at: number) => ({ replica, app: 'a', node: 'n', image: null, cached: true, predicted: { imageMs: 0, containerMs: 1, engineMs: 2, deployMs: 3 }, measured: { imageMs: 0, containerMs: 1, engineMs: 2, deployMs: 3 }, at });
    await s.commit([], [sample('r1', 1), sample('r2', 2)]);
    await s.commit([], [sample('r1', 99), sample('r3', 3)]);
    assert.deepEqual((await s.listSamples()).map((x) => [x.replica, x.at]), [['r3', 3], ['r2', 2], ['r1', 1]]);
    assert.equal((await s.listSamples(1)).length, 1);
    await s.close();
  });

  test(`${name}: the audit log keeps entries in order, answers from a time, and drops those before its retention`, async () => {
    const s = await open();
    const entry = (at: number, action: string) => ({ at, principal: { id: 'opt_1', name: 'ci' }, action, request: 'POST /v1/apps', target: 'web', from: '127.0.0.1', status: 200, error: null });
    await s.audit([entry(10, 'app:deploy'), entry(20, 'app:remove')]);
    await s.audit([entry(30, 'secret:write')]);
    assert.deepEqual((await s.listAudit()).map((e) => e.action), ['app:deploy', 'app:remove', 'secret:write']);
    assert.deepEqual((await s.listAudit({ since: 20, limit: 1 })).map((e) => e.at), [20]);
    assert.equal(await s.compact({ auditBefore: 25 }), 2);
    assert.deepEqual((await s.listAudit()).map((e) => e.at), [30]);
    assert.equal(await s.revision(), 0, 'the audit log is not a record: no revision');
    await s.close();
  });

  test(`${name}: events get seqs in commit order, read back by seq, time, app and node, and ride the commit they were decided in`, async () => {
    const s = await open();
    const ev = (at: number, app: string | null, node: string | null, message: string) => ({ type: 'app.deployed' as const, at, app, node, replica: null, revision: null, message, reason: null, data: { n: at } });
    assert.deepEqual(await s.listEvents(), { events: [], last: 0 });
    const r1 = await s.commit([{ kind: 'apps', key: 'web', doc: { name: 'web' } }], [], undefined, [ev(10, 'web', 'n1', 'a'), ev(20, 'web', 'n2', 'b')]);
    const r2 = await s.commit([], [], undefined, [ev(30, null, 'n1', 'c')]);
    assert.equal(r2, r1 + 1, 'a commit of events alone is a commit');
    // a commit that loses its race writes none of its events
    await assert.rejects(s.commit([{ kind: 'apps', key: 'web', doc: {}, expect: 0 }], [], undefined, [ev(40, 'web', null, 'lost')]), StoreConflict);
    await s.commit([], [], undefined, [ev(50, 'db', 'n2', 'd')]);
    const all = await s.listEvents();
    assert.deepEqual(all.events.map((e) => e.message), ['a', 'b', 'c', 'd']);
    const seqs = all.events.map((e) => e.seq);
    assert.ok(seqs.every((q, i) => i === 0 || q > seqs[i - 1]!), `increasing: ${seqs}`);
    assert.equal(all.last, seqs[3]);
    assert.deepEqual(all.events[0], { seq: seqs[0], type: 'app.deployed', at: 10, app: 'web', node: 'n1', replica: null, revision: null, message: 'a', reason: null, data: { n: 10 } });
    assert.deepEqual((await s.listEvents({ after: seqs[1] })).events.map((e) => e.message), ['c', 'd']);
    assert.deepEqual((await s.listEvents({ from: 30 })).events.map((e) => e.message), ['c', 'd']);
    assert.deepEqual((await s.listEvents({ app: 'web' })).events.map((e) => e.message), ['a', 'b']);
    assert.deepEqual((await s.listEvents({ node: 'n1' })).events.map((e) => e.message), ['a', 'c']);
    assert.deepEqual((await s.listEvents({ node: 'n2', app: 'db' })).events.map((e) => e.message), ['d']);
    // a full page ends at its last event; a short one at the newest seq, even when a filter kept none
    assert.deepEqual(await s.listEvents({ limit: 2 }).then((p) => [p.events.length, p.last]), [2, seqs[1]]);
    assert.deepEqual(await s.listEvents({ app: 'nope' }), { events: [], last: seqs[3] });
    assert.deepEqual(await s.listEvents({ limit: 0 }), { events: [], last: seqs[3] }, 'limit 0: only where the log is');
    // the newest page: the last that match, still in seq order, and it ends at the newest seq
    assert.deepEqual(await s.listEvents({ limit: 2, newest: true }).then((p) => [p.events.map((e) => e.message), p.last]), [['c', 'd'], seqs[3]]);
    assert.deepEqual(await s.listEvents({ limit: 1, newest: true, app: 'web', from: 5 }).then((p) => [p.events.map((e) => e.message), p.last]), [['b'], seqs[3]]);
    // retention: older events go, the newest always stays (its seq is where readers resume)
    assert.equal(await s.compact({ eventsBefore: 35 }), 3);
    assert.deepEqual((await s.listEvents()).events.map((e) => e.message), ['d']);
    assert.equal(await s.compact({ eventsBefore: 1e15 }), 0, 'the newest is kept');
    await s.commit([], [], undefined, [ev(60, null, null, 'e')]);
    const after = await s.listEvents({ after: seqs[3] });
    assert.ok(after.events[0]!.seq > seqs[3]!, 'no seq is given twice');
    await s.close();
  });

  test(`${name}: keys sort by their bytes, and a document reads back as written, key order included`, async () => {
    const s = await open();
    // byte order, not a locale's: upper case before '_' before lower case, '-' before letters
    await s.commit(['ab', 'B', 'a-b', '_x', 'a', 'é'].map((k) => ({ kind: 'sites' as const, key: k, doc: { name: k } })));
    assert.deepEqual((await s.list('sites')).map((r) => r.key), ['B', '_x', 'a', 'a-b', 'ab', 'é']);
    assert.deepEqual((await s.list('sites', { after: '_x', limit: 2 })).map((r) => r.key), ['a', 'a-b']);
    // the control plane compares documents with JSON.stringify: a reordered one would look changed
    const doc = { zeta: 1, alpha: { y: [3, 1], b: null }, mid: 'x' };
    await s.commit([{ kind: 'apps', key: 'web', doc }]);
    assert.equal(JSON.stringify((await s.get('apps', 'web'))!.doc), JSON.stringify(doc));
    assert.equal(JSON.stringify((await s.list('apps'))[0]!.doc), JSON.stringify(doc));
    await s.close();
  });
}

const tmp = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-store-')), 'outpost.db');
storeContract('sqlite (file)', async () => openSqliteStore(tmp()));
storeContract('sqlite (memory)', async () => openSqliteStore(':memory:'));
storeContract('postgres', async () => openPostgresStore(await (await sharedPostgres()).newDatabase()), pgSkipReason() ?? undefined);

test('sqlite: what is committed is there after a reopen, revision included', async () => {
  const file = tmp();
  const a = openSqliteStore(file);
  const rev = await a.commit([{ kind: 'sites', key: 'line', doc: { name: 'line' } }]);
  await a.close();
  const b = openSqliteStore(file);
  assert.deepEqual(await b.get('sites', 'line'), { key: 'line', rev, doc: { name: 'line' } });
  assert.equal(await b.revision(), rev);
  await b.close();
});

test('sqlite: a data dir of the first release is migrated: revisions, slots and serials, then the schema version', async () => {
  const file = tmp();
  const old = new Database(file);
  old.exec(`CREATE TABLE nodes (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE apps (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE sites (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE samples (id INTEGER PRIMARY KEY AUTOINCREMENT, replica TEXT UNIQUE NOT NULL, doc TEXT NOT NULL);
CREATE TABLE replicas (id TEXT PRIMARY KEY, app TEXT NOT NULL, node TEXT NOT NULL, doc TEXT NOT NULL);`);
  old.prepare('INSERT INTO apps VALUES (?, ?)').run('web', JSON.stringify({ name: 'web', specHash: 'h2' }));
  const ins = old.prepare('INSERT INTO replicas VALUES (?, ?, ?, ?)');
  // two of the old revision and one new (a rolling update was under way), random ids
  ins.run('web-9f0a1b2c', 'web', 'a', JSON.stringify(rep('web-9f0a1b2c', 'web', 'a', { createdAt: 30, specHash: 'h1' })));
  ins.run('web-00aa11bb', 'web', 'b', JSON.stringify(rep('web-00aa11bb', 'web', 'b', { createdAt: 10, specHash: 'h1' })));
  ins.run('web-77777777', 'web', 'c', JSON.stringify(rep('web-77777777', 'web', 'c', { createdAt: 50, specHash: 'h2' })));
  old.close();
  const s = openSqliteStore(file);
  assert.equal(s.schemaVersion, MIGRATIONS.length);
  const reps = new Map((await s.list<{ slot: number }>('replicas')).map((r) => [r.key, r]));
  assert.equal(reps.get('web-00aa11bb')!.doc.slot, 0, 'the oldest of a revision takes slot 0');
  assert.equal(reps.get('web-9f0a1b2c')!.doc.slot, 1);
  assert.equal(reps.get('web-77777777')!.doc.slot, 0, 'each revision counts its own slots');
  assert.equal((await s.get<{ serial: number }>('apps', 'web'))!.doc.serial, 3, 'the next replica id will not reuse a number');
  assert.equal(reps.get('web-00aa11bb')!.rev, 1);
  assert.equal(await s.revision(), 1);
  await s.close();
  const raw = new Database(file);
  raw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
  raw.close();
  assert.throws(() => openSqliteStore(file), /newer than this Outpost knows/, 'a store from a newer Outpost is refused, not rewritten');
});
