// The deploy half of the latency model:
//   T_deploy = T_image + T_container + T_engine
//   T_image  = bytes of the image's layers missing on the node * 8 / (bandwidth Mbps * 1000) ms
// Per-node values are calibrated from measurements with an exponentially
// weighted moving average; defaults stand in until the first measurement.
import type { NodeTimings, Timings } from './types.js';
import { contention, DEFAULT_START_CORES, learnStartCores } from './contention.js';
import { ewma } from './stats.js';

// imageBytes stands in for an image no node has reported yet
// perItemUs: per-item stage costs before an app has reported its own
export const DEFAULTS = {
  containerMs: 150, engineMs: 500, bandwidthMbps: 100, imageBytes: 100 * 1024 * 1024,
  perItemUs: { process: 0.3, storage: 0.3, compute: 0.3 },
};

/** T_request(site, node, n) = RTT + n * (t_process + t_storage + t_compute), in ms (per-item costs in us). */
export function requestMs(rttMs: number, items: number, perItemUsSum: number): number {
  return rttMs + (items * perItemUsSum) / 1000;
}
export { EWMA_ALPHA, ewma } from './stats.js';

export function imageMs(missingBytes: number, bandwidthMbps: number): number {
  if (missingBytes <= 0) return 0;
  return (missingBytes * 8) / (bandwidthMbps * 1000);
}

export interface DeployInput {
  /** true when the node already holds the image */
  cached: boolean;
  /** bytes the node would have to pull; null when unknown */
  missingBytes: number | null;
  timings: NodeTimings;
}

export function predictDeploy(d: DeployInput): Timings & { deployMs: number } {
  const containerMs = d.timings.containerMs ?? DEFAULTS.containerMs;
  const engineMs = d.timings.engineMs ?? DEFAULTS.engineMs;
  const bw = d.timings.bandwidthMbps ?? DEFAULTS.bandwidthMbps;
  const img = d.cached ? 0 : imageMs(d.missingBytes ?? DEFAULTS.imageBytes, bw);
  return { imageMs: round(img), containerMs: round(containerMs), engineMs: round(engineMs), deployMs: round(img + containerMs + engineMs) };
}

export interface StartContext {
  /** the mean number of starts in flight on the node's host during this one (itself included) */
  concurrency: number;
  /** the host's cores */
  cpus: number;
  /** the image's normalized reference: T_engine is kept per image as well */
  image: string | null;
}

/**
 * Folds one replica's measured create and start times into the node's
 * calibration. T_engine is kept uncontended (the measurement divided by the
 * slowdown its overlapping starts caused), so a prediction can scale it by the
 * starts that will overlap the next one (src/core/contention.ts).
 */
export function calibrate(t: NodeTimings, m: Timings, start: StartContext = { concurrency: 1, cpus: 1, image: null }): NodeTimings {
  const next = { ...t, samples: t.samples + 1 };
  if (m.containerMs !== null) next.containerMs = round(ewma(t.containerMs, m.containerMs));
  if (m.engineMs !== null) {
    const imageBase = start.image ? t.engineByImage?.[start.image] ?? null : null;
    // c is learnt against this image's own uncontended T_engine: the first
    // start of a new image, slow or fast for reasons of its own, says nothing
    // about contention
    const base = start.image ? imageBase : t.engineMs;
    const c = learnStartCores(t.startCores ?? null, base, m.engineMs, start.concurrency, start.cpus);
    const alone = m.engineMs / contention(start.concurrency, c ?? DEFAULT_START_CORES, start.cpus);
    next.engineMs = round(ewma(t.engineMs, alone));
    if (c !== null) next.startCores = c;
    if (start.image) next.engineByImage = { ...t.engineByImage, [start.image]: round(ewma(imageBase, alone)) };
  }
  return next;
}

/** Folds one real pull (bytes of the layers that were missing, and its duration) into the node's bandwidth. */
export function calibrateBandwidth(t: NodeTimings, bytes: number, ms: number): NodeTimings {
  if (!(bytes > 0 && ms > 0)) return t;
  return { ...t, bandwidthMbps: round(ewma(t.bandwidthMbps, (bytes * 8) / (ms * 1000))) };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
