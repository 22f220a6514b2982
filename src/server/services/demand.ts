// Measured demand: the site proxies' windows (the agents' `demand` messages),
// kept in memory per (app, site of the reporting node) for ten minutes
// (src/core/demand.ts), and GET /v1/apps/NAME/demand's answer: per site the
// measured rate, errors and latency against the manifest's declared demand,
// per route the measured latency against the model's prediction. Not in the
// store: windows are many, short-lived and re-measured every 10 s; a
// restarted instance (or another instance of the cluster) starts empty and
// fills within a minute. A report whose clock or figures cannot be true is
// dropped, counted by reason and logged.
import type { Logger } from 'pino';
import { DemandBook, compare, withProxyRtt, type DemandView, type DemandWindow, type DemandRefusal } from '../../core/demand.js';
import type { NodeRecord } from '../../core/types.js';
import { OutpostError } from '../../core/errors.js';
import { rankEndpoints } from '../../core/routing.js';
import type { State } from '../state.js';

export class Demand {
  readonly book: DemandBook;
  /** windows refused since this instance started, by reason */
  readonly refused: Record<DemandRefusal, number> = { clock: 0, figures: 0, duplicate: 0 };

  constructor(private readonly state: State, private readonly now: () => number, private readonly log: Logger) {
    this.book = new DemandBook(now());
  }

  /** A node's closed windows: each taken once; the starts to acknowledge (taken, sent again, or refused for good). */
  report(node: string, windows: DemandWindow[]): number[] {
    const site = this.state.node(node)?.site ?? '';
    const t = this.now();
    for (const w of windows) {
      const r = this.book.add(node, site, w, t, (app) => this.state.app(app) !== undefined);
      if (r.ok) continue;
      this.refused[r.reason]++;
      // a window sent again after a reconnect is expected; a clock or figures that cannot be true are not
      if (r.reason !== 'duplicate') this.log.warn({ node, reason: r.reason, start: w.start }, `demand report refused: ${r.message}`);
    }
    return windows.map((w) => w.start);
  }

  /** Per site: measured against declared; per route: measured against predicted. */
  view(app: string): DemandView {
    const a = this.state.app(app);
    if (!a) throw new OutpostError('E_NOT_FOUND', `no app named "${app}"`);
    const declared = a.spec.placement.demand;
    const replicas = this.state.appReplicas(app);
    const nodes = this.calibrated([...new Set(replicas.map((r) => r.node))].map((n) => this.state.node(n)).filter((n) => n !== undefined));
    const ranked = new Map<string, ReturnType<typeof rankEndpoints>>();
    const predicted = (site: string | null, node: string): number | null => {
      if (site === null) return null;
      // as the endpoints route ranks them: items from the site's declared demand, or 1
      if (!ranked.has(site)) ranked.set(site, rankEndpoints(app, replicas, nodes, site, declared.find((d) => d.site === site)?.items ?? 1));
      return ranked.get(site)!.find((e) => e.node === node)?.predictedMs ?? null;
    };
    return compare(app, this.book.sites(app, this.now()), declared, predicted);
  }

  /** Nodes with the RTTs the proxies measured to them in place of their probes' (declared ones still win), worked out at most once a second. */
  calibrated(nodes: NodeRecord[]): NodeRecord[] {
    const t = this.now();
    if (!this.rtt || t - this.rtt.at >= 1000) this.rtt = { at: t, by: this.book.connectRtt(t) };
    return withProxyRtt(nodes, this.rtt.by);
  }

  private rtt: { at: number; by: Map<string, Record<string, number>> } | null = null;

  /**
   * Every app's sites, for the metrics (windows of apps removed meanwhile are
   * forgotten): added up once per scrape, which reads them for several
   * metrics (the next turn of the event loop forgets them)
   */
  figures(): ReturnType<DemandBook['all']> {
    if (this.added) return this.added;
    for (const app of this.book.apps()) if (!this.state.app(app)) this.book.forget(app);
    const added = this.book.all(this.now());
    this.added = added;
    setImmediate(() => { this.added = null; });
    return added;
  }

  private added: ReturnType<DemandBook['all']> | null = null;
}
