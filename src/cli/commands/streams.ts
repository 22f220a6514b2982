// outpost streams | outpost stream NAME: the data hubs' results, as the control plane holds them.
import type { ApiClient } from '../../contract/client.js';
import { table } from '../output.js';

export async function streams(client: ApiClient, json: boolean): Promise<void> {
  const rows = await client.streams();
  if (json) return void console.log(JSON.stringify(rows, null, 2));
  if (rows.length === 0) return void console.log('no streams yet: declare one in an app manifest (streams:) and publish to a node\'s hub');
  const n = (x: number | null | undefined) => (x === null || x === undefined ? '-' : String(x));
  console.log(table(['STREAM', 'NODE', 'POINTS IN', 'BYTES IN', 'REJECTED', 'WINDOWS HELD', 'LAST END', 'HUB FWD BYTES', 'REDUCTION', 'QUEUE', 'OLDEST UNSENT'], rows.map((r) => [
    r.stream, r.node, n(r.pointsIn), n(r.bytesIn), n(r.rejected), String(r.windows), r.lastEnd ? new Date(r.lastEnd).toISOString() : '-',
    n(r.hub?.bytesForwarded), r.hub?.reduction ? `${r.hub.reduction}x` : '-', n(r.hub?.queueDepth), r.hub?.oldestUnsentMs ? `${Math.round(r.hub.oldestUnsentMs / 1000)} s` : '-',
  ])));
}

export async function stream(client: ApiClient, name: string, o: { node?: string; from?: string; to?: string; limit?: string; json?: boolean }): Promise<void> {
  // an empty flag is no flag; anything else goes as Number() reads it (the server names a bad one)
  const num = (s: string | undefined) => (s === undefined || s === '' ? undefined : Number(s));
  const rows = await client.streamWindows(name, { node: o.node, from: num(o.from), to: num(o.to), limit: num(o.limit) });
  if (o.json) return void console.log(JSON.stringify(rows, null, 2));
  if (rows.length === 0) return void console.log(`no windows of "${name}" held${o.node ? ` from ${o.node}` : ''}`);
  const ops = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => !['node', 'stream', 'start', 'end'].includes(k));
  const f = (x: unknown) => (typeof x === 'number' ? String(Math.round(x * 1e6) / 1e6) : x === null || x === undefined ? '-' : String(x));
  console.log(table(['NODE', 'START', 'END', ...ops.map((o) => o.toUpperCase())], rows.map((r) => [String(r.node), new Date(Number(r.start)).toISOString(), new Date(Number(r.end)).toISOString(), ...ops.map((k) => f(r[k]))])));
}
