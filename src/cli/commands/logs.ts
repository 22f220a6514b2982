// outpost logs APP [--follow]: output fetched through the agents' own connections.
import { OutpostError } from '../../core/errors.js';
import { readAll, type Client } from '../client.js';

export async function logs(client: Client, app: string, follow: boolean, tail: number): Promise<void> {
  const res = await client.raw('GET', `/v1/apps/${encodeURIComponent(app)}/logs?follow=${follow ? 1 : 0}&tail=${tail}`);
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) {
    let body: { error?: { code: 'E_NOT_FOUND'; message: string } } | null = null;
    try { body = JSON.parse(await readAll(res)); } catch { /* not JSON: the status says it */ }
    throw new OutpostError(body?.error?.code ?? 'E_INTERNAL', body?.error?.message ?? `HTTP ${status}`);
  }
  for await (const chunk of res) process.stdout.write(chunk as Buffer);
}
