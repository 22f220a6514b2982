// outpost apps | nodes | replicas | rm
import type { AppView, NodeRecord, ReplicaRecord } from '../../core/types.js';
import { effectiveRtt } from '../../core/live.js';
import type { Client } from '../client.js';
import { ago, ms, printJson, table } from '../output.js';

export async function apps(client: Client, json: boolean): Promise<void> {
  const list = await client.request<AppView[]>('GET', '/v1/apps');
  if (json) return printJson(list);
  console.log(table(['NAME', 'READY', 'IMAGE / COMMAND', 'UPDATED'],
    list.map((a) => [a.name, `${a.running}/${a.replicas}`, a.image ?? a.command?.join(' ') ?? '', ago(a.updatedAt)])));
}

export async function nodes(client: Client, json: boolean): Promise<void> {
  const list = await client.request<NodeRecord[]>('GET', '/v1/nodes');
  if (json) return printJson(list);
  console.log(table(['NAME', 'STATE', 'SITE', 'RUNTIME', 'ARCH', 'CPUS', 'MEMORY', 'ADDRESS', 'RTT TO SITES (ms)', 'LABELS'],
    list.map((n) => [n.name, n.state, n.site, n.runtime, n.arch, n.cpus, `${Math.round(n.memoryMiB / 1024)} GiB`, n.address,
      Object.entries(effectiveRtt(n)).map(([s, v]) => `${s} ${v}`).join(', ') || null,
      Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(',') || null])));
}

export async function replicas(client: Client, app: string | undefined, json: boolean): Promise<void> {
  const list = await client.request<ReplicaRecord[]>('GET', app ? `/v1/apps/${encodeURIComponent(app)}/replicas` : '/v1/replicas');
  if (json) return printJson(list);
  console.log(table(['ID', 'APP', 'NODE', 'STATE', 'ENDPOINT', 'RESTARTS', 'IMAGE', 'CONTAINER', 'ENGINE', 'PREDICTED', 'ERROR'],
    list.map((r) => [r.id, r.app, r.node, r.state, r.endpoint, r.restarts, ms(r.measured.imageMs), ms(r.measured.containerMs), ms(r.measured.engineMs),
      ms(r.predicted.deployMs), r.error ? `${r.error.code}: ${r.error.message}` : r.restarts > 0 && r.lastExit ? `last restart: ${r.lastExit.code}: ${r.lastExit.message}` : null])));
}

export async function rm(client: Client, app: string, json: boolean): Promise<void> {
  const r = await client.request<{ removed: string[] }>('DELETE', `/v1/apps/${encodeURIComponent(app)}`);
  if (json) return printJson({ app, ...r });
  console.log(`removed ${app} (${r.removed.length} replica(s))`);
}
