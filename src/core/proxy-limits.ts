// The site proxy's two time limits, agent settings (`--proxy-response-timeout`,
// `--proxy-idle-timeout`, their variables and config keys): their defaults
// and bounds, one place for the settings table (src/core/settings.ts) and for
// the proxy's own check of the options it is given (src/agent/proxy/proxy.ts).
import { OutpostError } from './errors.js';

export interface ProxyLimit {
  /** the setting's name (its config key) */
  name: 'proxyResponseTimeoutMs' | 'proxyIdleTimeoutMs';
  default: number;
  min: number;
  max: number;
}

/** a replica that has not begun its answer this long after the request was sent: 504 E_UPSTREAM_TIMEOUT */
export const RESPONSE_LIMIT: ProxyLimit = { name: 'proxyResponseTimeoutMs', default: 60_000, min: 100, max: 86_400_000 };

/** a spliced TCP or WebSocket connection idle this long is closed */
export const IDLE_LIMIT: ProxyLimit = { name: 'proxyIdleTimeoutMs', default: 15 * 60_000, min: 100, max: 86_400_000 };

/**
 * The limit `v` sets, or its default when undefined; anything but a whole
 * number of ms within the bounds is E_INVALID with the setting's name (a
 * timer past 2^31 ms would fire at once, so a day is the most).
 */
export function proxyLimit(l: ProxyLimit, v: number | undefined): number {
  if (v === undefined) return l.default;
  if (!Number.isInteger(v) || v < l.min || v > l.max) {
    throw new OutpostError('E_INVALID', `${l.name}: must be an integer of ms from ${l.min} to ${l.max}, got ${JSON.stringify(v)}`, { path: l.name });
  }
  return v;
}
