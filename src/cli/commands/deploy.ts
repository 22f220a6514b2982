// outpost deploy -f APP.yaml [--wait]: send the manifest, then (with --wait)
// follow every new replica's phases until each is ready or failed.
import fs from 'node:fs';
import { OutpostError } from '../../core/errors.js';
import { parseManifestText, validateApp } from '../../core/manifest.js';
import type { ReplicaRecord } from '../../core/types.js';
import type { Client } from '../client.js';
import { bytes, ms, printJson } from '../output.js';

export interface DeployAnswer {
  app: string;
  changed: boolean;
  removed: string[];
  replicas: ReplicaRecord[];
}

export function readManifest(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new OutpostError('E_USAGE', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const doc = parseManifestText(text);
  // validate here too, so a bad file fails before any network call, with its path
  validateApp(doc);
  return doc;
}

export async function deploy(client: Client, file: string, opts: { wait?: boolean; json?: boolean; timeout?: number; quiet?: boolean }): Promise<ReplicaRecord[]> {
  const manifest = readManifest(file);
  const ans = await client.request<DeployAnswer>('POST', '/v1/apps', manifest);
  const say = (s: string) => { if (!opts.json && !opts.quiet) process.stdout.write(s + '\n'); };
  say(ans.changed ? `deployed ${ans.app}: ${ans.replicas.length} replica(s)${ans.removed.length ? `, replacing ${ans.removed.length}` : ''}` : `${ans.app} is unchanged`);
  let final = ans.replicas;
  if (opts.wait) final = await waitReady(client, ans.app, ans.replicas.map((r) => r.id), (opts.timeout ?? 300) * 1000, opts.json || opts.quiet ? () => {} : say);
  if (opts.json) printJson({ ...ans, replicas: final });
  const failed = final.filter((r) => r.state === 'failed');
  if (opts.wait && failed.length > 0) {
    const f = failed[0]!;
    throw new OutpostError((f.error?.code as 'E_EXITED') ?? 'E_INTERNAL', `${failed.length} replica(s) failed; ${f.id}: ${f.error?.message ?? 'failed'}`);
  }
  return final;
}

/** Polls until every listed replica is running or failed, printing each phase change. */
export async function waitReady(client: Client, app: string, ids: string[], timeoutMs: number, say: (s: string) => void): Promise<ReplicaRecord[]> {
  const last = new Map<string, string>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all = await client.request<ReplicaRecord[]>('GET', `/v1/apps/${app}/replicas`);
    const mine = all.filter((r) => ids.includes(r.id));
    for (const r of mine) {
      const line = phaseLine(r);
      if (last.get(r.id) !== line) {
        last.set(r.id, line);
        say(line);
      }
    }
    if (mine.length < ids.length) throw new OutpostError('E_CONFLICT', `replicas of ${app} were replaced or removed while waiting (another deploy or rm?)`);
    if (mine.every((r) => r.state === 'running' || r.state === 'failed')) return mine;
    if (Date.now() > deadline) throw new OutpostError('E_HEALTH_TIMEOUT', `not every replica of ${app} was ready within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function phaseLine(r: ReplicaRecord): string {
  const head = `${r.id} @ ${r.node}`;
  switch (r.state) {
    case 'pulling': {
      const p = r.progress;
      // round to whole MB so the line changes as a pull advances, not on every byte
      const got = p ? bytes(Math.floor(p.bytes / 1048576) * 1048576) : '';
      if (p?.status && !p.total) return `${head}  pulling  ${p.status}`;
      return `${head}  pulling  ${p ? `${got} / ${bytes(p.total)}` : ''}`.trimEnd();
    }
    case 'running': {
      const m = r.measured;
      return `${head}  ready    ${r.endpoint ?? ''}  (image ${ms(m.imageMs)}, container ${ms(m.containerMs)}, engine ${ms(m.engineMs)})`;
    }
    case 'failed':
      return `${head}  failed   ${r.error ? `${r.error.code}: ${r.error.message}` : ''}`;
    default:
      return `${head}  ${r.state}`;
  }
}
