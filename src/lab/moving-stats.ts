// Scenario c's figures from the load generators' records (pure): latency
// over time in 5 s buckets, demand-weighted across the sites active in each
// phase (a site's requests weigh its phase rps / its requests in the bucket,
// so a site sending more does not count twice), steady-state p50 per phase
// (its second half), the time from each shift until a strategy's bucket p50
// is within 10% of the oracle's steady state (and how much of the rest of the
// phase it stays there), and failures per phase.
import { weightedQuantile } from '../core/stats.js';

/** One site's run, as src/lab/moving-load.ts writes it. */
export interface SiteRecords {
  /** when each request was due, ms after the schedule's start */
  at: number[];
  /** its latency, ms; -1 when it failed */
  ms: number[];
  /** why, by request index */
  fail: Record<string, string>;
  maxLagMs: number;
}

export interface Schedule {
  phaseMs: number;
  /** per phase, rps per active site */
  phases: { name: string; rps: Record<string, number> }[];
}

export interface Bucket {
  /** its start, s after the schedule's start */
  tS: number;
  phase: number;
  p50Ms: number | null;
  p95Ms: number | null;
  requests: number;
  failed: number;
}

export const BUCKET_MS = 5000;
/** within this much of the oracle's steady-state p50 counts as re-optimised */
export const WITHIN = 0.1;

const round = (x: number) => Math.round(x * 100) / 100;

/** Demand-weighted latency quantiles of the requests due in [fromMs, toMs), the weights from the phase's rps. */
function window(runs: Record<string, SiteRecords>, rps: Record<string, number>, fromMs: number, toMs: number, only?: string): { p50: number | null; p95: number | null; requests: number; failed: number } {
  const pooled: { v: number; w: number }[] = [];
  let requests = 0;
  let failed = 0;
  for (const [site, r] of Object.entries(runs)) {
    if (only !== undefined && site !== only) continue;
    const ok: number[] = [];
    r.at.forEach((t, i) => {
      if (t < fromMs || t >= toMs) return;
      requests++;
      if (r.ms[i]! < 0) failed++;
      else ok.push(r.ms[i]!);
    });
    const w = (rps[site] ?? 0) / Math.max(1, ok.length);
    for (const v of ok) pooled.push({ v, w: w > 0 ? w : 1 / Math.max(1, ok.length) });
  }
  const q = (p: number) => (pooled.length ? round(weightedQuantile(pooled, p)) : null);
  return { p50: q(0.5), p95: q(0.95), requests, failed };
}

export function buckets(runs: Record<string, SiteRecords>, s: Schedule): Bucket[] {
  const out: Bucket[] = [];
  const end = s.phaseMs * s.phases.length;
  for (let t = 0; t < end; t += BUCKET_MS) {
    const phase = Math.min(s.phases.length - 1, Math.floor(t / s.phaseMs));
    const w = window(runs, s.phases[phase]!.rps, t, Math.min(end, t + BUCKET_MS, (phase + 1) * s.phaseMs));
    out.push({ tS: t / 1000, phase, p50Ms: w.p50, p95Ms: w.p95, requests: w.requests, failed: w.failed });
  }
  return out;
}

/** p50 and p95 over a phase's second half (after any move has settled), all active sites or one. */
export function steady(runs: Record<string, SiteRecords>, s: Schedule, phase: number, site?: string): { p50Ms: number | null; p95Ms: number | null } {
  const w = window(runs, s.phases[phase]!.rps, (phase + 0.5) * s.phaseMs, (phase + 1) * s.phaseMs, site);
  return { p50Ms: w.p50, p95Ms: w.p95 };
}

/**
 * Seconds from phase `phase`'s start until the end of its first bucket whose
 * p50 is within WITHIN of the target (a bucket's p50 is known at its end);
 * null when none is within the phase.
 */
export function settleS(bs: Bucket[], phase: number, targetMs: number): number | null {
  const mine = bs.filter((b) => b.phase === phase);
  const first = mine.find((b) => b.p50Ms !== null && b.p50Ms <= targetMs * (1 + WITHIN));
  return first ? round(first.tS + BUCKET_MS / 1000 - mine[0]!.tS) : null;
}

/** Of a phase's buckets from the first within WITHIN of the target on, the share that are within too: does it stay there. */
export function heldPct(bs: Bucket[], phase: number, targetMs: number): number | null {
  const mine = bs.filter((b) => b.phase === phase);
  const i = mine.findIndex((b) => b.p50Ms !== null && b.p50Ms <= targetMs * (1 + WITHIN));
  if (i < 0) return null;
  const rest = mine.slice(i);
  return Math.round((100 * rest.filter((b) => b.p50Ms !== null && b.p50Ms <= targetMs * (1 + WITHIN)).length) / rest.length);
}

/** Failed requests per phase, and why (counted by reason). */
export function failures(runs: Record<string, SiteRecords>, s: Schedule): { phase: string; requests: number; failed: number; why: Record<string, number> }[] {
  return s.phases.map((p, k) => {
    let requests = 0;
    let failed = 0;
    const why: Record<string, number> = {};
    for (const r of Object.values(runs)) {
      r.at.forEach((t, i) => {
        if (t < k * s.phaseMs || t >= (k + 1) * s.phaseMs) return;
        requests++;
        if (r.ms[i]! >= 0) return;
        failed++;
        const reason = r.fail[String(i)] ?? 'unknown';
        why[reason] = (why[reason] ?? 0) + 1;
      });
    }
    return { phase: p.name, requests, failed, why };
  });
}
