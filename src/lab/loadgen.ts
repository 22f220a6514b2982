// A site's load generator: the seed's requests (JSON arrays of numbers) sent
// one after another over a kept-alive connection to one endpoint, client-side
// latency recorded per request. Run inside the site's network namespace.
//   node loadgen.js URL COUNT ITEMS SEED  ->  {"latenciesMs": [...], "errors": N}
const [url, countArg, itemsArg, seedArg] = process.argv.slice(2);
const count = Number(countArg);
const items = Number(itemsArg);
let s = Number(seedArg) >>> 0;
const rand = () => {
  s = (s * 1664525 + 1013904223) >>> 0;
  return s / 4294967296;
};
const paths = ['/process_data', '/storage_data', '/compute_data'];
// a few requests first, not counted: connection set-up and TCP slow start
const WARMUP = 3;

async function main(): Promise<void> {
  const latencies: number[] = [];
  let errors = 0;
  for (let i = 0; i < count + WARMUP; i++) {
    const body = JSON.stringify(Array.from({ length: items }, () => Math.round(rand() * 1e6) / 1e4));
    const t0 = performance.now();
    try {
      const res = await fetch(url + paths[i % 3], { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.text();
      if (!res.ok) throw new Error(String(res.status));
      if (i >= WARMUP) latencies.push(Math.round((performance.now() - t0) * 1000) / 1000);
    } catch {
      errors++;
    }
  }
  process.stdout.write(JSON.stringify({ latenciesMs: latencies, errors }) + '\n');
}

void main();
