// A site's load generator for moving demand (scenario c): open loop, so a
// slow answer does not slow the sending (closed-loop generators hide latency
// by asking less). Requests leave at fixed times, rps[k] per second during
// phase k (0: the site is idle then), to the site's own node's proxy; each
// is timed from when it left (the largest lag behind its due time is
// reported, so a generator that fell behind shows it), and a connection
// error, a timeout or a non-2xx answer is a failure. Run inside the site's
// network namespace.
//   node moving-load.js '{"url","items","seed","startAt","phaseMs","rps":[...],"timeoutMs"}'
//   -> {"at": [due, ms after startAt], "ms": [latency, -1 when failed], "fail": {"i": why}, "maxLagMs"}
interface Plan { url: string; items: number; seed: number; startAt: number; phaseMs: number; rps: number[]; timeoutMs: number }

const plan = JSON.parse(process.argv[2]!) as Plan;
let s = plan.seed >>> 0;
const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296);
const paths = ['/process_data', '/storage_data', '/compute_data'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();

/** Every send time, ms after startAt: evenly spaced within each phase. */
function schedule(p: Plan): number[] {
  const out: number[] = [];
  p.rps.forEach((rps, k) => {
    if (rps <= 0) return;
    const n = Math.floor((rps * p.phaseMs) / 1000);
    for (let i = 0; i < n; i++) out.push(k * p.phaseMs + (i * 1000) / rps);
  });
  return out;
}

async function one(i: number, dueAt: number, at: number[], lat: number[], fail: Record<number, string>): Promise<void> {
  const body = JSON.stringify(Array.from({ length: plan.items }, () => Math.round(rand() * 1e6) / 1e4));
  const t0 = now();
  try {
    const res = await fetch(plan.url + paths[i % 3], { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(plan.timeoutMs) });
    await res.text();
    at[i] = dueAt - plan.startAt;
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    lat[i] = Math.round((now() - t0) * 1000) / 1000;
  } catch (e) {
    at[i] = dueAt - plan.startAt;
    lat[i] = -1;
    const err = e as Error & { cause?: { code?: string } };
    fail[i] = err.name === 'TimeoutError' ? 'timeout' : err.cause?.code ?? err.message;
  }
}

async function main(): Promise<void> {
  const times = schedule(plan);
  const at: number[] = new Array(times.length);
  const lat: number[] = new Array(times.length);
  const fail: Record<number, string> = {};
  const inFlight: Promise<void>[] = [];
  let maxLagMs = 0;
  for (const [i, t] of times.entries()) {
    const due = plan.startAt + t;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    maxLagMs = Math.max(maxLagMs, now() - due);
    inFlight.push(one(i, due, at, lat, fail));
  }
  await Promise.all(inFlight);
  process.stdout.write(JSON.stringify({ at, ms: lat, fail, maxLagMs: Math.round(maxLagMs) }) + '\n');
}

void main();
