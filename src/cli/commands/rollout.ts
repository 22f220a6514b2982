// outpost rollout history APP | outpost rollout undo APP
import type { ApiClient } from '../../contract/client.js';
import { ago, printJson, table } from '../output.js';
import { waitRollout } from './deploy.js';

export async function history(client: ApiClient, app: string, json: boolean): Promise<void> {
  const a = await client.app(app);
  if (json) return printJson({ rollout: a.rollout, history: a.history });
  console.log(table(['REVISION', 'SPEC', 'STATUS', 'DEPLOYED'], a.history.map((h) => [h.revision, h.specHash, h.status, `${ago(h.at)} ago`])));
  if (a.rollout) console.log(`\nrollout: revision ${a.rollout.revision} ${a.rollout.status}${a.rollout.message ? ` (${a.rollout.message})` : ''}`);
}

export async function undo(client: ApiClient, app: string, wait: boolean): Promise<void> {
  const r = await client.undo(app);
  console.log(`${app}: rolling back to the previous good spec as revision ${r.revision}`);
  if (wait) await waitRollout(client, app, 300_000, (s) => console.log(s));
}
