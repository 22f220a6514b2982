// T_engine when starts overlap. A replica's start (the engine's work, then
// the app's own start-up until its first healthy answer) is mostly CPU work.
// Starts that run at the same time on one host share its cores, so each is
// modelled as processor sharing:
//
//   T_engine(k) = T_engine(1) * max(1, k * c / C)
//
//   k  the mean number of starts in flight on the host during this one
//      (itself included; time-weighted, so a start that overlaps half of this
//      one counts one half)
//   c  the cores one start keeps busy (engine, runtime, the app), calibrated
//      per node from starts that overlapped; 1 until then
//   C  the host's cores
//
// Nodes that share a host (the lab's namespaces, several agents on one
// machine) share its cores, so k counts the starts of every node on the host.
// On this 2-core machine (`npm run bench:overlap`, docs/benchmarks.md) c
// came out at 1.2-1.4, and 2, 3 and 4 starts at once were predicted within
// 4.5-8% (median) where ignoring the overlap missed by 23-52%.

import { ewma } from './stats.js';

/** The host a node runs on: one that reports none counts as its own. */
export function hostKey(node: string, host: string | null | undefined): string {
  return host ?? `node:${node}`;
}

/** The host-wide slowdown of a start with k starts in flight. */
export function contention(k: number, startCores: number, cpus: number): number {
  return Math.max(1, (k * startCores) / Math.max(1, cpus));
}

export interface Window {
  start: number;
  end: number;
}

/** 1 + the time-weighted number of other windows overlapping `w`: the mean concurrency during it. */
export function meanConcurrency(w: Window, others: Window[]): number {
  const len = w.end - w.start;
  if (!(len > 0)) return 1 + others.filter((o) => o.start <= w.start && o.end >= w.end).length;
  let overlap = 0;
  for (const o of others) overlap += Math.max(0, Math.min(w.end, o.end) - Math.max(w.start, o.start));
  return 1 + overlap / len;
}

interface PlannedStart {
  host: string;
  cpus: number;
  startCores: number;
  /** when the engine start begins, relative to now: T_image + T_container */
  at: number;
  /** T_engine with no other start in flight */
  engineMs: number;
}

/**
 * Each planned start's T_engine given the others on its host and the starts
 * already in flight there (`inFlight`: host -> windows relative to now).
 * Slower starts overlap more, so it iterates to a fixed point (a few rounds).
 */
export function overlappedEngine(starts: PlannedStart[], inFlight: Map<string, Window[]> = new Map()): { engineMs: number; concurrency: number }[] {
  let eng = starts.map((s) => s.engineMs);
  let k = starts.map(() => 1);
  for (let round = 0; round < 8; round++) {
    const windows = starts.map((s, i) => ({ start: s.at, end: s.at + eng[i]! }));
    k = starts.map((s, i) => meanConcurrency(windows[i]!, [
      ...windows.filter((_, j) => j !== i && starts[j]!.host === s.host),
      ...(inFlight.get(s.host) ?? []),
    ]));
    const next = starts.map((s, i) => s.engineMs * contention(k[i]!, s.startCores, s.cpus));
    const settled = next.every((x, i) => Math.abs(x - eng[i]!) < 0.5);
    eng = next;
    if (settled) break;
  }
  return starts.map((_, i) => ({ engineMs: eng[i]!, concurrency: k[i]! }));
}

export const DEFAULT_START_CORES = 1;

/** A slowdown smaller than this is within a start's own noise (one start alone varies by ~7% here). */
const NOISE = 1.2;

/**
 * What one measured start (T_engine `measured`, at mean concurrency `k` on a
 * host of `cpus` cores, against the uncontended T_engine `base`) teaches
 * about c, the cores one start keeps busy: a start that was slowed gives
 * c = slowdown * C / k; one that overlapped others without slowing bounds it
 * (c <= C / k). A small slowdown where the model expected none is noise, not
 * contention: on a many-core host it would otherwise teach a large c. Returns
 * the new c (null: still unknown).
 */
export function learnStartCores(c: number | null, base: number | null, measured: number, k: number, cpus: number): number | null {
  // a small overlap says little about c, and start-up times are noisy
  if (k < 1.5 || base === null || !(base > 0)) return c;
  const C = Math.max(1, cpus);
  const prior = c ?? DEFAULT_START_CORES;
  const observed = measured / base;
  const expectedSlow = contention(k, prior, C) > 1;
  if (observed > NOISE || (expectedSlow && observed > 1.05)) return round(clamp(ewma(c, (observed * C) / k), 0.1, 16));
  if (observed <= 1.05 && prior > C / k) return round(clamp(ewma(c, C / k), 0.1, 16));
  return c;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
