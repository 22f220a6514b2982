// The PostgreSQL store beyond the contract: its schema from an empty
// database, a newer schema refused, a bad or unreachable URL told plainly,
// and two stores (two pools, as two control-plane processes would have) on
// one database racing: never both winners of one compare-and-set.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { OutpostError } from '../../core/errors.js';
import { StoreConflict, StoreFenced, type Store } from './store.js';
import { PgCoordination } from './pgcluster.js';
import { openPostgresStore, PG_MIGRATIONS } from './postgres.js';
import { pgSkipReason, sharedPostgres, sql } from './pgkit.js';
import pino from 'pino';
import { State } from '../state.js';
import { Writer } from '../writer.js';
import type { SiteRecord } from '../../core/types.js';

const skip = pgSkipReason() ?? undefined;
const cluster = skip ? null : await sharedPostgres();
after(() => cluster?.stop());

test('an empty database gets the whole schema, once, even when two stores open it at the same moment', { skip }, async () => {
  const url = await cluster!.newDatabase();
  const [a, b] = await Promise.all([openPostgresStore(url), openPostgresStore(url)]);
  assert.equal(a.schemaVersion, PG_MIGRATIONS.length);
  assert.deepEqual(await sql(url, 'SELECT version FROM outpost_schema'), [{ version: PG_MIGRATIONS.length }], 'one version row');
  const tables = (await sql<{ t: string }>(url, "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).map((r) => r.t);
  assert.deepEqual(tables, ['apitokens', 'apps', 'audit', 'demand_windows', 'devices', 'events', 'identities', 'instances', 'lease', 'meta', 'nodes', 'outpost_schema', 'replicas', 'samples', 'secrets', 'shared_files', 'sites', 'tokens', 'tombstones', 'windows']);
  const idx = (await sql<{ i: string }>(url, "SELECT indexdef AS i FROM pg_indexes WHERE tablename = 'replicas' ORDER BY 1")).map((r) => r.i);
  assert.ok(idx.some((i) => /\(app, key\)/.test(i)) && idx.some((i) => /\(node, key\)/.test(i)), 'replicas are indexed by app and by node, in key order');
  // what one wrote the other reads; after a reopen it is all still there
  const rev = await a.commit([{ kind: 'nodes', key: 'n1', doc: { name: 'n1' } }]);
  assert.deepEqual(await b.get('nodes', 'n1'), { key: 'n1', rev, doc: { name: 'n1' } });
  await a.close();
  await b.close();
  const c = await openPostgresStore(url);
  assert.equal(await c.revision(), rev);
  assert.equal((await c.list('nodes')).length, 1);
  await c.close();
});

test('a database at a newer schema version is refused and left as it is', { skip }, async () => {
  const url = await cluster!.newDatabase();
  const s = await openPostgresStore(url);
  await s.commit([{ kind: 'apps', key: 'web', doc: { name: 'web' } }]);
  await s.close();
  await sql(url, `UPDATE outpost_schema SET version = ${PG_MIGRATIONS.length + 1}`);
  await assert.rejects(openPostgresStore(url), (e: unknown) => e instanceof OutpostError && e.code === 'E_STORE' && /newer than this Outpost knows/.test(e.message));
  assert.deepEqual(await sql(url, 'SELECT version FROM outpost_schema'), [{ version: PG_MIGRATIONS.length + 1 }]);
  assert.equal((await sql(url, "SELECT key FROM apps")).length, 1);
});

test('a bad or unreachable --store is an error with a code, and the password is not shown', { skip }, async () => {
  await assert.rejects(openPostgresStore('mysql://x@127.0.0.1/db'), (e: unknown) => e instanceof OutpostError && e.code === 'E_USAGE');
  const dead = `postgres://outpost:hunter2@127.0.0.1:1/outpost`;
  await assert.rejects(openPostgresStore(dead), (e: unknown) => e instanceof OutpostError && e.code === 'E_STORE' && e.message.includes('127.0.0.1:1') && !e.message.includes('hunter2'));
  const noDb = `postgres://postgres@127.0.0.1:${cluster!.port}/no_such_database`;
  await assert.rejects(openPostgresStore(noDb), (e: unknown) => e instanceof OutpostError && e.code === 'E_STORE' && /no_such_database/.test(e.message));
});

test('two stores on one database: one winner per compare-and-set, no lost update, one revision per commit', { skip }, async () => {
  const url = await cluster!.newDatabase();
  const a = await openPostgresStore(url);
  const b = await openPostgresStore(url);
  // the same key, the same revision read, two commits at once: exactly one wins
  for (let round = 0; round < 20; round++) {
    const seen = (await a.get('apps', 'web'))?.rev ?? 0;
    const results = await Promise.allSettled([
      a.commit([{ kind: 'sites', key: `a${round}`, doc: {} }, { kind: 'apps', key: 'web', doc: { by: 'a', round }, expect: seen }]),
      b.commit([{ kind: 'sites', key: `b${round}`, doc: {} }, { kind: 'apps', key: 'web', doc: { by: 'b', round }, expect: seen }]),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1, `round ${round}: one winner`);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(lost.reason instanceof StoreConflict, String(lost.reason));
    const winner = results[0].status === 'fulfilled' ? 'a' : 'b';
    assert.deepEqual((await b.get('apps', 'web'))!.doc, { by: winner, round });
    assert.ok(await a.get('sites', `${winner}${round}`), 'the winner\'s other write is there');
    assert.equal(await a.get('sites', `${winner === 'a' ? 'b' : 'a'}${round}`), undefined, 'the loser\'s is not');
  }
  // many read-modify-write increments through both stores, retried on conflict: none lost
  const increment = async (s: Store) => {
    for (;;) {
      const cur = await s.get<{ n: number }>('apps', 'counter');
      try {
        return await s.commit([{ kind: 'apps', key: 'counter', doc: { n: (cur?.doc.n ?? 0) + 1 }, expect: cur?.rev ?? 0 }]);
      } catch (e) {
        if (!(e instanceof StoreConflict)) throw e;
      }
    }
  };
  const before = await a.revision();
  const revs = await Promise.all(Array.from({ length: 60 }, (_, i) => increment(i % 2 ? a : b)));
  assert.equal((await a.get<{ n: number }>('apps', 'counter'))!.doc.n, 60);
  assert.equal(new Set(revs).size, 60, 'every commit has its own revision');
  assert.equal(await b.revision(), before + 60, 'and a conflict used none');
  await a.close();
  await b.close();
});

test('the writer on PostgreSQL: operations decided while a commit is in flight build on it, and nothing is counted twice', { skip }, async () => {
  const store = await openPostgresStore(await cluster!.newDatabase());
  const w = new Writer(store, await State.load(store), pino({ level: 'silent' }));
  // a counter bumped by 300 operations over many turns of the event loop, as
  // enrolments bump a join token's uses: most run while a commit is on the wire
  const bump = () => w.run((s) => {
    const cur = s.site('counter') ?? { name: 'counter', probe: 'x:1', createdAt: 0 };
    const next: SiteRecord = { ...cur, createdAt: cur.createdAt + 1 };
    return { changes: [{ kind: 'sites', key: 'counter', doc: next }], result: next.createdAt };
  });
  const done: Promise<number>[] = [];
  for (let i = 0; i < 300; i++) {
    done.push(bump());
    if (i % 3 === 2) await new Promise((r) => setImmediate(r));
  }
  const results = await Promise.all(done);
  assert.deepEqual(results, Array.from({ length: 300 }, (_, i) => i + 1), 'each saw the one before');
  assert.equal((await store.get<SiteRecord>('sites', 'counter'))!.doc.createdAt, 300);
  assert.equal(w.stats.conflicts, 0, 'no race lost against itself');
  assert.ok(w.stats.commits > 1, 'commits overlapped operations');
  await store.close();
});

test('the change feed: what others committed since a revision, deletions included; behind the compacted history, everything again', { skip }, async () => {
  const url = await cluster!.newDatabase();
  const a = await openPostgresStore(url);
  const b = await openPostgresStore(url);
  const r1 = await a.commit([{ kind: 'apps', key: 'web', doc: { v: 1 } }, { kind: 'nodes', key: 'n1', doc: { name: 'n1' } }]);
  const r2 = await a.commit([{ kind: 'apps', key: 'web', doc: { v: 2 } }, { kind: 'nodes', key: 'n1', doc: null }]);
  const cs = await b.changes(r1 - 1);
  assert.equal(cs.revision, r2);
  assert.deepEqual(cs.changes.map((c) => [c.kind, c.key, c.rev, c.doc]).sort(), [['apps', 'web', r2, { v: 2 }], ['nodes', 'n1', r2, null]]);
  assert.deepEqual((await b.changes(r2)).changes, [], 'nothing since the last one');
  // tombstones older than the history kept are compacted: a reader behind them reads everything
  await sql(url, "UPDATE tombstones SET at = now() - interval '1 hour'");
  assert.equal(await a.compact(), 1);
  const reset = await b.changes(r1 - 1);
  assert.equal(reset.reset, true);
  assert.deepEqual(reset.changes.map((c) => c.key), ['web'], 'every record there is (the deleted node is not)');
  await a.close();
  await b.close();
});

test('a commit fenced by a lease epoch fails once the lease passed to another instance', { skip }, async () => {
  const url = await cluster!.newDatabase();
  const s = await openPostgresStore(url);
  const one = new PgCoordination(s, 'one');
  const two = new PgCoordination(s, 'two');
  const e1 = await one.acquire(60_000);
  assert.equal(e1, 1);
  assert.equal(await two.acquire(60_000), null, 'held: no one else takes it');
  await s.commit([{ kind: 'apps', key: 'a', doc: {} }], [], { holder: 'one', epoch: 1 });
  await assert.rejects(s.commit([{ kind: 'apps', key: 'b', doc: {} }], [], { holder: 'two', epoch: 1 }), StoreFenced);
  // the lease runs out; two takes it (epoch 2); one's decisions are refused from then on
  await sql(url, "UPDATE lease SET expires = now() - interval '1 second'");
  assert.equal(await one.renew(1, 60_000), false, 'an expired lease is not renewed');
  assert.equal(await two.acquire(60_000), 2);
  await assert.rejects(s.commit([{ kind: 'apps', key: 'c', doc: {} }], [], { holder: 'one', epoch: 1 }), StoreFenced);
  assert.equal(await s.get('apps', 'c'), undefined, 'nothing of it was written');
  await s.commit([{ kind: 'apps', key: 'd', doc: {} }], [], { holder: 'two', epoch: 2 });
  await s.close();
});

test('events from two stores at once: the seq order is the commit order, and a reader following by seq misses none', { skip }, async () => {
  const url = await cluster!.newDatabase();
  const a = await openPostgresStore(url);
  const b = await openPostgresStore(url);
  const ev = (tag: string) => ({ type: 'app.deployed' as const, at: Date.now(), app: 'web', node: null, replica: null, revision: null, message: tag, reason: null, data: {} });
  const revOf = new Map<string, number>();
  const seen: string[] = [];
  let writing = true;
  // a follower reading while both write: each read resumes after the `last` of the one before
  const follower = (async () => {
    let after = 0;
    while (writing || after < (await a.listEvents({ limit: 0 })).last) {
      const page = await b.listEvents({ after, limit: 50 });
      seen.push(...page.events.map((e) => e.message));
      after = page.last;
    }
  })();
  await Promise.all([a, b].map(async (s, w) => {
    for (let i = 0; i < 40; i++) {
      const tags = [`${w}-${i}-x`, `${w}-${i}-y`];
      const rev = await s.commit(i % 3 ? [{ kind: 'sites', key: `s${w}-${i}`, doc: {} }] : [], [], undefined, tags.map(ev));
      for (const t of tags) revOf.set(t, rev);
    }
  }));
  writing = false;
  await follower;
  const all = (await a.listEvents({ limit: 10_000 })).events.map((e) => e.message);
  assert.equal(all.length, 160);
  const revs = all.map((t) => revOf.get(t)!);
  assert.ok(revs.every((r, i) => i === 0 || r >= revs[i - 1]!), 'ordered by seq, the events are ordered by their commits');
  assert.deepEqual(seen, all, 'the follower got every event, once, in the same order');
  await a.close();
  await b.close();
});
