// outpost audit: the audit log, oldest first.
import { parseDuration } from '../../core/jointoken.js';
import { OutpostError } from '../../core/errors.js';
import type { ApiClient } from '../../contract/client.js';
import { printJson, table } from '../output.js';

export async function audit(client: ApiClient, o: { since: string; limit?: string; json?: boolean }): Promise<void> {
  let since: number;
  try {
    since = Date.now() - parseDuration(o.since, 'since');
  } catch {
    since = Date.parse(o.since);
    if (!Number.isFinite(since)) throw new OutpostError('E_USAGE', `--since takes a duration (1h, 7d) or an ISO time, got "${o.since}"`, { path: 'since' });
  }
  const limit = o.limit === undefined ? undefined : Number(o.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) throw new OutpostError('E_USAGE', `--limit must be a whole number of at least 1, got "${o.limit}"`, { path: 'limit' });
  const list = await client.audit({ since, limit });
  if (o.json) return printJson(list);
  console.log(table(['TIME', 'WHO', 'ACTION', 'REQUEST', 'TARGET', 'FROM', 'STATUS'], list.map((e) => [
    new Date(e.at).toISOString().replace(/\.\d+Z$/, 'Z'), `${e.principal.id}${e.principal.name ? ` (${e.principal.name})` : ''}`, e.action,
    // an exec session: where and what ran, and how it ended
    e.exec ? `exec ${e.exec.replica} -- ${clip(e.exec.command.join(' '), 60)}` : e.request, e.target, e.from,
    e.exec ? `${e.status} ${e.exec.exitCode !== null ? `exit ${e.exec.exitCode}` : e.exec.ended}` : e.error ? `${e.status} ${e.error}` : String(e.status),
  ])));
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
