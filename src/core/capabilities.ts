// Who may do what, in one table: every API route -> the capability it needs
// and where its target (an app, a site, ...) is found; every role -> its
// capabilities; and the checks built on them. Pure: the HTTP layer
// (src/server/http.ts) asks, this answers.
import { OutpostError } from './errors.js';
import type { Role } from './types.js';

export const CAPABILITIES = [
  'app:read', 'app:deploy', 'app:remove', 'app:logs', 'app:exec',
  'node:read', 'node:write', 'site:read', 'site:write', 'stream:read', 'cluster:read',
  'device:read', 'device:write', 'token:read', 'token:write',
  'secret:read', 'secret:write', 'audit:read', 'backup:read', 'self:read', 'metrics:read', 'event:read',
] as const;
export type Capability = (typeof CAPABILITIES)[number];

export const ROLE_NAMES: readonly Role[] = ['admin', 'operator', 'deployer', 'viewer', 'device-admin'];

const READ: Capability[] = ['app:read', 'node:read', 'site:read', 'stream:read', 'cluster:read', 'self:read', 'metrics:read', 'event:read'];

/** Each role's capabilities. Join tokens are `token:*` too: one lets a node enrol and receive workloads (and their secrets), so only admins make them. */
export const ROLES: Record<Role, readonly Capability[]> = {
  admin: CAPABILITIES,
  // runs the fleet: reads everything but tokens and backups (secrets: their names, never values)
  operator: [...READ, 'app:deploy', 'app:remove', 'app:logs', 'app:exec', 'node:write', 'site:write', 'device:read', 'secret:read', 'audit:read'],
  deployer: ['app:read', 'app:deploy', 'app:logs', 'self:read'],
  viewer: READ,
  'device-admin': ['device:read', 'device:write', 'node:read', 'self:read'],
};

const ROLE_SETS = new Map<Role, ReadonlySet<Capability>>(ROLE_NAMES.map((r) => [r, new Set(ROLES[r])]));

export function capabilitiesOf(role: Role): ReadonlySet<Capability> {
  return ROLE_SETS.get(role) ?? new Set();
}

export type TargetKind = 'app' | 'site' | 'node' | 'device' | 'token' | 'secret' | 'stream';

export interface RouteRule {
  /** null: no token needed (the route checks its own credential, or has nothing to hide) */
  cap: Capability | null;
  /** what it acts on, and where the request names it */
  target?: { kind: TargetKind; in: 'params' | 'body' | 'query'; field: string };
  /** a GET that is audited too (it reads something sensitive) */
  audit?: true;
}

const on = (kind: TargetKind, where: 'params' | 'body' | 'query' = 'params', field = 'name') => ({ kind, in: where, field }) as const;

