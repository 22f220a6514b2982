import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMAND_BACKLOG, DEMAND_ENTRIES, parseAgentMessage, type AgentToServer } from '../../contract/protocol.js';
import { ProxyCounters, WINDOW_MS } from './counters.js';
import { DemandReporter } from './reports.js';

type DemandMsg = Extract<AgentToServer, { type: 'demand' }>;

function rig() {
  let now = 1_800_000_000_000;
  const counters = new ProxyCounters(() => now);
  const sent: string[] = [];
  let up = true;
  const r = new DemandReporter(counters, (m) => { if (!up) return false; sent.push(JSON.stringify(m)); return true; }, () => up);
  return {
    counters, r, sent, msgs: () => sent.map((s) => JSON.parse(s) as DemandMsg),
    at: (t: number) => { now = t; }, get now() { return now; }, set up(v: boolean) { up = v; },
  };
}

test('at 1,000 requests a second the reports stay under 1 kbit/s: one message per 10 s window, under 1,250 bytes, valid by the protocol', () => {
  const x = rig();
  const t0 = x.now;
  let seed = 7;
  const rnd = () => { seed = (seed * 48271) % 2147483647; return seed / 2147483647; };
  for (let w = 0; w < 3; w++) {
    for (let i = 0; i < 10_000; i++) {
      x.at(t0 + w * WINDOW_MS + i);
      const total = rnd() < 0.99 ? 1 + 7 * rnd() : 8 + 32 * rnd();
      x.counters.record('web', { node: 'e2', status: rnd() < 0.01 ? 503 : 200, error: false, connectMs: rnd() < 0.98 ? 0 : 0.1 + 0.2 * rnd(), firstByteMs: total * 0.9, totalMs: total });
    }
    x.at(t0 + (w + 1) * WINDOW_MS);
    x.r.tick();
  }
  assert.equal(x.sent.length, 3, 'one message per window');
  for (const s of x.sent) {
    assert.ok(parseAgentMessage(s).ok);
    const bitsPerSecond = (s.length * 8) / (WINDOW_MS / 1000);
    // measured: 684-688 bytes a window (about 550 bit/s) for one app served by one node
    assert.ok(bitsPerSecond < 1000, `${s.length} bytes a window: ${bitsPerSecond} bit/s`);
  }
  assert.equal(x.msgs()[0]!.windows[0]!.entries[0]!.requests, 10_000);
  x.r.tick();
  assert.equal(x.sent.length, 3, 'a window without requests sends nothing');
});

test('windows a disconnected agent could not send go after the reconnect, in one message, until acknowledged; never twice on one connection', () => {
  const x = rig();
  const t0 = x.now;
  x.up = false;
  for (let w = 0; w < 3; w++) {
    x.at(t0 + w * WINDOW_MS);
    x.counters.record('web', { node: 'e2', status: 200, error: false, connectMs: 0, firstByteMs: 1, totalMs: 2 });
    x.at(t0 + (w + 1) * WINDOW_MS);
    x.r.tick();
  }
  assert.equal(x.sent.length, 0);
  assert.equal(x.r.outbox.waiting, 3);
  x.up = true;
  x.r.reconnected();
  assert.deepEqual(x.msgs().map((m) => m.windows.map((w) => w.start - t0)), [[0, WINDOW_MS, 2 * WINDOW_MS]]);
  x.r.tick();
  assert.equal(x.sent.length, 1, 'sent on this connection: not again on it');
  // the connection drops before the answer: they go again on the next one, and the acknowledged ones never
  x.r.reconnected();
  assert.equal(x.sent.length, 2);
  x.r.outbox.acked([t0, t0 + WINDOW_MS]);
  x.r.reconnected();
  assert.deepEqual(x.msgs()[2]!.windows.map((w) => w.start - t0), [2 * WINDOW_MS]);
  x.r.outbox.acked([t0 + 2 * WINDOW_MS]);
  x.r.reconnected();
  assert.equal(x.sent.length, 3);
  assert.equal(x.r.outbox.waiting, 0);
});

test(`at most ${DEMAND_BACKLOG} windows wait: the oldest go first`, () => {
  const x = rig();
  const t0 = x.now;
  x.up = false;
  for (let w = 0; w < DEMAND_BACKLOG + 5; w++) {
    x.at(t0 + w * WINDOW_MS);
    x.counters.record('web', { node: 'e2', status: 200, error: false, connectMs: 0, firstByteMs: 1, totalMs: 2 });
    x.at(t0 + (w + 1) * WINDOW_MS);
    x.r.tick();
  }
  assert.equal(x.r.outbox.waiting, DEMAND_BACKLOG);
  assert.equal(x.r.outbox.dropped, 5);
  x.up = true;
  x.r.reconnected();
  const [m] = x.msgs();
  assert.equal(m!.windows[0]!.start, t0 + 5 * WINDOW_MS);
  assert.ok(parseAgentMessage(x.sent[0]!).ok, 'a full backlog is one valid message');
});

test('what is sent stays within the protocol: at most DEMAND_ENTRIES pairs a window, a backlog split into messages of bounded size', () => {
  const x = rig();
  const t0 = x.now;
  x.counters.record('web', { node: 'e2', status: 200, error: false, connectMs: 0, firstByteMs: 1, totalMs: 2 });
  x.at(t0 + WINDOW_MS);
  const [one] = x.counters.take();
  // more pairs than a message may carry (the counters themselves keep 360 closed pairs at most)
  x.up = false;
  x.r.outbox.add(Array.from({ length: DEMAND_ENTRIES + 5 }, (_, i) => ({ ...one!, app: `app-${i}` })));
  assert.equal(x.r.outbox.droppedEntries, 5);
  for (let w = 1; w < 3; w++) {
    x.counters.record('web', { node: 'e2', status: 200, error: false, connectMs: 0, firstByteMs: 1, totalMs: 2 });
    x.at(t0 + (w + 1) * WINDOW_MS);
    x.r.tick();
  }
  // a budget one small window fits: the big one goes alone, then one at a time
  const sizes = [];
  for (let ws = x.r.outbox.next(400); ws; ws = x.r.outbox.next(400)) sizes.push(ws.map((w) => w.entries.length));
  assert.deepEqual(sizes, [[DEMAND_ENTRIES], [1], [1]]);
  x.r.reconnected();
  x.up = true;
  x.r.reconnected();
  assert.equal(x.sent.length, 1, 'the default budget (1 MiB) takes the whole backlog at once');
  assert.ok(parseAgentMessage(x.sent[0]!).ok);
  assert.equal(x.msgs()[0]!.windows[0]!.entries.length, DEMAND_ENTRIES);
});
