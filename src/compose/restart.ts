// `restart` and `deploy.restart_policy` of each service, and the one restart
// policy an Outpost app has: the strongest any service gives, and the
// smallest limit on restarts in a row (`on-failure:N`, `max_attempts`), since
// a replica's containers restart together. Pure.
import type { Ctx } from './context.js';
import type { Path } from './tree.js';
import { parseNumber } from './values.js';

export type Policy = 'always' | 'on-failure' | 'never';

export interface RestartOut {
  policy: Policy;
  path: Path;
  /** restarts in a row before giving up, and the field that says so */
  limit?: { n: number; path: Path };
}

const MAX_LIMIT = 1000;
const COUNTING = 'the count starts over once the replica has stayed up 60 s after it was ready (Docker\'s never starts over until the container is started by hand)';

function limit(ctx: Ctx, at: Path, v: unknown): RestartOut['limit'] | null {
  const n = parseNumber(v);
  if (!n.ok || !Number.isInteger(n.value) || n.value < 0) {
    ctx.f.invalid(at, 'the restart limit is a whole number');
    return null;
  }
  if (n.value > MAX_LIMIT) {
    ctx.f.invalid(at, `Outpost takes a limit of at most ${MAX_LIMIT} restarts in a row`);
    return null;
  }
  // 0 is no limit, as Docker reads it
  return n.value > 0 ? { n: n.value, path: at } : null;
}

export function serviceRestart(ctx: Ctx, at: Path, v: unknown): RestartOut | null {
  // `restart: no` unquoted is YAML 1.1's false, as some files are read
  const s = v === false ? 'no' : String(v);
  if (s === 'no') return { policy: 'never', path: at };
  if (s === 'always') return { policy: 'always', path: at };
  if (s === 'unless-stopped') {
    ctx.f.note(at, 'changed', 'unless-stopped is Outpost\'s always: there is no stopping a container by hand');
    return { policy: 'always', path: at };
  }
  const m = /^on-failure(?::(\d+))?$/.exec(s);
  if (m) {
    const l = m[1] !== undefined ? limit(ctx, at, m[1]) : null;
    return { policy: 'on-failure', path: at, ...(l ? { limit: l } : {}) };
  }
  ctx.f.invalid(at, `restart is no, always, on-failure[:N] or unless-stopped (got ${JSON.stringify(v)})`);
  return null;
}

/** `deploy.restart_policy`: condition and max_attempts; delay and window are Outpost's own. */
export function deployRestart(ctx: Ctx, at: Path, v: unknown): RestartOut | null {
  const rp = (v ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(rp)) {
    if (['condition', 'max_attempts'].includes(k) || k.startsWith('x-')) continue;
    if (k === 'delay' || k === 'window') ctx.f.note([...at, k], 'dropped', `restart_policy.${k} is not applied: Outpost restarts with its own exponential back-off, and counts restarts in a row until the replica has stayed up 60 s`);
    else ctx.f.invalid([...at, k], `unknown field "${k}" of restart_policy`);
  }
  const policy = ({ none: 'never', 'on-failure': 'on-failure', any: 'always' } as Record<string, Policy>)[String(rp.condition ?? 'any')];
  if (!policy) {
    ctx.f.invalid([...at, 'condition'], 'condition is none, on-failure or any');
    return null;
  }
  if (rp.max_attempts === undefined) return { policy, path: at };
  if (policy === 'never') {
    ctx.f.note([...at, 'max_attempts'], 'ignored', 'max_attempts limits nothing with condition: none');
    return { policy, path: at };
  }
  const l = limit(ctx, [...at, 'max_attempts'], rp.max_attempts);
  return { policy, path: at, ...(l ? { limit: l } : {}) };
}

const STRENGTH: Record<Policy, number> = { never: 0, 'on-failure': 1, always: 2 };

interface Service {
  container: { name: string };
  restart: RestartOut | null;
}

/** The app's `restart`, or null for Outpost's default (always, no limit). */
export function appRestart(ctx: Ctx, outs: Service[]): { policy: Policy; maxRetries?: number } | null {
  const given = outs.filter((o) => o.restart);
  if (given.length === 0) {
    ctx.f.note(['services'], 'changed', 'no service gives restart: Outpost restarts them always (Compose\'s default is no; balena\'s is always)');
    return null;
  }
  const policy = given.map((o) => o.restart!.policy).reduce((a, b) => (STRENGTH[b] > STRENGTH[a] ? b : a));
  for (const o of outs) {
    if (!o.restart) ctx.f.note(['services', o.container.name], 'changed', `no restart given: the app's policy, ${policy}, applies (Outpost has one per app)`);
    else if (o.restart.policy !== policy) ctx.f.note(o.restart.path, 'changed', `${o.restart.policy} is not applied: Outpost has one restart policy per app, here ${policy}`);
  }
  const limited = policy === 'never' ? [] : given.filter((o) => o.restart!.policy !== 'never' && o.restart!.limit);
  if (limited.length === 0) return { policy };
  const n = Math.min(...limited.map((o) => o.restart!.limit!.n));
  const from = limited.filter((o) => o.restart!.limit!.n === n).map((o) => o.container.name).join(', ');
  for (const o of outs) {
    const own = o.restart?.limit;
    if (own?.n === n) ctx.f.note(own.path, 'changed', `at most ${n} restarts in a row, of the whole replica (its containers restart together); ${COUNTING}`);
    else if (own) ctx.f.note(own.path, 'changed', `the app's limit is ${n} restarts in a row, the smallest a service gives (${from}): Outpost has one restart policy per app; ${COUNTING}`);
    else ctx.f.note(o.restart?.path ?? ['services', o.container.name], 'changed', `no restart limit here: the app's, ${n} restarts in a row (from ${from}), applies to the whole replica`);
  }
  return { policy, maxRetries: n };
}