/** Every route of the control plane's API, `METHOD /path` as fastify declares it. A route missing here is refused to everyone but an unscoped admin. */
export const ROUTE_RULES: Record<string, RouteRule> = {
  'GET /healthz': { cap: null },
  // the dashboard's files (it signs in with a token, then calls the API with it)
  'GET /': { cap: null },
  'GET /ui/*': { cap: null },
  'GET /v1/ca': { cap: null },
  'GET /v1/hub-ca': { cap: null },
  'GET /v1/identity/keys': { cap: null },
  'POST /v1/enroll': { cap: null },
  'GET /v1/whoami': { cap: 'self:read' },
  'GET /metrics': { cap: 'metrics:read' },

  'GET /v1/apps': { cap: 'app:read' },
  'POST /v1/apps': { cap: 'app:deploy', target: on('app', 'body') },
  'GET /v1/apps/:name': { cap: 'app:read', target: on('app') },
  'DELETE /v1/apps/:name': { cap: 'app:remove', target: on('app') },
  'POST /v1/apps/:name/undo': { cap: 'app:deploy', target: on('app') },
  'GET /v1/apps/:name/replicas': { cap: 'app:read', target: on('app') },
  'GET /v1/apps/:name/endpoints': { cap: 'app:read', target: on('app') },
  'GET /v1/apps/:name/demand': { cap: 'app:read', target: on('app') },
  'GET /v1/apps/:name/autopilot': { cap: 'app:read', target: on('app') },
  'GET /v1/apps/:name/logs': { cap: 'app:logs', target: on('app'), audit: true },
  // a refused exec is audited as it is answered; a session, when it ends (with its command and exit status)
  'GET /v1/apps/:name/exec': { cap: 'app:exec', target: on('app'), audit: true },
  'GET /v1/replicas': { cap: 'app:read' },
  'GET /v1/model': { cap: 'app:read' },

  'GET /v1/nodes': { cap: 'node:read' },
  'GET /v1/nodes/:name': { cap: 'node:read', target: on('node') },
  'PUT /v1/nodes/:name/rtt': { cap: 'node:write', target: on('node') },
  'POST /v1/nodes/:name/approve': { cap: 'node:write', target: on('node') },
  'POST /v1/nodes/:name/revoke': { cap: 'node:write', target: on('node') },
  'DELETE /v1/nodes/:name': { cap: 'node:write', target: on('node') },

  'GET /v1/sites': { cap: 'site:read' },
  'POST /v1/sites': { cap: 'site:write', target: on('site', 'body') },
  'DELETE /v1/sites/:name': { cap: 'site:write', target: on('site') },

  'GET /v1/streams': { cap: 'stream:read' },
  'GET /v1/streams/:name': { cap: 'stream:read', target: on('stream') },
  'GET /v1/cluster': { cap: 'cluster:read' },

  'GET /v1/devices': { cap: 'device:read' },
  'POST /v1/devices': { cap: 'device:write', target: on('device', 'body') },
  'DELETE /v1/devices/:name': { cap: 'device:write', target: on('device') },

  'GET /v1/tokens': { cap: 'token:read' },
  'POST /v1/tokens': { cap: 'token:write' },
  'DELETE /v1/tokens/:id': { cap: 'token:write', target: on('token', 'params', 'id') },
  'GET /v1/apitokens': { cap: 'token:read' },
  'POST /v1/apitokens': { cap: 'token:write', target: on('token', 'body') },
  'DELETE /v1/apitokens/:id': { cap: 'token:write', target: on('token', 'params', 'id') },

  'GET /v1/secrets': { cap: 'secret:read' },
  'PUT /v1/secrets/:name': { cap: 'secret:write', target: on('secret') },
  'DELETE /v1/secrets/:name': { cap: 'secret:write', target: on('secret') },
  'POST /v1/secrets/rotate-key': { cap: 'secret:write' },

  'GET /v1/audit': { cap: 'audit:read' },
  // scoped tokens see node events and their own apps' events only (routes/events.ts)
  'GET /v1/events': { cap: 'event:read' },
  'GET /v1/events/stream': { cap: 'event:read' },
  'GET /v1/backup': { cap: 'backup:read', audit: true },
};

/** The rule of a route (`url` as fastify declares it); HEAD is GET's. */
export function ruleFor(method: string, url: string): RouteRule | undefined {
  return ROUTE_RULES[`${method === 'HEAD' ? 'GET' : method} ${url}`];
}

/** Whether a call to this route goes to the audit log once answered (refusals always do). */
export function audited(method: string, rule: RouteRule | undefined): boolean {
  return (method !== 'GET' && method !== 'HEAD') || rule?.audit === true;
}

/** Who calls: an API token's id, name, role and scopes. */
export interface Principal {
  /** the token's id */
  id: string;
  name: string;
  role: Role;
  /** glob patterns, comma-separated (`shop-*,edge-a`), of the apps and sites its targeted calls may act on; null: all */
  apps: string | null;
  sites: string | null;
  /** epoch ms; null: never */
  expiresAt: number | null;
}

/** The target a request names, found where its rule says (null: none, or not a string). */
export function targetOf(rule: RouteRule | undefined, req: { params?: unknown; body?: unknown; query?: unknown }): string | null {
  const t = rule?.target;
  if (!t) return null;
  const from = req[t.in];
  const v = from && typeof from === 'object' ? (from as Record<string, unknown>)[t.field] : undefined;
  return typeof v === 'string' ? v : null;
}

