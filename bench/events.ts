// bench:events -- what the event log costs, and how fast it reaches followers.
//   npm run bench:events -- [--store sqlite|postgres] [--commits 50] [--batch 1000]
//     [--followers 1,100,1000] [--bursts 50] [--log 1000000]
//
// write: the store's commit of `batch` replica records (each ~900 bytes, as a
//   status report writes them) with no event, and with one event per record
//   (a status transition gives one or two), alternating, `commits` of each:
//   the median ms per commit and what the events add.
// follow: a real control plane (HTTPS) with F followers of
//   GET /v1/events/stream (each its own connection), and `bursts` commits
//   of one event each, spaced out: from the commit's resolution in the control
//   plane to each follower's receipt (the same process's clock), p50/p99/max
//   per F, and the server's CPU over the bursts.
// read: a log of `log` events (1% of them one app's), then the time of
//   GET /v1/events pages: after a seq in the middle, that app's from the start,
//   and `since=10m`; medians of 20 each.
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { startServer } from '../src/server/server.js';
import { openSqliteStore } from '../src/server/store/sqlite.js';
import { openPostgresStore } from '../src/server/store/postgres.js';
import { sharedPostgres } from '../src/server/store/pgkit.js';
import type { Store } from '../src/server/store/store.js';
import { draft, type EventDraft, type OutpostEvent } from '../src/core/events.js';
import { replica } from '../src/core/testkit.js';
import { listArg, numArg } from './args.js';
import { median, quantile } from './stats.js';

const STORE = process.argv.includes('--store') ? process.argv[process.argv.indexOf('--store') + 1] : 'sqlite';
const COMMITS = numArg('--commits', 50);
const BATCH = numArg('--batch', 1000);
const FOLLOWERS = (listArg('--followers') ?? ['1', '100', '1000']).map(Number);
const BURSTS = numArg('--bursts', 50);
const LOG = numArg('--log', 1_000_000);
const log = pino({ level: 'silent' });
const r1 = (x: number) => Math.round(x * 10) / 10;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-events-'));

async function openStore(): Promise<Store> {
  if (STORE === 'postgres') return openPostgresStore(await (await sharedPostgres()).newDatabase());
  return openSqliteStore(path.join(tmp(), 'outpost.db'));
}

const ev = (i: number, app = 'web'): EventDraft => draft('replica.ready', Date.now(), {
  app, node: `n${i % 100}`, replica: `${app}-${i % 1000}-${i}`, revision: 3, message: `${app}-${i % 1000}-${i} on n${i % 100} is ready (engine 640.2 ms)`, data: { engineMs: 640.2 },
});

