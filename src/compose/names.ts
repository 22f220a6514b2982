// The names a service is reached by besides its service name: a
// `container_name`, its network's `aliases`, and the aliases `links` give it,
// all Outpost container aliases (DNS names on the replica's network, one
// network per app, so every alias is app-wide); and `hostname`, the name the
// container sees itself by. Pure.
import { HOSTNAME_RE } from '../core/containers.js';
import { NAME_RE } from '../core/names.js';
import type { Ctx } from './context.js';
import type { Condition } from './health.js';
import type { Path } from './tree.js';
import { stringOrList } from './values.js';

/** An alias a field gives to a service (`target`: the service reached by it). */
export interface AliasOut {
  name: string;
  target: string;
  path: Path;
}

function aliasName(ctx: Ctx, at: Path, what: string, v: unknown): string | null {
  if (typeof v !== 'string' || v === '') {
    ctx.f.invalid(at, `${what} is a name`);
    return null;
  }
  if (NAME_RE.test(v)) return v;
  ctx.f.unsupported(at, `${what} "${v}" cannot be a name on the app's network: Outpost's aliases are 1-63 of [a-z0-9-], starting and ending with a letter or digit`);
  return null;
}

export function containerName(ctx: Ctx, at: Path, service: string, v: unknown, aliases: AliasOut[]): void {
  if (v === service) return ctx.f.note(at, 'ignored', '`container_name` is ignored: the app\'s other containers reach this one by its service name, which is the same');
  const name = aliasName(ctx, at, 'container_name', v);
  if (name === null) return;
  aliases.push({ name, target: service, path: at });
  ctx.f.note(at, 'changed', `the app's other containers reach this one as "${name}" (an alias on the app's network) and as "${service}"; the engine names the container outpost-<replica id>-${service}`);
}

export function hostName(ctx: Ctx, at: Path, v: unknown): string | undefined {
  if (typeof v !== 'string' || !HOSTNAME_RE.test(v)) {
    ctx.f.invalid(at, `"${String(v)}" is not a host name Outpost takes (DNS labels of [A-Za-z0-9-] joined by dots, at most 63 characters)`);
    return undefined;
  }
  return v;
}

/** `networks: { NET: { aliases: [...] } }` */
export function networkAliases(ctx: Ctx, at: Path, service: string, v: unknown, aliases: AliasOut[]): void {
  const r = stringOrList(v);
  if (!r.ok) return ctx.f.invalid(at, r.why);
  r.value.forEach((a, i) => {
    const name = aliasName(ctx, [...at, i], 'the alias', a);
    if (name !== null && name !== service) aliases.push({ name, target: service, path: [...at, i] });
  });
}

/** `links: [svc, svc:alias]`: each orders the start as depends_on does; an alias reaches the linked service from every container of the app. */
export function links(ctx: Ctx, at: Path, v: unknown, deps: Record<string, Condition>, aliases: AliasOut[]): void {
  const r = stringOrList(v);
  if (!r.ok) return ctx.f.invalid(at, r.why);
  r.value.forEach((l, i) => {
    const [svc, alias] = l.split(':') as [string, string?];
    deps[svc] ??= 'started';
    if (alias === undefined || alias === svc) return;
    const name = aliasName(ctx, [...at, i], 'the link alias', alias);
    if (name === null) return;
    aliases.push({ name, target: svc, path: [...at, i] });
    ctx.f.note([...at, i], 'changed', `"${name}" reaches ${svc} from every container of the app, not only from this one (an alias on the app's network)`);
  });
  ctx.f.note(at, 'ignored', 'links are not needed to reach a service by its name: the app\'s containers reach each other by service name (each link still orders the start, as depends_on)');
}

/**
 * Gives each service the aliases found for it. A name reaches one service:
 * an alias that is another service's name, or that two fields give to two
 * services, is refused where it is written.
 */
export function assignAliases(ctx: Ctx, outs: { container: { name: string; aliases?: string[] } }[], found: AliasOut[]): void {
  const by = new Map(outs.map((o) => [o.container.name, o.container]));
  const owner = new Map<string, string>();
  for (const a of found) {
    const target = by.get(a.target);
    // a link to a service that is not there: depends_on's check names it
    if (!target) continue;
    if (by.has(a.name)) {
      ctx.f.invalid(a.path, `"${a.name}" is the name of the service ${a.name}: it cannot also reach ${a.target}`);
      continue;
    }
    const had = owner.get(a.name);
    if (had !== undefined && had !== a.target) {
      ctx.f.unsupported(a.path, `"${a.name}" reaches ${had} elsewhere in the file: on the app's one network a name reaches one service`);
      continue;
    }
    owner.set(a.name, a.target);
    target.aliases = [...new Set([...(target.aliases ?? []), a.name])];
  }
}
