// outpost plan -f APP.yaml [--snapshot SNAP.json]: what deploy would do and
// what it predicts. The file is read as deploy reads it (a Compose file
// converted, configs' files read), but nothing is built. With --snapshot the
// planner runs here, against that file; without, the control plane plans
// against the live cluster (a dry run). Either way it shows why each node was
// ruled out (its policy, its devices, its runtime, its room), each node's
// overrides, and warnings.
import fs from 'node:fs';
import { OutpostError } from '../../core/errors.js';
import { parseManifestText, validateApp } from '../../core/manifest.js';
import { validateSnapshot } from '../../core/snapshot.js';
import { Cluster } from '../../core/cluster.js';
import { plan as planCore, type Plan } from '../../core/planner.js';
import { clientFromEnv } from '../client.js';
import { manifestBody, readManifestText } from './deploy.js';
import type { ComposeOptions } from './compose.js';
import { ms, printJson, table } from '../output.js';

export async function plan(file: string, opts: { snapshot?: string; json?: boolean } & Omit<ComposeOptions, 'registryAuth'>): Promise<void> {
  const { snapshot: _s, json: _j, ...compose } = opts;
  const body = await manifestBody(file, readManifestText(file), { ...compose, say: () => {}, build: false });
  const manifest = typeof body === 'string' ? parseManifestText(body) : body;
  // validated here too, so a bad file fails before any network call, with its path
  validateApp(manifest);
  let p: Plan;
  if (opts.snapshot) {
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(opts.snapshot, 'utf8'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw code ? new OutpostError('E_USAGE', `cannot read ${opts.snapshot}: ${code}`) : new OutpostError('E_BAD_JSON', `snapshot ${opts.snapshot} is not valid JSON: ${(e as Error).message}`);
    }
    p = planCore(new Cluster(validateSnapshot(raw)), validateApp(manifest), { requireRtt: true });
  } else {
    p = (await clientFromEnv().deploy(manifest as object, { dryRun: true })).plan;
  }
  if (opts.json) return printJson(p);
  printPlan(p);
}

export function printPlan(p: Plan): void {
  console.log(`plan for ${p.app} (${p.strategy === 'latency' ? 'latency-aware: least demand-weighted request latency' : 'no demand: spread, image locality first'})`);
  if (p.placements.length === 0) console.log('  nothing to place');
  else {
    console.log(table(['REPLICA', 'NODE', 'IMAGE', 'CONTAINER', 'ENGINE', 'DEPLOY', 'SERVES', 'RUNNERS-UP'],
      p.placements.map((x) => [x.replica, x.node, ms(x.predicted.imageMs), ms(x.predicted.containerMs), `${ms(x.predicted.engineMs)}${(x.predicted.concurrency ?? 1) > 1.05 ? ` (${x.predicted.concurrency} starts at once)` : ''}`, ms(x.predicted.deployMs),
        x.serves.join(',') || null,
        x.runnersUp.map((r) => `${r.node} (${r.objective !== null ? `${r.objective} ms mean, ` : ''}deploy ${ms(r.deployMs)})`).join('; ') || null])));
  }
  if (p.routes.length > 0) {
    console.log('\nroutes');
    console.log(table(['SITE', 'RPS', 'ITEMS', 'NODE', 'PREDICTED'], p.routes.map((r) => [r.site, r.rps, r.items, r.node, r.predictedMs === null ? 'unreachable' : `${r.predictedMs} ms`])));
    console.log(`\nobjective: ${p.objective === null ? 'n/a (a demand site cannot be reached)' : `${p.objective} ms demand-weighted mean request latency`}; predicted deploy ${ms(p.deployMs)} in all`);
  }
  for (const u of p.unmet) console.log(`goal missed: ${u.site} gets ${u.bestMs === null ? 'no route' : `${u.bestMs} ms`}, goal ${u.goalMs} ms`);
  if (p.filtered.length > 0) {
    console.log('\nruled out');
    for (const f of p.filtered) console.log(`  ${f.node}: ${f.reasons.join('; ')}`);
  }
  // a control plane from before overrides sends neither
  if (p.overrides?.length) {
    console.log('\noverrides (per node: the entries that apply, in order, and what they change from the base spec)');
    for (const o of p.overrides) {
      console.log(`  ${o.node}: ${o.applied.map((k) => `overrides[${k}]`).join(', ')}`);
      for (const d of o.diff.length ? o.diff : ['(no change)']) console.log(`    ${d}`);
    }
  }
  for (const w of p.warnings ?? []) console.log(`warning: ${w}`);
}
