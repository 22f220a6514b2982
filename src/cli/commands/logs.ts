// outpost logs APP [--follow]: output fetched through the agents' own connections.
import { OutpostError } from '../../core/errors.js';
import type { Client } from '../client.js';

export async function logs(client: Client, app: string, follow: boolean, tail: number): Promise<void> {
  const res = await client.raw('GET', `/v1/apps/${encodeURIComponent(app)}/logs?follow=${follow ? 1 : 0}&tail=${tail}`);
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { error?: { code: 'E_NOT_FOUND'; message: string } } | null;
    throw new OutpostError(body?.error?.code ?? 'E_INTERNAL', body?.error?.message ?? `HTTP ${res.status}`);
  }
  if (!res.body) return;
  for await (const chunk of res.body) process.stdout.write(chunk);
}