/** Whether the role allows the route at all (before its target is known): null, or the refusal. */
export function refuseRole(p: Principal, rule: RouteRule | undefined, route: string): OutpostError | null {
  if (!rule) {
    if (p.role === 'admin' && p.apps === null && p.sites === null) return null;
    return new OutpostError('E_FORBIDDEN', `${route} is not in the capability table: only an unscoped admin token may call it`);
  }
  if (rule.cap === null || capabilitiesOf(p.role).has(rule.cap)) return null;
  return new OutpostError('E_FORBIDDEN', `token ${p.id} (${p.name}, role ${p.role}) lacks ${rule.cap}, which ${route} needs`, { details: { capability: rule.cap } });
}

/** Whether the token's scope covers the route's target: null, or the refusal. Scopes limit app- and site-targeted calls; list routes are not filtered. */
export function refuseScope(p: Principal, rule: RouteRule | undefined, target: string | null): OutpostError | null {
  const kind = rule?.target?.kind;
  const pattern = kind === 'app' ? p.apps : kind === 'site' ? p.sites : null;
  if (pattern === null || !rule || rule.cap === null) return null;
  if (target !== null && globMatches(pattern, target)) return null;
  const what = target === null ? `a ${kind} it cannot name (none given)` : `${kind} ${target}`;
  return new OutpostError('E_FORBIDDEN', `token ${p.id} (${p.name}) may use ${rule.cap} only on ${kind}s matching ${pattern}, not on ${what}`, { details: { capability: rule.cap, target } });
}

// ---- scope patterns ---------------------------------------------------------

const GLOB_RE = /^[a-z0-9*-]{1,63}$/;

/** A scope pattern, checked: comma-separated globs of [a-z0-9-] and `*` (any run of characters). */
export function validatePattern(s: unknown, path: string): string {
  const parts = typeof s === 'string' ? s.split(',').map((x) => x.trim()) : [];
  if (!parts.length || parts.length > 32 || parts.some((p) => !GLOB_RE.test(p))) {
    throw new OutpostError('E_INVALID', `${path} must be comma-separated globs of a-z, 0-9, - and * (e.g. shop-*), got ${JSON.stringify(s)}`, { path });
  }
  return parts.join(',');
}

const compiled = new Map<string, RegExp>();

function globRe(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(`^(?:${pattern.split(',').map((g) => g.split('*').map((x) => x.replace(/-/g, '\\-')).join('.*')).join('|')})$`);
    if (compiled.size > 1000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}

export function globMatches(pattern: string, name: string): boolean {
  return globRe(pattern).test(name);
}

/**
 * Whether every name `inner` matches, `outer` matches too (null: everything).
 * Sound for these globs: an outer glob that matches the inner one's text, its
 * `*`s read as characters, matches every name the inner one does (literals
 * never match a `*`, so each inner `*` falls inside an outer `*`).
 */
export function patternCovers(outer: string | null, inner: string | null): boolean {
  if (outer === null) return true;
  if (inner === null) return false;
  return inner.split(',').every((g) => globMatches(outer, g));
}

/** Why a token with `next`'s rights would have more than `p`, or null when it would not. */
export function strongerThan(next: Omit<Principal, 'id' | 'name'>, p: Principal): string | null {
  const mine = capabilitiesOf(p.role);
  const more = ROLES[next.role].filter((c) => !mine.has(c));
  if (more.length) return `role ${next.role} has ${more.join(', ')}, which token ${p.id} (role ${p.role}) lacks`;
  if (!patternCovers(p.apps, next.apps)) return `apps ${next.apps ?? '(all)'} reach beyond token ${p.id}'s apps ${p.apps}`;
  if (!patternCovers(p.sites, next.sites)) return `sites ${next.sites ?? '(all)'} reach beyond token ${p.id}'s sites ${p.sites}`;
  if (p.expiresAt !== null && (next.expiresAt === null || next.expiresAt > p.expiresAt)) return `it would outlive token ${p.id}, which expires at ${new Date(p.expiresAt).toISOString()}`;
  return null;
}
