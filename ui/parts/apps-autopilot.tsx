// The autopilot's view of the app (GET /v1/apps/NAME/autopilot), above its
// measured demand: the range, what it is doing now and why (the phase and its
// message), the measured demand against the placement's predicted latency and
// the best plan's, each replica's utilisation, and the last decision with its
// reason. Read again every 5 s and when an event names the app.
import type { AutopilotView } from '../../src/contract/api.js';
import { api, enc } from '../api.js';
import { useLoad } from '../hooks.js';
import { ago, lat } from './common.js';

export function AutopilotPanel({ name }: { name: string }) {
  const data = useLoad((signal) => api<AutopilotView>(`/v1/apps/${enc(name)}/autopilot`, { signal }), [name], { on: (e) => e.app === name, everyMs: 5000 });
  const v = data.data;
  if (!v?.config) return null;
  const c = v.config;
  const e = v.evaluation;
  const last = v.state?.last ?? null;
  return (
    <div class="card" data-testid="autopilot">
      <h3>Autopilot{c.dryRun ? ' (dry run: reports, changes nothing)' : ''}</h3>
      <p class="muted">
        {c.minReplicas}..{c.maxReplicas} replicas at {Math.round(c.targetUtilisation * 100)}% utilisation; acts on a change that holds {c.reactionS} s,
        moves for more than {c.thresholdPct}% less latency, at most {c.maxMovesPerHour} moves an hour. Running: {v.replicas.nodes.join(', ') || 'none'} ({v.replicas.ready} ready).
      </p>
      {e ? (
        <>
          <p><b data-testid="autopilot-phase">{e.phase}</b>: {e.message}</p>
          <p class="muted">
            Measured demand: {e.demand.map((d) => `${d.site} ${d.rps} rps`).join(', ') || 'none'}; predicted latency {lat(e.objectiveNow)} as placed, {lat(e.objectiveBest)} planned for it;
            {' '}{e.recommended} replica(s) recommended.{e.unmet ? <span class="warn-text"> {e.unmet}</span> : null}
          </p>
          {e.replicas.length > 0 && (
            <table class="figures">
              <thead><tr><th>node</th><th>rps</th><th>service</th><th>unloaded</th><th>utilisation</th></tr></thead>
              <tbody>{e.replicas.map((r) => <tr key={r.node}><td>{r.node}</td><td>{r.rps}</td><td>{lat(r.serviceMs)}</td><td>{lat(r.unloadedMs)}</td><td>{r.utilisation === null ? '-' : `${Math.round(r.utilisation * 100)}%`}</td></tr>)}</tbody>
            </table>
          )}
        </>
      ) : <p class="muted">Not evaluated by this instance: the leading instance evaluates.</p>}
      <p data-testid="autopilot-last">
        {last ? <>Last decision #{last.n}, {ago(last.at)}: <b>{last.action}</b> to {v.state!.targets.join(', ')} ({lat(last.objectiveBefore)} → {lat(last.objectiveAfter)}): {last.reason}</> : 'No decision yet.'}
      </p>
    </div>
  );
}