async function write(): Promise<Record<string, number>> {
  const s = await openStore();
  const times: Record<'plain' | 'events', number[]> = { plain: [], events: [] };
  for (let c = 0; c < COMMITS * 2; c++) {
    const withEvents = c % 2 === 1;
    const recs = Array.from({ length: BATCH }, (_, i) => replica(`web-${i}-${i}`, 'web', `n${i % 100}`, { updatedAt: c, measured: { imageMs: 0, containerMs: 30, engineMs: 640 }, endpoint: 'http://10.0.0.1:30000' }));
    const t0 = performance.now();
    await s.commit(recs.map((r) => ({ kind: 'replicas' as const, key: r.id, doc: r })), [], undefined, withEvents ? recs.map((_, i) => ev(c * BATCH + i)) : []);
    times[withEvents ? 'events' : 'plain'].push(performance.now() - t0);
  }
  await s.close();
  const plain = median(times.plain);
  const events = median(times.events);
  return { batch: BATCH, plainMs: r1(plain), withEventsMs: r1(events), addedPerEventUs: r1(((events - plain) / BATCH) * 1000) };
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function follow(): Promise<Record<string, number>[]> {
  const s = await startServer({ dataDir: tmp(), store: STORE === 'postgres' ? await (await sharedPostgres()).newDatabase() : undefined, host: '127.0.0.1', port: 0, log });
  const agent = new https.Agent({ ca: s.caPem!, keepAlive: true, maxSockets: Infinity });
  const out: Record<string, number>[] = [];
  try {
    for (const f of FOLLOWERS) {
      const got = new Map<number, number[]>();
      const reqs: import('node:http').ClientRequest[] = [];
      const before = s.cp.events.following;
      for (let i = 0; i < f; i++) {
        const req = https.get(`${s.url}/v1/events/stream`, { agent, headers: { authorization: `Bearer ${s.adminToken}` } }, (res) => {
          let buf = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            const now = performance.now();
            buf += d;
            let cut: number;
            while ((cut = buf.indexOf('\n\n')) >= 0) {
              const data = /^data: (.*)$/m.exec(buf.slice(0, cut))?.[1];
              buf = buf.slice(cut + 2);
              if (!data) continue;
              const seq = (JSON.parse(data) as OutpostEvent).seq;
              got.set(seq, [...(got.get(seq) ?? []), now]);
            }
          });
        });
        req.on('error', () => {});
        reqs.push(req);
      }
      while (s.cp.events.following < before + f) await new Promise((r) => setTimeout(r, 20));
      const lat: number[] = [];
      const cpu0 = cpuSeconds();
      const t0 = performance.now();
      for (let b = 0; b < BURSTS; b++) {
        await s.cp.writer.run(() => ({ changes: [], events: [ev(b, 'bench')], result: undefined }));
        const committed = performance.now();
        const seq = (await s.cp.events.list({ limit: 0 })).last;
        while ((got.get(seq)?.length ?? 0) < f) await new Promise((r) => setImmediate(r));
        for (const t of got.get(seq)!) lat.push(t - committed);
        await new Promise((r) => setTimeout(r, 20));
      }
      const wall = (performance.now() - t0) / 1000;
      out.push({ followers: f, p50Ms: r1(quantile(lat, 0.5)), p99Ms: r1(quantile(lat, 0.99)), maxMs: r1(Math.max(...lat)), cpuPct: Math.round(((cpuSeconds() - cpu0) / wall) * 100) });
      for (const r of reqs) r.destroy();
      while (s.cp.events.following > before) await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    agent.destroy();
    await s.close();
  }
  return out;
}

async function read(): Promise<Record<string, number>> {
  const s = await openStore();
  const CHUNK = 10_000;
  const t0 = performance.now();
  for (let i = 0; i < LOG; i += CHUNK) {
    await s.commit([], [], undefined, Array.from({ length: Math.min(CHUNK, LOG - i) }, (_, j) => ev(i + j, (i + j) % 100 === 0 ? 'rare' : 'web')));
  }
  const fillS = (performance.now() - t0) / 1000;
  const head = (await s.listEvents({ limit: 0 })).last;
  const time = async (q: Parameters<Store['listEvents']>[0]) => {
    const xs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      const p = await s.listEvents(q);
      xs.push(performance.now() - t);
      if (p.events.length === 0) throw new Error(`no events for ${JSON.stringify(q)}`);
    }
    return r1(median(xs));
  };
  const r = {
    events: LOG, fillS: r1(fillS),
    afterSeqMs: await time({ after: Math.floor(head / 2), limit: 1000 }),
    oneAppMs: await time({ app: 'rare', limit: 1000 }),
    since10mMs: await time({ from: Date.now() - 600_000, limit: 1000 }),
  };
  await s.close();
  return r;
}

const results = { store: STORE, at: new Date().toISOString(), cpus: os.cpus().length, write: await write(), follow: await follow(), read: await read() };
console.log(`## bench:events (${STORE}, ${results.cpus} CPUs)\n`);
console.log(`write: ${BATCH} replica records per commit: ${results.write.plainMs} ms without events, ${results.write.withEventsMs} ms with one event each (+${results.write.addedPerEventUs} us per event)\n`);
console.log('| followers | p50 ms | p99 ms | max ms | server CPU % |\n| --- | --- | --- | --- | --- |');
for (const f of results.follow) console.log(`| ${f.followers} | ${f.p50Ms} | ${f.p99Ms} | ${f.maxMs} | ${f.cpuPct} |`);
console.log(`\nread: a log of ${LOG} events (filled in ${results.read.fillS} s): a page of 1,000 after a seq ${results.read.afterSeqMs} ms, one app's (1% of the log) ${results.read.oneAppMs} ms, since=10m ${results.read.since10mMs} ms`);
const dir = path.join(path.dirname(new URL(import.meta.url).pathname), '../../bench/results');
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, `events-${STORE}-${results.at.replace(/[:.]/g, '-').slice(0, 19)}.json`), JSON.stringify(results, null, 2));
process.exit(0);
