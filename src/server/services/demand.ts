// Measured demand: the site proxies' windows (the agents' `demand` messages),
// kept in memory per (app, site of the reporting node) for ten minutes
// (src/core/demand.ts), and GET /v1/apps/NAME/demand's answer: per site the
// measured rate, errors and latency against the manifest's declared demand,
// per route the measured latency against the model's prediction. Not in the
// store: windows are many, short-lived and re-measured every 10 s; a
// restarted single instance starts empty and fills within a minute. Several
// instances on one PostgreSQL database share what each took (a DemandShare,
// src/server/demand-pg.ts): every instance, the leader's autopilot above all,
// sees every node's windows within about a second, and a restarted instance
// reads the last ten minutes back. A report whose clock or figures cannot be
// true is dropped, counted by reason and logged.
import type { Logger } from 'pino';
import { DEMAND_LIMITS, DemandBook, compare, withProxyRtt, type DemandView, type DemandWindow, type DemandRefusal, type RouteModel } from '../../core/demand.js';
import { effectiveRtt } from '../../core/live.js';
import type { NodeRecord } from '../../core/types.js';
import { OutpostError } from '../../core/errors.js';
import { rankEndpoints } from '../../core/routing.js';
import type { State } from '../state.js';

/** A window as one instance took it: from which node, counted for which site. */
export interface SharedWindow {
  node: string;
  site: string;
  window: DemandWindow;
}

/** The windows the instances of a cluster take, shared (demand-pg.ts). */
export interface DemandShare {
  /** stores windows this instance took */
  publish(rows: SharedWindow[]): Promise<void>;
  /** the windows other instances took since the last call (the first call: all that are kept) */
  pull(): Promise<SharedWindow[]>;
  /** forgets windows received before `before` (epoch ms); how many */
  prune(before: number): Promise<number>;
}

/** windows waiting to be shared at most (a database away for long): the oldest go first */
const OUTBOX_MAX = 100_000;

export class Demand {
  readonly book: DemandBook;
  /** windows refused since this instance started, by reason */
  readonly refused: Record<DemandRefusal, number> = { clock: 0, figures: 0, duplicate: 0 };
  private share: DemandShare | null = null;
  private outbox: SharedWindow[] = [];
  private prunedAt = 0;
  private failing = false;

  constructor(private readonly state: State, private readonly now: () => number, private readonly log: Logger) {
    this.book = new DemandBook(now());
  }

  /** A node's closed windows: each taken once; the starts to acknowledge (taken, sent again, or refused for good). */
  report(node: string, windows: DemandWindow[]): number[] {
    const site = this.state.node(node)?.site ?? '';
    const t = this.now();
    for (const w of windows) {
      const r = this.book.add(node, site, w, t, (app) => this.state.app(app) !== undefined);
      if (r.ok) {
        if (this.share) this.outbox.push({ node, site, window: w });
        continue;
      }
      this.refused[r.reason]++;
      // a window sent again after a reconnect is expected; a clock or figures that cannot be true are not
      if (r.reason !== 'duplicate') this.log.warn({ node, reason: r.reason, start: w.start }, `demand report refused: ${r.message}`);
    }
    return windows.map((w) => w.start);
  }

  /** Shares what this instance takes with the other instances of its cluster, and takes theirs (`sync`). */
  shareWith(share: DemandShare): void {
    this.share = share;
  }

  /**
   * Sends what this instance took since the last call and takes what the
   * others took (every second); the leader also forgets windows past the
   * book's span (every minute). A database away: the windows wait (at most
   * OUTBOX_MAX) and go with the next call that gets through.
   */
  async sync(leading: boolean): Promise<void> {
    if (!this.share) return;
    const out = this.outbox;
    this.outbox = [];
    try {
      await this.share.publish(out).catch((e: unknown) => {
        this.outbox = [...out, ...this.outbox].slice(-OUTBOX_MAX);
        throw e;
      });
      const t = this.now();
      // a window taken here already (its node moved between instances and sent it again) is refused as a duplicate
      for (const r of await this.share.pull()) this.book.add(r.node, r.site, r.window, t, (app) => this.state.app(app) !== undefined);
      if (leading && t - this.prunedAt >= 60_000) {
        this.prunedAt = t;
        await this.share.prune(t - DEMAND_LIMITS.retentionMs);
      }
      if (this.failing) this.log.info('demand windows shared again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.log.warn({ err }, 'sharing demand windows with the other instances failed; they wait');
      this.failing = true;
    }
  }

  /** Per site: measured against declared; per route: measured against predicted. */
  view(app: string): DemandView {
    const a = this.state.app(app);
    if (!a) throw new OutpostError('E_NOT_FOUND', `no app named "${app}"`);
    const declared = a.spec.placement.demand;
    const replicas = this.state.appReplicas(app);
    const measured = this.book.sites(app, this.now());
    // every node a route went to (a replica may have left it since), with the RTTs the proxies measured
    const names = new Set([...replicas.map((r) => r.node), ...measured.flatMap((f) => f.routes.map((r) => r.node))]);
    const nodes = this.calibrated([...names].map((n) => this.state.node(n)).filter((n) => n !== undefined));
    const rtts = new Map(nodes.map((n) => [n.name, effectiveRtt(n)]));
    const ranked = new Map<string, ReturnType<typeof rankEndpoints>>();
    const model = (site: string | null, node: string): RouteModel => {
      if (site === null) return { predictedMs: null, rttMs: null };
      // as the endpoints route ranks them: items from the site's declared demand, or 1
      if (!ranked.has(site)) ranked.set(site, rankEndpoints(app, replicas, nodes, site, declared.find((d) => d.site === site)?.items ?? 1));
      return { predictedMs: ranked.get(site)!.find((e) => e.node === node)?.predictedMs ?? null, rttMs: rtts.get(node)?.[site] ?? null };
    };
    return compare(app, measured, declared, model);
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
