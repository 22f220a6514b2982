// outpost autopilot status APP: the autopilot's range, what it measures, what
// it decided last and why it does what it does now.
import type { ApiClient } from '../../contract/client.js';
import { printJson, table } from '../output.js';

export async function status(client: ApiClient, app: string, json: boolean): Promise<void> {
  const v = await client.autopilot(app);
  if (json) return printJson(v);
  if (!v.config) {
    console.log(`${app} has no autopilot (placement.autopilot in its manifest)${v.state ? '; its last standing decision is kept but not applied' : ''}`);
    return;
  }
  const c = v.config;
  const ms = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${x < 10 ? x.toFixed(2) : Math.round(x)} ms`);
  console.log(`${app}: autopilot ${c.dryRun ? 'in dry run (reports, changes nothing)' : 'on'}; ${c.minReplicas}..${c.maxReplicas} replicas at ${c.targetUtilisation * 100}% utilisation; reacts after ${c.reactionS} s, moves for > ${c.thresholdPct}% better, scales in after ${c.scaleInS} s, at most ${c.maxMovesPerHour} moves an hour`);
  console.log(`replicas: ${v.replicas.nodes.length} (${v.replicas.ready} ready) on ${v.replicas.nodes.join(', ') || '-'}`);
  const e = v.evaluation;
  if (!e) console.log('now: not evaluated by this instance (the leading instance evaluates)');
  else {
    console.log(`now: ${e.phase}: ${e.message}`);
    console.log(`measured demand: ${e.demand.map((d) => `${d.site} ${d.rps} rps`).join(', ') || 'none'}; predicted latency ${ms(e.objectiveNow)} as placed, ${ms(e.objectiveBest)} planned for it`);
    if (e.unmet) console.log(`unmet (E_AUTOPILOT_RANGE): ${e.unmet}`);
    if (e.replicas.length > 0) {
      console.log(table(['NODE', 'RPS', 'SERVICE', 'UNLOADED', 'UTILISATION'], e.replicas.map((r) => [r.node, r.rps, ms(r.serviceMs), ms(r.unloadedMs), r.utilisation === null ? '-' : `${Math.round(r.utilisation * 100)}%`])));
    }
    console.log(`recommended: ${e.recommended} replica(s) (the load needs ${e.needed})`);
  }
  const s = v.state;
  if (!s?.last) return console.log('no decision yet');
  const l = s.last;
  console.log(`last decision #${l.n} ${new Date(l.at).toISOString()}: ${l.action} to ${s.targets.join(', ')} (${ms(l.objectiveBefore)} -> ${ms(l.objectiveAfter)}): ${l.reason}`);
  if (s.prepull) console.log(`pre-pull onto ${s.prepull.nodes.join(', ')} until ${new Date(s.prepull.until).toISOString()}`);
  console.log(`moves in the last hour: ${s.moves.filter((t) => t > Date.now() - 3_600_000).length}`);
}
