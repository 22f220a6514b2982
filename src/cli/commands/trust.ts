// outpost token create | list | revoke (join tokens and API tokens), whoami,
// node approve | revoke | rm, device create | list | rm
import { OutpostError } from '../../core/errors.js';
import type { ApiClient } from '../../contract/client.js';
import type { ApiTokenView, JoinTokenView, Role } from '../../contract/api.js';
import { printJson, table } from '../output.js';

const when = (ms: number | null) => (ms === null ? 'never' : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z'));

export interface TokenFlags {
  ttl: string;
  uses: string;
  site?: string;
  labels?: string;
  note?: string;
  json?: boolean;
  /** an API token: its role, name and scopes */
  role?: string;
  name?: string;
  apps?: string;
  sites?: string;
}

/** The flags that belong to one kind of token only, and which were typed (`typed`: commander's source is the command line). */
const JOIN_ONLY = ['uses', 'site', 'labels', 'note'] as const;
const API_ONLY = ['name', 'apps', 'sites'] as const;

function parseLabels(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (s ?? '').split(',').filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new OutpostError('E_USAGE', `--labels takes k=v,k=v, got "${part}"`, { path: 'labels' });
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/** `token create`: with --role an API token, else a join token as before. `typed` says which flags were given (--ttl has a join token's default). */
export async function tokenCreate(client: ApiClient, f: TokenFlags, typed: (flag: string) => boolean = () => true): Promise<void> {
  if (f.role !== undefined) {
    const wrong = JOIN_ONLY.filter((k) => typed(k));
    if (wrong.length) throw new OutpostError('E_USAGE', `--${wrong.join(', --')} ${wrong.length > 1 ? 'are' : 'is'} for join tokens; an API token (--role) takes --name, --apps, --sites, --ttl`, { path: wrong[0] });
    if (!f.name) throw new OutpostError('E_USAGE', 'an API token needs --name (whose it is: the audit log names it)', { path: 'name' });
    return apiTokenCreate(client, { name: f.name, role: f.role as Role, apps: f.apps, sites: f.sites, ttl: typed('ttl') ? f.ttl : undefined }, !!f.json);
  }
  const wrong = API_ONLY.filter((k) => f[k] !== undefined);
  if (wrong.length) throw new OutpostError('E_USAGE', `--${wrong.join(', --')} ${wrong.length > 1 ? 'are' : 'is'} for API tokens: add --role ROLE`, { path: wrong[0] });
  const uses = Number(f.uses);
  if (!Number.isInteger(uses) || uses < 1) throw new OutpostError('E_USAGE', `--uses must be a whole number of at least 1, got "${f.uses}"`, { path: 'uses' });
  const t = await client.createToken({ ttl: f.ttl, uses, site: f.site, labels: parseLabels(f.labels), note: f.note });
  if (f.json) return printJson(t);
  // the token alone on stdout, so that `outpost token create > token` just works; the rest on stderr
  console.log(t.token);
  console.error(`join token ${t.id}: ${t.uses} use(s), expires ${when(t.expiresAt)}${t.site ? `, site ${t.site}` : ''}. It is shown once: give it to the agent by file (--join-token-file) or OUTPOST_JOIN_TOKEN, never on a command line.`);
}

async function apiTokenCreate(client: ApiClient, body: { name: string; role: Role; apps?: string; sites?: string; ttl?: string }, json: boolean): Promise<void> {
  const t = await client.createApiToken(body);
  if (json) return printJson(t);
  console.log(t.token);
  console.error(`API token ${t.id} (${t.name}): role ${t.role}${scope(t) ? `, ${scope(t)}` : ''}, expires ${when(t.expiresAt)}. It is shown once: give it to its holder as OUTPOST_TOKEN (by file or a secret store, never on a command line).`);
}

const scope = (t: { apps: string | null; sites: string | null }) => [t.apps !== null ? `apps ${t.apps}` : '', t.sites !== null ? `sites ${t.sites}` : ''].filter(Boolean).join(' ');
const expired = (t: { revokedAt: number | null; expiresAt: number | null }) => (t.revokedAt !== null ? 'revoked' : t.expiresAt !== null && t.expiresAt <= Date.now() ? 'expired' : null);

/** Join tokens and API tokens, one list (`kind`: join or api). */
export async function tokenList(client: ApiClient, json: boolean): Promise<void> {
  const [join, api] = await Promise.all([client.tokens(), client.apiTokens()]);
  if (json) return printJson([...join.map((t) => ({ kind: 'join', ...t })), ...api.map((t) => ({ kind: 'api', ...t }))]);
  const joinState = (t: JoinTokenView) => expired(t) ?? (t.uses !== null && t.used >= t.uses ? 'used up' : 'valid');
  const joinRow = (t: JoinTokenView) => [t.id, 'join', joinState(t), when(t.expiresAt), t.note || null,
    [`used ${t.used}/${t.uses ?? 'any'}`, t.site ? `site ${t.site}` : '', Object.entries(t.labels).map(([k, v]) => `${k}=${v}`).join(',')].filter(Boolean).join(' ')];
  const apiRow = (t: ApiTokenView) => [t.id, 'api', expired(t) ?? 'valid', when(t.expiresAt), t.name, [`role ${t.role}`, scope(t)].filter(Boolean).join(' ')];
  console.log(table(['ID', 'KIND', 'STATE', 'EXPIRES', 'NAME / NOTE', 'ROLE, SCOPE / USES, SITE, LABELS'], [...join.map(joinRow), ...api.map(apiRow)]));
}

/** Revokes a join token or an API token (`opt_...`) by its id. */
export async function tokenRevoke(client: ApiClient, id: string): Promise<void> {
  if (id.startsWith('opt_')) {
    const t = await client.revokeApiToken(id);
    console.log(`API token ${id} (${t.name}) revoked: every call with it is refused from now on`);
    return;
  }
  await client.revokeToken(id);
  console.log(`join token ${id} revoked: no node can enrol with it any more (nodes that did keep their certificates)`);
}

export async function whoami(client: ApiClient, json: boolean): Promise<void> {
  const w = await client.whoami();
  if (json) return printJson(w);
  console.log(`${w.id} (${w.name}): role ${w.role}${scope(w) ? `, ${scope(w)}` : ''}, expires ${when(w.expiresAt)}`);
  console.log(`may: ${w.capabilities.join(' ')}`);
}

export async function nodeApprove(client: ApiClient, name: string): Promise<void> {
  await client.approveNode(name);
  console.log(`node ${name} approved: it takes replicas from now on`);
}

export async function nodeRevoke(client: ApiClient, name: string): Promise<void> {
  await client.revokeNode(name);
  console.log(`node ${name} revoked: its connection is closed, its certificate refused, and its replicas move to other nodes. \`outpost node rm ${name}\` forgets it once they have.`);
}

export async function nodeRm(client: ApiClient, name: string): Promise<void> {
  await client.removeNode(name);
  console.log(`node ${name} removed; the name can enrol again with a join token`);
}

export async function deviceCreate(client: ApiClient, name: string, f: { streams: string; site?: string; json?: boolean }): Promise<void> {
  const d = await client.createDevice({ name, streams: f.streams.split(',').map((x) => x.trim()).filter(Boolean), site: f.site });
  if (f.json) return printJson(d);
  console.log(`device ${d.name}: streams ${d.streams.join(', ')}; ${d.site ? `the hubs of site ${d.site} accept` : 'every hub accepts'} it now`);
  console.log(`  MQTT:  -u ${d.name} -P ${d.secret}`);
  console.log(`  HTTP:  Authorization: Bearer ${d.bearer}`);
  console.error('The secret is shown once; the control plane and the hubs keep only its hash.');
  console.error('Hubs on TLS are verified with the hub CA: `outpost device ca > hub-ca.crt`.');
}

export async function deviceCa(client: ApiClient): Promise<void> {
  process.stdout.write(await client.hubCa());
}

export async function deviceList(client: ApiClient, json: boolean): Promise<void> {
  const list = await client.devices();
  if (json) return printJson(list);
  console.log(table(['DEVICE', 'STREAMS', 'SITE', 'CREATED'], list.map((d) => [d.name, d.streams.join(','), d.site ?? 'every hub', when(d.createdAt)])));
}

export async function deviceRm(client: ApiClient, name: string): Promise<void> {
  await client.removeDevice(name);
  console.log(`device ${name} removed: the hubs disconnect it and refuse its secret`);
}
