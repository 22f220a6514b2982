// A uPlot chart as a component: the plot is made once, when the component
// mounts, and every later `data` goes to setData (a live chart appends a window
// every second or two; re-creating the plot each time would flash and lose the
// cursor). It follows its box's width. A user's zoom (drag to zoom, double
// click to undo) survives the updates. A chart whose series change is a new
// chart: give it another `key`.
import uPlot from 'uplot';
import uPlotCss from 'uplot/dist/uPlot.min.css' with { type: 'text' };
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

// esbuild writes the CSS a lazy chunk imports to a file of its own that nothing
// loads, so uPlot's sheet comes as text with this module (the charts' pages)
// and goes into the page once, when the first of them opens.
const sheet = document.createElement('style');
sheet.dataset.for = 'uplot';
sheet.textContent = uPlotCss;
document.head.append(sheet);

export type ChartOptions = Omit<uPlot.Options, 'width' | 'height'>;
export type ChartData = uPlot.AlignedData;

export interface ChartProps {
  /** read once, when the chart is made */
  options: ChartOptions;
  data: ChartData;
  /** px, the whole chart (plot, axes and legend) */
  height: number;
  /** the wrapper's data-testid */
  testid: string;
  /** what the chart shows, for screen readers */
  label: string;
  /** shown over the plot when there is nothing to draw */
  empty?: ComponentChildren;
  /** the data index under the cursor, or null when it leaves */
  onCursor?: (idx: number | null) => void;
}

/** An x axis of epoch seconds as this page's clock reads them: times of day, with the date once the view spans days. */
export const timeAxis: uPlot.Axis = {
  space: 80,
  values: (u, splits) => {
    const { min, max } = u.scales.x!;
    const span = (max ?? 0) - (min ?? 0);
    const o: Intl.DateTimeFormatOptions = span > 172_800 ? { month: 'short', day: 'numeric', hour: '2-digit', hourCycle: 'h23' }
      : span > 900 ? { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' } : { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' };
    return splits.map((s) => (s == null ? '' : new Date(s * 1000).toLocaleString(undefined, o)));
  },
};

/** The x range of the data (its first and last x), or null when empty. */
function span(data: ChartData): [number, number] | null {
  const x = data[0];
  return x.length ? [x[0]!, x[x.length - 1]!] : null;
}

export function Chart(p: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const zoomed = useRef(false);
  const cursor = useRef(p.onCursor);
  cursor.current = p.onCursor;

  useEffect(() => {
    const el = box.current!;
    const o = p.options;
    const u = new uPlot({
      // room above the plot for the top tick's label
      padding: [14, 12, 0, 0],
      ...o,
      width: Math.max(100, el.clientWidth),
      height: p.height,
      hooks: {
        ...o.hooks,
        // a zoom is an x range inside the data's: the next setData keeps it
        setScale: [...(o.hooks?.setScale ?? []), (self, key) => {
          const s = span(self.data);
          const { min, max } = self.scales.x!;
          if (key === 'x' && s && min != null && max != null) zoomed.current = min > s[0] || max < s[1];
        }],
        setCursor: [...(o.hooks?.setCursor ?? []), (self) => cursor.current?.(self.cursor.idx ?? null)],
      },
    }, p.data, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = Math.max(100, el.clientWidth);
      if (w !== u.width) u.setSize({ width: w, height: p.height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, []);

  useEffect(() => {
    const u = plot.current;
    if (!u || u.data === p.data) return;
    u.setData(p.data, !zoomed.current);
    // labels that come from the data (a bar chart's replicas) change with the scale unchanged: lay the axes out again
    u.redraw(false, true);
  }, [p.data]);

  useEffect(() => {
    const u = plot.current;
    if (u && u.height !== p.height) u.setSize({ width: u.width, height: p.height });
  }, [p.height]);

  return (
    <div class="chart" data-testid={p.testid} role="img" aria-label={p.label}>
      <div ref={box} />
      {p.empty && !span(p.data) && <div class="chart-empty">{p.empty}</div>}
    </div>
  );
}

export { uPlot };
