// When a simulated agent dials again: what a real agent does after a close
// (full-jitter exponential back-off) and after a 503 at the upgrade (the
// server's Retry-After plus jitter, so a fleet told "1 s" does not come back
// in one wave).

export const BACKOFF_BASE_MS = 250;
export const BACKOFF_CAP_MS = 10_000;

/** Full jitter: uniform in [0, min(cap, base * 2^attempt)). `attempt` counts from 0. */
export function fullJitter(attempt: number, rand: () => number = Math.random, base = BACKOFF_BASE_MS, cap = BACKOFF_CAP_MS): number {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.floor(rand() * ceiling);
}

/**
 * How long the server asked to wait, from a 503's headers: `x-retry-after-ms`
 * when it is a number, else `Retry-After` in seconds (an HTTP date is not
 * supported and counts as absent); null when neither says.
 */
export function retryAfterMs(headers: Record<string, string | string[] | undefined>): number | null {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  const ms = Number(one(headers['x-retry-after-ms']));
  if (one(headers['x-retry-after-ms']) !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  const s = Number(one(headers['retry-after']));
  if (one(headers['retry-after']) !== undefined && Number.isFinite(s) && s >= 0) return s * 1000;
  return null;
}

/** The wait after a 503: what the server asked for plus uniform jitter of up to half of it (at least `base`). */
export function retryDelay(askedMs: number, rand: () => number = Math.random, base = BACKOFF_BASE_MS): number {
  return Math.floor(askedMs + rand() * Math.max(base, askedMs / 2));
}
