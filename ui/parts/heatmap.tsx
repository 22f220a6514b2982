// The latency map: sites (rows) by nodes (columns), each cell the node's RTT to
// the site on a log colour scale, declared RTTs marked with a dot, and for the
// chosen app each site's current route (its nearest healthy replica) outlined.
// Drawn on one canvas so 1,000 nodes cost one paint, not 1,000 elements.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ms } from './common.js';

export interface HeatData {
  sites: string[];
  nodes: { name: string; site: string | null }[];
  /** site -> node -> ms */
  rtt: Record<string, Record<string, number>>;
  /** site -> nodes whose RTT was declared */
  declared: Record<string, Set<string>>;
  /** site -> the node its requests go to now, for the chosen app */
  route: Record<string, string | null>;
}

const LABEL = 120;
const ROW = 22;
const HEAD = 16;
const LO = Math.log(0.1);
const HI = Math.log(300);
// a perceptual ramp from near (green) to far (purple): 5 stops
const STOPS = [[26, 152, 80], [166, 217, 106], [254, 224, 139], [244, 109, 67], [118, 42, 131]];

export function rttColour(v: number): string {
  const t = Math.min(1, Math.max(0, (Math.log(Math.max(v, 0.1)) - LO) / (HI - LO))) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(t));
  const f = t - i;
  const c = STOPS[i]!.map((a, k) => Math.round(a + (STOPS[i + 1]![k]! - a) * f));
  return `rgb(${c.join(',')})`;
}

export function Heatmap({ data }: { data: HeatData }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const box = useRef<HTMLDivElement>(null);
  const [tip, setTip] = useState<{ x: number; y: number; text: string } | null>(null);
  const [width, setWidth] = useState(900);
  // what the canvas shows now, for tests and benchmarks: "SITES x NODES" once drawn
  const [drawn, setDrawn] = useState('');
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const n = data.nodes.length;
  const cell = Math.max(3, Math.min(28, Math.floor((width - LABEL - 4) / Math.max(1, n))));
  const w = LABEL + cell * n + 2;
  const h = HEAD + ROW * data.sites.length + 2;
  useEffect(() => {
    const c = ref.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = w * dpr;
    c.height = h * dpr;
    c.style.width = `${w}px`;
    c.style.height = `${h}px`;
    const g = c.getContext('2d')!;
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, h);
    g.font = '12px system-ui, sans-serif';
    g.textBaseline = 'middle';
    // node groups by site along the top
    let start = 0;
    for (let i = 1; i <= n; i++) {
      if (i === n || data.nodes[i]!.site !== data.nodes[start]!.site) {
        g.fillStyle = '#6b7384';
        g.fillText(data.nodes[start]!.site ?? '(no site)', LABEL + start * cell + 2, HEAD / 2, Math.max(0, (i - start) * cell - 4));
        g.fillStyle = '#c9ced8';
        g.fillRect(LABEL + start * cell, 0, 1, h);
        start = i;
      }
    }
    data.sites.forEach((s, r) => {
      const y = HEAD + r * ROW;
      g.fillStyle = '#1d2330';
      g.fillText(s, 4, y + ROW / 2, LABEL - 8);
      const row = data.rtt[s] ?? {};
      const decl = data.declared[s];
      data.nodes.forEach((nd, i) => {
        const v = row[nd.name];
        const x = LABEL + i * cell;
        g.fillStyle = v === undefined ? '#eceef2' : rttColour(v);
        g.fillRect(x, y + 1, Math.max(1, cell - (cell > 4 ? 1 : 0)), ROW - 2);
        if (decl?.has(nd.name) && cell >= 6) {
          g.fillStyle = '#fff';
          g.beginPath();
          g.arc(x + cell / 2, y + ROW / 2, Math.min(3, cell / 4), 0, Math.PI * 2);
          g.fill();
        }
      });
      const to = data.route[s];
      const i = to ? data.nodes.findIndex((x) => x.name === to) : -1;
      if (i >= 0) {
        g.strokeStyle = '#000';
        g.lineWidth = 2;
        g.strokeRect(LABEL + i * cell - 1, y, Math.max(3, cell) + 1, ROW);
        g.fillStyle = '#000';
        g.fillText('◀', Math.min(w - 12, LABEL + (i + 1) * cell + 2), y + ROW / 2);
      }
    });
    setDrawn(`${data.sites.length}x${n}`);
  }, [data, w, h, cell]);
  const move = (e: MouseEvent): void => {
    const r = ref.current!.getBoundingClientRect();
    const col = Math.floor((e.clientX - r.left - LABEL) / cell);
    const row = Math.floor((e.clientY - r.top - HEAD) / ROW);
    const site = data.sites[row];
    const node = data.nodes[col];
    if (!site || !node) return setTip(null);
    const v = data.rtt[site]?.[node.name];
    const how = v === undefined ? 'not measured' : data.declared[site]?.has(node.name) ? 'declared' : 'measured';
    const routed = data.route[site] === node.name ? ' - this site\'s route' : '';
    setTip({ x: e.clientX + 12, y: e.clientY + 12, text: `${site} -> ${node.name}: ${v === undefined ? '-' : ms(v)} (${how})${routed}` });
  };
  return (
    <div>
      <div class="heat" ref={box}>
        <canvas ref={ref} data-testid="latency-map" data-drawn={drawn} aria-label={`RTT from ${data.sites.length} sites to ${n} nodes`} onMouseMove={move} onMouseLeave={() => setTip(null)} />
      </div>
      <div class="legend">
        <span>RTT</span><span>0.1 ms</span>
        <span class="ramp" style={{ background: `linear-gradient(90deg, ${[0.1, 0.5, 3, 20, 300].map(rttColour).join(',')})` }} />
        <span>300 ms (log scale)</span>
        <span>● declared, not measured</span>
        <span>▯ outlined ◀: the site's route for the chosen app</span>
        <span style={{ background: '#eceef2', padding: '0 6px' }}>no RTT</span>
      </div>
      {tip && <div class="tooltip" style={{ left: `${tip.x}px`, top: `${tip.y}px` }}>{tip.text}</div>}
    </div>
  );
}
