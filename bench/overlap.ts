// bench:overlap -- deploy predictions when starts overlap on one machine.
// A control plane and four agents on this machine, all on one Podman: four
// nodes that share its cores, as the edge lab's nodes do (and as one node does
// when it starts several replicas at once). After a calibration (one replica
// alone on each node, then two at once on each pair, as the lab report does),
// an app of k replicas, one per node, is deployed `--rounds` times for each k;
// every replica's predicted T_deploy (the plan's, with the starts in flight it
// assumed) is set against its measured one, and against what the model would
// have predicted without the contention term (the node's uncontended T_engine).
//   npm run bench:overlap -- [--rounds N] [--ks 1,2,3,4]
import os from 'node:os';
import type { ApiClient } from '../src/contract/client.js';
import type { ReplicaRecord } from '../src/contract/api.js';
import { normalizeRef } from '../src/core/images.js';
import { median } from './stats.js';
import { removeApp, sleep, startLocal } from './local.js';
import { listArg, numArg } from './args.js';

const IMAGE = 'localhost/sensor-stats:0.1';
const NODES = ['n1', 'n2', 'n3', 'n4'];
const ROUNDS = numArg('--rounds', 5);
const KS = (listArg('--ks') ?? ['1', '2', '3', '4']).map(Number);

const manifest = (name: string, nodes: string[]) => ({
  name, image: IMAGE, replicas: nodes.length, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' }, placement: { nodes },
});

/** Deploys, waits until every replica runs, removes the app and waits until its containers are gone. */
async function once(client: ApiClient, name: string, nodes: string[]): Promise<ReplicaRecord[]> {
  await client.deploy(manifest(name, nodes));
  let reps: ReplicaRecord[];
  for (;;) {
    reps = await client.appReplicas(name);
    if (reps.length === nodes.length && reps.every((r) => r.state === 'running')) break;
    const bad = reps.find((r) => r.state === 'failed');
    if (bad) throw new Error(`${bad.id}: ${bad.error?.message}`);
    await sleep(20);
  }
  await removeApp(client, name);
  await sleep(1500); // the agents finish their clean-up: the next starts begin from a quiet machine
  return reps;
}

const deployOf = (t: ReplicaRecord['measured']) => (t.imageMs ?? 0) + (t.containerMs ?? 0) + (t.engineMs ?? 0);
const pct = (p: number, m: number) => (100 * Math.abs(p - m)) / m;

async function main(): Promise<void> {
  const local = await startLocal({ runtime: 'docker', nodes: NODES });
  const client = local.client;
  try {
    for (const n of NODES) await once(client, `cal-${n}`, [n]);
    for (let i = 0; i < NODES.length; i += 2) await once(client, `cal-pair-${i}`, [NODES[i]!, NODES[i + 1]!]);
    const rows: Record<string, unknown>[] = [];
    for (const k of KS) {
      const withModel: number[] = [];
      const without: number[] = [];
      const engine: number[] = [];
      const conc: number[] = [];
      const predConc: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // which nodes take part rotates, so every node is calibrated alike
        const nodes = NODES.map((_, j) => NODES[(round + j) % NODES.length]!).slice(0, k);
        const before = await client.nodes();
        const reps = await once(client, `overlap-${k}-${round}`, nodes);
        for (const r of reps) {
          const m = deployOf(r.measured);
          const t = before.find((n) => n.name === r.node)!.timings;
          const alone = (r.predicted.imageMs ?? 0) + (r.predicted.containerMs ?? 0) + (t.engineByImage?.[normalizeRef(IMAGE)] ?? t.engineMs ?? 0);
          withModel.push(pct(r.predicted.deployMs!, m));
          without.push(pct(alone, m));
          engine.push(r.measured.engineMs!);
          conc.push(r.concurrency ?? NaN);
          predConc.push(r.predicted.concurrency ?? NaN);
        }
      }
      const row = {
        k, replicas: withModel.length, engineMsMedian: Math.round(median(engine)),
        concurrencyPredicted: median(predConc), concurrencyMeasured: median(conc),
        errorPctMedian: Number(median(withModel).toFixed(1)), errorPctWithoutContention: Number(median(without).toFixed(1)),
      };
      rows.push(row);
      console.log(`k=${k}: T_engine median ${row.engineMsMedian} ms; starts in flight predicted ${row.concurrencyPredicted}, measured ${row.concurrencyMeasured}; median T_deploy error ${row.errorPctMedian}% (without the contention term ${row.errorPctWithoutContention}%)`);
    }
    const nodes = await client.nodes();
    console.log(JSON.stringify({
      rounds: ROUNDS, rows,
      startCores: Object.fromEntries(nodes.map((n) => [n.name, n.timings.startCores ?? null])),
      machine: { cpus: os.availableParallelism(), load: os.loadavg().map((x) => Number(x.toFixed(2))), node: process.version },
    }, null, 2));
  } finally {
    local.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
