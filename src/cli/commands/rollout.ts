// outpost rollout history APP | outpost rollout undo APP
import type { Client } from '../client.js';
import { ago, printJson, table } from '../output.js';
import { waitRollout } from './deploy.js';
import type { AppView } from '../../core/types.js';

export async function history(client: Client, app: string, json: boolean): Promise<void> {
  const a = await client.request<AppView>('GET', `/v1/apps/${encodeURIComponent(app)}`);
  if (json) return printJson({ rollout: a.rollout, history: a.history });
  console.log(table(['REVISION', 'SPEC', 'STATUS', 'DEPLOYED'], a.history.map((h) => [h.revision, h.specHash, h.status, `${ago(h.at)} ago`])));
  if (a.rollout) console.log(`\nrollout: revision ${a.rollout.revision} ${a.rollout.status}${a.rollout.message ? ` (${a.rollout.message})` : ''}`);
}

export async function undo(client: Client, app: string, wait: boolean): Promise<void> {
  const r = await client.request<{ revision: number }>('POST', `/v1/apps/${encodeURIComponent(app)}/undo`);
  console.log(`${app}: rolling back to the previous good spec as revision ${r.revision}`);
  if (wait) await waitRollout(client, app, 300_000, (s) => console.log(s));
}
