// outpost token create | list | revoke, node approve | revoke | rm, device create | list | rm
import { OutpostError } from '../../core/errors.js';
import type { ApiClient } from '../../contract/client.js';
import type { JoinTokenView } from '../../contract/api.js';
import { printJson, table } from '../output.js';

const when = (ms: number | null) => (ms === null ? 'never' : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z'));

export interface TokenFlags {
  ttl: string;
  uses: string;
  site?: string;
  labels?: string;
  note?: string;
  json?: boolean;
}

function parseLabels(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (s ?? '').split(',').filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new OutpostError('E_USAGE', `--labels takes k=v,k=v, got "${part}"`, { path: 'labels' });
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

export async function tokenCreate(client: ApiClient, f: TokenFlags): Promise<void> {
  const uses = Number(f.uses);
  if (!Number.isInteger(uses) || uses < 1) throw new OutpostError('E_USAGE', `--uses must be a whole number of at least 1, got "${f.uses}"`, { path: 'uses' });
  const t = await client.createToken({ ttl: f.ttl, uses, site: f.site, labels: parseLabels(f.labels), note: f.note });
  if (f.json) return printJson(t);
  // the token alone on stdout, so that `outpost token create > token` just works; the rest on stderr
  console.log(t.token);
  console.error(`join token ${t.id}: ${t.uses} use(s), expires ${when(t.expiresAt)}${t.site ? `, site ${t.site}` : ''}. It is shown once: give it to the agent by file (--join-token-file) or OUTPOST_JOIN_TOKEN, never on a command line.`);
}

export async function tokenList(client: ApiClient, json: boolean): Promise<void> {
  const list = await client.tokens();
  if (json) return printJson(list);
  const state = (t: JoinTokenView) => (t.revokedAt !== null ? 'revoked' : t.expiresAt !== null && t.expiresAt <= Date.now() ? 'expired' : t.uses !== null && t.used >= t.uses ? 'used up' : 'valid');
  console.log(table(['ID', 'STATE', 'USED', 'EXPIRES', 'SITE', 'LABELS', 'NOTE'], list.map((t) => [t.id, state(t), `${t.used}/${t.uses ?? 'any'}`, when(t.expiresAt), t.site,
    Object.entries(t.labels).map(([k, v]) => `${k}=${v}`).join(',') || null, t.note || null])));
}

export async function tokenRevoke(client: ApiClient, id: string): Promise<void> {
  await client.revokeToken(id);
  console.log(`join token ${id} revoked: no node can enrol with it any more (nodes that did keep their certificates)`);
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
