// outpost streams | outpost stream NAME: the data hubs' results, as the control plane holds them.
import type { Client } from '../client.js';
import type { StreamRow } from '../../core/types.js';
import { table } from '../output.js';

export async function streams(client: Client, json: boolean): Promise<void> {
  const rows = await client.request<StreamRow[]>('GET', '/v1/streams');
  if (json) return void console.log(JSON.stringify(rows, null, 2));
  if (rows.length === 0) return void console.log('no streams yet: declare one in an app manifest (streams:) and publish to a node\'s hub');
  const n = (x: number | null | undefined) => (x === null || x === undefined ? '-' : String(x));
  console.log(table(['STREAM', 'NODE', 'POINTS IN', 'BYTES IN', 'REJECTED', 'WINDOWS HELD', 'LAST END', 'HUB FWD BYTES', 'REDUCTION', 'QUEUE', 'OLDEST UNSENT'], rows.map((r) => [
    r.stream, r.node, n(r.pointsIn), n(r.bytesIn), n(r.rejected), String(r.windows), r.lastEnd ? new Date(r.lastEnd).toISOString() : '-',
    n(r.hub?.bytesForwarded), r.hub?.reduction ? `${r.hub.reduction}x` : '-', n(r.hub?.queueDepth), r.hub?.oldestUnsentMs ? `${Math.round(r.hub.oldestUnsentMs / 1000)} s` : '-',
  ])));
}

export async function stream(client: Client, name: string, o: { node?: string; from?: string; to?: string; limit?: string; json?: boolean }): Promise<void> {
  const q = new URLSearchParams();
  for (const k of ['node', 'from', 'to', 'limit'] as const) if (o[k] !== undefined) q.set(k, o[k]!);
  const rows = await client.request<Record<string, number | string | null>[]>('GET', `/v1/streams/${encodeURIComponent(name)}${q.size ? `?${q}` : ''}`);
  if (o.json) return void console.log(JSON.stringify(rows, null, 2));
  if (rows.length === 0) return void console.log(`no windows of "${name}" held${o.node ? ` from ${o.node}` : ''}`);
  const ops = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => !['node', 'stream', 'start', 'end'].includes(k));
  const f = (x: unknown) => (typeof x === 'number' ? String(Math.round(x * 1e6) / 1e6) : x === null || x === undefined ? '-' : String(x));
  console.log(table(['NODE', 'START', 'END', ...ops.map((o) => o.toUpperCase())], rows.map((r) => [String(r.node), new Date(Number(r.start)).toISOString(), new Date(Number(r.end)).toISOString(), ...ops.map((k) => f(r[k]))])));
}
