// bench:model -- how well the latency model predicts deploys on this machine:
// the example image deployed through Outpost again and again, alternating a
// cold node (every layer of the image removed, so it is pulled from the local
// registry) and a warm one (image cached). Each replica carries the prediction
// it was placed with; the first round is calibration and is not counted.
//   OUTPOST_REGISTRY=127.0.0.1:5000 npm run bench:model -- [--rounds N]
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { modelError } from '../src/core/accuracy.js';
import type { ModelSample } from '../src/core/types.js';
import type { ReplicaRecord } from '../src/contract/api.js';
import { sleep, startLocal } from './local.js';
import { numArg } from './args.js';

const run = promisify(execFile);
const REGISTRY = process.env.OUTPOST_REGISTRY ?? '127.0.0.1:5000';
const REF = `${REGISTRY}/sensor-stats:0.1`;
const LOCAL = 'localhost/sensor-stats:0.1';
const ROUNDS = numArg('--rounds', 8);

async function main(): Promise<void> {
  // the image in the registry, and the local base it was built from
  await run('podman', ['tag', LOCAL, REF]);
  await run('podman', ['push', '--tls-verify=false', REF]);
  const base = (await run('podman', ['images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', 'reference=localhost/outpost-node-base'])).stdout.trim().split('\n').filter(Boolean);

  const local = await startLocal({ runtime: 'docker', env: { OUTPOST_INVENTORY_INTERVAL_MS: '300' } });
  const { client } = local;
  const node = async () => (await client.nodes())[0]!;
  const samples: (ModelSample & { round: number })[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const cold of [true, false]) {
        if (cold) {
          // every image holding these layers goes, so the pull fetches them all
          await run('podman', ['rmi', '-f', REF, LOCAL, ...base]).catch(() => {});
          for (let i = 0; i < 200 && (await node()).images.some((x) => x.endsWith('sensor-stats:0.1')); i++) await sleep(100);
        }
        const name = `model-${round}-${cold ? 'cold' : 'warm'}`;
        await client.deploy({
          name, image: REF, ports: [{ name: 'http', container: 5000 }], resources: { cpu: 1, memoryMiB: 128 }, health: { http: '/healthz', port: 'http' },
        });
        let r: ReplicaRecord | undefined;
        for (;;) {
          [r] = await client.appReplicas(name);
          if (r?.state === 'running') break;
          if (r?.state === 'failed') throw new Error(`${name} failed: ${r.error?.message}`);
          await sleep(20);
        }
        const m = r!.measured;
        const p = r!.predicted;
        const s = {
          round, replica: r!.id, app: name, node: r!.node, image: REF, cached: !cold, at: Date.now(),
          predicted: { imageMs: p.imageMs!, containerMs: p.containerMs!, engineMs: p.engineMs!, deployMs: p.deployMs! },
          measured: { imageMs: m.imageMs!, containerMs: m.containerMs!, engineMs: m.engineMs!, deployMs: m.imageMs! + m.containerMs! + m.engineMs! },
        };
        samples.push(s);
        const f = (x: number) => x.toFixed(0).padStart(6);
        console.log(`round ${round} ${cold ? 'cold' : 'warm'}: image ${f(s.predicted.imageMs)} / ${f(s.measured.imageMs)}   container ${f(s.predicted.containerMs)} / ${f(s.measured.containerMs)}   ` +
          `engine ${f(s.predicted.engineMs)} / ${f(s.measured.engineMs)}   deploy ${f(s.predicted.deployMs)} / ${f(s.measured.deployMs)} ms (predicted / measured)`);
        await client.remove(name);
        for (let i = 0; i < 250; i++) {
          const { stdout } = await run('podman', ['ps', '-aq', '--filter', `label=io.outpost.app=${name}`]);
          if (!stdout.trim()) break;
          await sleep(20);
        }
      }
    }
  } finally {
    local.stop();
    await run('podman', ['tag', REF, LOCAL]).catch(() => {});
  }
  const counted = samples.filter((s) => s.round > 0);
  const out = {
    rounds: ROUNDS, counted: counted.length,
    all: modelError(counted), cold: modelError(counted, (s) => !s.cached), warm: modelError(counted, (s) => s.cached),
    node: (await run('podman', ['--version'])).stdout.trim(),
  };
  console.log(JSON.stringify(out, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
