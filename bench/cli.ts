// bench:cli -- how long the outpost command takes to start and answer, as a
// user or a script runs it: `--version`, `apps --json` against a live control
// plane holding a few apps, and `deploy -f` of a manifest that is already
// deployed (the control plane answers "unchanged" at once, so the figure is
// the CLI's own cost plus one request). Bare `node` starting an empty file is
// the floor. Each is run with the environment as it is here and again without
// NODE_EXTRA_CA_CERTS, which this machine sets (every Node.js process then
// parses a CA bundle at start-up, ~40 ms here) and a user's machine rarely does.
//   npm run bench:cli -- [--runs N]
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median, summarize } from './stats.js';
import { ROOT, startLocal } from './local.js';
import { numArg } from './args.js';

const run = promisify(execFile);
const RUNS = numArg('--runs', 30);
const CLI = path.join(ROOT, 'dist/src/cli/main.js');

async function time(args: string[], env: NodeJS.ProcessEnv): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < RUNS + 3; i++) {
    const t0 = performance.now();
    await run(process.execPath, args, { env });
    if (i >= 3) out.push(performance.now() - t0); // three warm-ups: page cache
  }
  return out;
}

async function main(): Promise<void> {
  const local = await startLocal({ runtime: 'process' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-cli-'));
  const empty = path.join(dir, 'empty.mjs');
  fs.writeFileSync(empty, '');
  const file = path.join(dir, 'app.yaml');
  fs.writeFileSync(file, 'name: bench-cli\ncommand: ["node", "-e", "setInterval(() => {}, 1000)"]\nreplicas: 0\n');
  try {
    for (let i = 0; i < 5; i++) await local.client.deploy({ name: `bench-app-${i}`, command: ['true'], replicas: 0 });
    const base: NodeJS.ProcessEnv = { ...process.env, ...local.cliEnv };
    const noCa = { ...base };
    delete noCa.NODE_EXTRA_CA_CERTS;
    await run(process.execPath, [CLI, 'deploy', '-f', file], { env: base });
    const cases: [string, string[]][] = [
      ['node (empty file)', [empty]],
      ['outpost --version', [CLI, '--version']],
      ['outpost apps --json', [CLI, 'apps', '--json']],
      ['outpost deploy -f (unchanged)', [CLI, 'deploy', '-f', file]],
    ];
    const rows: Record<string, unknown>[] = [];
    for (const [name, args] of cases) {
      for (const [envName, env] of [['as is', base], ['no NODE_EXTRA_CA_CERTS', noCa]] as const) {
        if (envName === 'as is' && !process.env.NODE_EXTRA_CA_CERTS) continue;
        const xs = await time(args, env);
        rows.push({ command: name, env: envName, ...summarize(xs) });
        console.log(`${name.padEnd(32)} ${envName.padEnd(24)} median ${median(xs).toFixed(1).padStart(6)} ms`);
      }
    }
    console.log(JSON.stringify({ runs: RUNS, rows, machine: { cpus: os.availableParallelism(), load: os.loadavg().map((x) => Number(x.toFixed(2))), node: process.version } }, null, 2));
  } finally {
    local.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
