// The lab report's charts: Vega-Lite specs rendered to SVG (no canvas needed)
// and then to PNG with resvg.
import fs from 'node:fs';
import path from 'node:path';
import * as vega from 'vega';
import { compile } from 'vega-lite';
import { Resvg } from '@resvg/resvg-js';
import type { ScenarioResult } from './report.js';
import type { MovingResult } from './scenario-c.js';

async function png(spec: object, file: string): Promise<void> {
  const view = new vega.View(vega.parse(compile(spec as Parameters<typeof compile>[0]).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const out = new Resvg(svg, { background: 'white', fitTo: { mode: 'zoom', value: 2 }, font: { loadSystemFonts: true } }).render().asPng();
  fs.writeFileSync(file, out);
}

export async function writeCharts(dir: string, scenarios: Record<string, ScenarioResult>): Promise<string[]> {
  const written: string[] = [];
  for (const [name, s] of Object.entries(scenarios)) {
    // latency distribution per strategy: an empirical CDF of every request, all sites pooled
    const rows = Object.entries(s.strategies).flatMap(([strategy, r]) => {
      const all = Object.values(r.samples).flat().sort((a, b) => a - b);
      return all.map((v, i) => ({ strategy, latencyMs: v, fraction: (i + 1) / all.length }));
    });
    const lat = `${name}-latency.png`;
    await png({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: `Scenario ${name}: request latency by strategy (all sites)`, width: 520, height: 300,
      data: { values: rows },
      mark: { type: 'line', interpolate: 'step-after' },
      encoding: {
        x: { field: 'latencyMs', type: 'quantitative', scale: { type: 'log' }, title: 'client-side latency (ms, log scale)' },
        y: { field: 'fraction', type: 'quantitative', title: 'fraction of requests' },
        color: { field: 'strategy', type: 'nominal' },
      },
    }, path.join(dir, lat));
    written.push(lat);
    if (s.deploy.length > 0) {
      const dep = `${name}-deploy.png`;
      const max = Math.max(...s.deploy.flatMap((d) => [d.predictedMs, d.measuredMs])) * 1.1;
      await png({
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        title: `Scenario ${name}: deploy time, predicted against measured`, width: 360, height: 360,
        layer: [
          { data: { values: [{ x: 0, y: 0 }, { x: max, y: max }] }, mark: { type: 'line', color: '#999', strokeDash: [4, 4] },
            encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } } },
          { data: { values: s.deploy.map((d) => ({ ...d, image: d.cached ? 'cached' : 'pulled' })) }, mark: { type: 'point', filled: true, size: 120 },
            encoding: {
              x: { field: 'predictedMs', type: 'quantitative', title: 'predicted T_deploy (ms)', scale: { domain: [0, max] } },
              y: { field: 'measuredMs', type: 'quantitative', title: 'measured T_deploy (ms)', scale: { domain: [0, max] } },
              color: { field: 'image', type: 'nominal' }, tooltip: [{ field: 'node' }],
            } },
          { data: { values: s.deploy }, mark: { type: 'text', dx: 8, align: 'left' },
            encoding: { x: { field: 'predictedMs', type: 'quantitative' }, y: { field: 'measuredMs', type: 'quantitative' }, text: { field: 'node' } } },
        ],
      }, path.join(dir, dep));
      written.push(dep);
    }
  }
  return written;
}

/** Scenario c: p50 and p95 over time per strategy (5 s buckets, demand-weighted), the shifts marked. */
export async function writeMovingChart(dir: string, name: string, r: MovingResult): Promise<string> {
  const rows = Object.entries(r.runs).flatMap(([strategy, run]) => run.buckets.flatMap((b) => [
    ...(b.p50Ms !== null ? [{ strategy, tS: b.tS + 2.5, ms: b.p50Ms, q: 'p50' }] : []),
    ...(b.p95Ms !== null ? [{ strategy, tS: b.tS + 2.5, ms: b.p95Ms, q: 'p95' }] : []),
  ]));
  const shifts = r.schedule.phases.slice(1).map((p, i) => ({ tS: ((i + 1) * r.schedule.phaseMs) / 1000, label: p.name }));
  const file = `${name}-moving.png`;
  await png({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `Scenario ${name}: request latency over time as demand moves (5 s buckets, demand-weighted)`,
    data: { values: rows },
    facet: { row: { field: 'q', type: 'nominal', title: null } },
    spec: {
      width: 640, height: 220,
      layer: [
        { mark: { type: 'line', point: { size: 12 } },
          encoding: {
            x: { field: 'tS', type: 'quantitative', title: 's since the schedule began' },
            y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'client-side latency (ms, log)' },
            color: { field: 'strategy', type: 'nominal' },
          } },
        { data: { values: shifts }, mark: { type: 'rule', strokeDash: [4, 4], color: '#777' }, encoding: { x: { field: 'tS', type: 'quantitative' } } },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  }, path.join(dir, file));
  return file;
}
