// `healthcheck` as an Outpost health check (an exec check: CMD runs as given,
// CMD-SHELL and the string form through /bin/sh -c), and `depends_on` (list or
// conditions) as `dependsOn`. Pure.
import type { Findings } from './findings.js';
import { HEALTH_KEYS } from './keys.js';
import type { Path } from './tree.js';
import { parseBool, parseDuration, parseNumber } from './values.js';

export interface HealthOut {
  exec: string[];
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  startTimeoutMs: number;
  failureThreshold: number;
}

// Compose's defaults
const INTERVAL = 30_000;
const TIMEOUT = 30_000;
const RETRIES = 3;
/** Outpost's own default start-up allowance, kept as a floor */
const START_FLOOR = 60_000;

/** The check, or null when the service has none (or disables the image's). */
export function convertHealth(f: Findings, path: Path, raw: unknown): HealthOut | null {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    f.invalid(path, 'healthcheck is a mapping');
    return null;
  }
  const h = raw as Record<string, unknown>;
  for (const k of Object.keys(h)) if (!HEALTH_KEYS.includes(k) && !k.startsWith('x-')) f.invalid([...path, k], `unknown field "${k}" of healthcheck`);
  if (h.disable !== undefined) {
    const d = parseBool(h.disable);
    if (!d.ok) f.invalid([...path, 'disable'], d.why);
    else if (d.value) return null;
  }
  const exec = testCommand(f, [...path, 'test'], h.test);
  if (!exec) return null;
  const dur = (k: string, dflt: number, min: number, max: number): number => {
    if (h[k] === undefined) return dflt;
    const d = parseDuration(h[k]);
    if (!d.ok) {
      f.invalid([...path, k], d.why);
      return dflt;
    }
    if (d.value < min || d.value > max) {
      f.invalid([...path, k], `${h[k]} is outside ${min} ms to ${max / 1000} s`);
      return dflt;
    }
    return d.value;
  };
  const intervalMs = dur('interval', INTERVAL, 10, 3_600_000);
  const timeoutMs = dur('timeout', TIMEOUT, 10, 600_000);
  const startPeriodMs = dur('start_period', 0, 0, 3_600_000);
  if (h.start_interval !== undefined) f.note([...path, 'start_interval'], 'dropped', '`start_interval` is not applied: checks run every `interval` from the start');
  let failureThreshold = RETRIES;
  if (h.retries !== undefined) {
    const n = parseNumber(h.retries);
    if (!n.ok || !Number.isInteger(n.value) || n.value < 1 || n.value > 100) f.invalid([...path, 'retries'], 'retries is a whole number from 1 to 100');
    else failureThreshold = n.value;
  }
  // Compose marks a container unhealthy after start_period and `retries`
  // failed checks; Outpost fails a start with no pass in startTimeoutMs
  const startTimeoutMs = Math.min(3_600_000, Math.max(START_FLOOR, startPeriodMs + failureThreshold * intervalMs + timeoutMs));
  return { exec, intervalMs, timeoutMs, startPeriodMs, startTimeoutMs, failureThreshold };
}

function testCommand(f: Findings, at: Path, t: unknown): string[] | null {
  if (t === undefined) {
    f.unsupported(at, 'a healthcheck without `test` keeps the image\'s HEALTHCHECK, which Outpost does not read: give the test');
    return null;
  }
  if (typeof t === 'string') return t.trim() ? ['/bin/sh', '-c', t] : (f.invalid(at, 'an empty test'), null);
  if (!Array.isArray(t) || t.length === 0 || !t.every((x) => typeof x === 'string' || typeof x === 'number')) {
    f.invalid(at, 'test is a string or a list ["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"]');
    return null;
  }
  const [kind, ...rest] = t.map(String);
  if (kind === 'NONE') return null;
  if (kind === 'CMD' && rest.length > 0 && rest.every((x) => x !== '')) return rest;
  if (kind === 'CMD-SHELL' && rest.length === 1 && rest[0]!.trim()) return ['/bin/sh', '-c', rest[0]!];
  f.invalid(at, 'test is ["CMD", program, args...], ["CMD-SHELL", "command"] or ["NONE"]');
  return null;
}

export type Condition = 'started' | 'healthy';

export function convertDependsOn(f: Findings, path: Path, raw: unknown): Record<string, Condition> {
  const out: Record<string, Condition> = {};
  if (Array.isArray(raw)) {
    raw.forEach((s, i) => {
      if (typeof s !== 'string') f.invalid([...path, i], 'depends_on lists service names');
      else out[s] = 'started';
    });
    return out;
  }
  if (!raw || typeof raw !== 'object') {
    f.invalid(path, 'depends_on is a list of services or a mapping of service to condition');
    return out;
  }
  for (const [svc, v] of Object.entries(raw as Record<string, unknown>)) {
    const at = [...path, svc];
    const o = (v ?? {}) as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['condition', 'restart', 'required'].includes(k) && !k.startsWith('x-')) f.invalid([...at, k], `unknown field "${k}" of depends_on`);
    if (o.restart !== undefined) {
      const r = parseBool(o.restart);
      if (!r.ok) f.invalid([...at, 'restart'], r.why);
      // a replica's containers stop, restart and update as one group (runner.ts, the Docker driver's remove)
      else if (r.value) f.note([...at, 'restart'], 'changed', `honoured, as always in Outpost: when ${svc} stops or is updated, the whole replica (this container with it) is restarted or replaced`);
      else f.note([...at, 'restart'], 'changed', `\`restart: false\` is not applied: when ${svc} stops or is updated, the whole replica (this container with it) is restarted or replaced`);
    }
    if (o.required !== undefined && !(parseBool(o.required) as { value?: boolean }).value) {
      f.note([...at, 'required'], 'changed', '`required: false` is not applied: the dependency is required');
    }
    switch (o.condition ?? 'service_started') {
      case 'service_started':
        out[svc] = 'started';
        break;
      case 'service_healthy':
        out[svc] = 'healthy';
        break;
      case 'service_completed_successfully':
        f.unsupported([...at, 'condition'], 'service_completed_successfully is not supported: Outpost\'s containers are long-running (a container that exits is restarted); run one-off set-up in the image or the command');
        break;
      default:
        f.invalid([...at, 'condition'], 'condition is service_started, service_healthy or service_completed_successfully');
    }
  }
  return out;
}
