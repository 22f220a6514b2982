// Demand windows shared between instances (a DemandShare; PostgreSQL's is
// tested with real instances in test/ha.test.ts): two control planes on one
// share see each other's windows, a window is counted once when its node
// moves between them and sends it again, and windows wait while the share is
// away and go out when it is back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { validateApp } from '../../core/manifest.js';
import { LogHistogram } from '../../core/sketch.js';
import type { DemandWindow } from '../../core/demand.js';
import { openControlPlane } from '../controlplane.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { DemandShare, SharedWindow } from './demand.js';
import { nodeInfo } from '../test-fixtures.js';

const T0 = 1_800_000_000_000;

/** One table every instance writes to, with a cursor per reader, as demand_windows is. */
class Table {
  rows: (SharedWindow & { by: string })[] = [];
  down = false;
  share(by: string): DemandShare {
    let cursor = 0;
    return {
      publish: async (rows) => {
        if (this.down) throw new Error('the database is away');
        this.rows.push(...rows.map((r) => ({ ...r, by })));
      },
      pull: async () => {
        if (this.down) throw new Error('the database is away');
        const out = this.rows.slice(cursor).filter((r) => r.by !== by);
        cursor = this.rows.length;
        return out;
      },
      prune: async () => 0,
    };
  }
}

function window(start: number, requests: number): DemandWindow {
  const h = new LogHistogram();
  for (let i = 0; i < requests; i++) h.add(2);
  const status = { '2xx': requests, '3xx': 0, '4xx': 0, '5xx': 0 };
  return { start, ms: 1000, entries: [{ app: 'web', node: 'e1', requests, errors: 0, status, connect: new LogHistogram().toJSON(), firstByte: h.toJSON(), total: h.toJSON() }] };
}

async function instance(now: () => number) {
  const cp = await openControlPlane({ store: openSqliteStore(':memory:'), log: pino({ level: 'silent' }), now });
  await cp.nodes.register({ ...nodeInfo('e1'), site: 's1' });
  await cp.apps.deploy(validateApp({ name: 'web', command: ['x'], ports: [{ name: 'http', container: 5000 }], expose: { port: 8080 } }));
  return cp;
}

const requests = (cp: Awaited<ReturnType<typeof instance>>) => cp.demand.book.sites('web', T0 + 10_000).find((s) => s.site === 's1')?.requests ?? 0;

test('windows taken by one instance reach the other, once; while the share is away they wait', async () => {
  const now = () => T0 + 5000;
  const table = new Table();
  const [a, b] = [await instance(now), await instance(now)];
  a.demand.shareWith(table.share('a'));
  b.demand.shareWith(table.share('b'));
  a.demand.report('e1', [window(T0, 10), window(T0 + 1000, 5)]);
  await a.demand.sync(true);
  await b.demand.sync(false);
  assert.deepEqual([requests(a), requests(b)], [15, 15]);
  // the node moves to b and sends its last window again: taken once there, and not shared again
  b.demand.report('e1', [window(T0 + 1000, 5), window(T0 + 2000, 7)]);
  assert.equal(b.demand.refused.duplicate, 1);
  await b.demand.sync(true);
  await a.demand.sync(false);
  assert.deepEqual([requests(a), requests(b)], [22, 22]);
  assert.equal(table.rows.length, 3);
  // the database away: b's window waits, and goes out with the next sync that gets through
  table.down = true;
  b.demand.report('e1', [window(T0 + 3000, 4)]);
  await b.demand.sync(true);
  await a.demand.sync(false);
  assert.equal(requests(a), 22);
  table.down = false;
  await b.demand.sync(true);
  await a.demand.sync(false);
  assert.deepEqual([requests(a), requests(b)], [26, 26]);
  assert.equal(table.rows.length, 4);
});
