// The control plane's side of measured demand at scale: 1,000 nodes in 20
// sites, each reporting 5 apps (each site's requests answered by 3 nodes),
// ten minutes of 10 s windows taken into a DemandBook; the heap it holds, the
// time to take one node's window, to answer one app, to add up every app for
// a metrics scrape. Run: npx tsc -p . && node --expose-gc dist/bench/demand.js
import { DemandBook, type DemandEntry } from '../src/core/demand.js';
import { LogHistogram } from '../src/core/sketch.js';

const NODES = 1000, SITES = 20, APPS = 5, UPSTREAMS = 3, WINDOWS = 60, WINDOW_MS = 10_000;
const T0 = 1_800_000_000_000;
let seed = 3;
const rnd = () => { seed = (seed * 48271) % 2147483647; return seed / 2147483647; };
// a window of 1,000 requests a second answered in 1-8 ms, a fresh sketch per entry as the agents' messages bring them
const sketch = () => { const h = new LogHistogram(); for (let i = 0; i < 10_000; i++) h.add(1 + 7 * rnd()); return h.toJSON(); };
const docs = Array.from({ length: 50 }, sketch);
const entry = (app: string, node: string): DemandEntry => ({
  app, node, requests: 10_000, errors: 0, status: { '2xx': 10_000, '3xx': 0, '4xx': 0, '5xx': 0 },
  connect: { n: 0, sum: 0, max: 0, zero: 0, o: 0, c: [] }, firstByte: structuredClone(docs[Math.floor(rnd() * 50)]!), total: structuredClone(docs[Math.floor(rnd() * 50)]!),
});

const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const heap0 = process.memoryUsage().heapUsed;
const book = new DemandBook();
let addMs = 0;
for (let w = 0; w < WINDOWS; w++) {
  for (let n = 0; n < NODES; n++) {
    const win = { start: T0 + w * WINDOW_MS, ms: WINDOW_MS, entries: Array.from({ length: APPS }, (_, a) => entry(`app${a}`, `up${(n + a) % UPSTREAMS}`)) };
    const t = performance.now();
    book.add(`n${n}`, `s${n % SITES}`, win, T0 + (w + 1) * WINDOW_MS);
    addMs += performance.now() - t;
  }
}
gc?.();
const heapMb = (process.memoryUsage().heapUsed - heap0) / 1048576;
const now = T0 + WINDOWS * WINDOW_MS;
let t = performance.now();
const all = book.all(now);
const allMs = performance.now() - t;
t = performance.now();
const one = book.sites('app0', now);
const oneMs = performance.now() - t;
console.log(JSON.stringify({
  nodes: NODES, sites: SITES, apps: APPS, windows: WINDOWS, heapMb: Math.round(heapMb * 10) / 10, gc: gc !== undefined,
  addUsPerWindow: Math.round((addMs * 1000) / (NODES * WINDOWS)), appAnswerMs: Math.round(oneMs), scrapeMs: Math.round(allMs), pairs: all.length, appSites: one.length,
}));
