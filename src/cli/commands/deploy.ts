// outpost deploy -f APP.yaml [--wait] [--pin]: send the manifest (with --pin,
// its image tag resolved to the registry's digest first; its configs' files
// read into their content), then (with --wait) follow every new replica's
// phases until each is ready or failed. A Compose file (top-level
// `services:`) is converted first, its `build:` images built and pushed.
import fs from 'node:fs';
import { OutpostError } from '../../core/errors.js';
import type { AppDetail, ReplicaRecord } from '../../contract/api.js';
import type { ApiClient } from '../../contract/client.js';
import { bytes, ms, printJson } from '../output.js';
import { isComposeText } from '../../compose/detect.js';

export function readManifestText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new OutpostError('E_USAGE', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export interface DeployOptions {
  wait?: boolean;
  json?: boolean;
  timeout?: number;
  quiet?: boolean;
  pin?: boolean;
  registryAuth?: string;
  /** Compose files only: */
  envFile?: string;
  name?: string;
  registry?: string;
}

/**
 * The manifest goes to the control plane as the text it is: the server parses
 * and validates it (errors name the line or the field, as they would here), and
 * the CLI loads no YAML parser or schema, a third of its start-up.
 * Only a Compose file, or configs with a `file`, make the CLI parse it.
 */
export async function deploy(client: ApiClient, file: string, opts: DeployOptions): Promise<ReplicaRecord[]> {
  const say = (s: string) => { if (!opts.json && !opts.quiet) process.stdout.write(s + '\n'); };
  let text = readManifestText(file);
  let pinned: { from: string; to: string } | undefined;
  if (opts.pin) {
    if (isComposeText(text)) throw new OutpostError('E_USAGE', '--pin pins a single-image manifest; for a Compose file, pin each image in the file (image: name:tag@sha256:...)');
    refuseComposeFlags(file, opts);
    const p = await (await import('./pin.js')).pinManifest(text, { registryAuth: opts.registryAuth });
    text = p.text;
    pinned = { from: p.from, to: p.to };
    say(p.from === p.to ? `${p.from} is pinned already` : `pinned ${p.from} to ${p.to}`);
  }
  const body = await manifestBody(file, text, { ...opts, say, build: true });
  const ans = typeof body === 'string' ? await client.deploy(body, { contentType: 'application/yaml' }) : await client.deploy(body);
  say(ans.changed ? `deployed ${ans.app}: ${ans.replicas.length} replica(s)${ans.removed.length ? `, replacing ${ans.removed.length}` : ''}` : `${ans.app} is unchanged`);
  // what does not stop a deploy (an override matching no node, a volume left behind on another node)
  if (!opts.json) for (const w of ans.plan?.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
  let final = ans.replicas;
  if (opts.wait) final = await waitRollout(client, ans.app, (opts.timeout ?? 300) * 1000, opts.json || opts.quiet ? () => {} : say);
  if (opts.json) printJson({ ...ans, replicas: final, ...(pinned ? { pinned } : {}) });
  return final;
}

/**
 * What a file becomes for the control plane (deploy sends it, plan plans it):
 * a Compose file converted (with `build`, its images built and pushed), an
 * Outpost manifest as its text, or with its configs' files read into their
 * content.
 */
export async function manifestBody(file: string, text: string, opts: DeployOptions & { say: (s: string) => void; build: boolean }): Promise<string | object> {
  if (isComposeText(text)) return (await import('./compose.js')).composeApp(file, opts);
  refuseComposeFlags(file, opts);
  return mayHaveConfigFiles(text) ? (await import('./configfiles.js')).withConfigFiles(text, file) ?? text : text;
}

function refuseComposeFlags(file: string, opts: DeployOptions): void {
  const composeOnly = (['envFile', 'name', 'registry'] as const).filter((k) => opts[k] !== undefined);
  if (composeOnly.length) throw new OutpostError('E_USAGE', `${composeOnly.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}: for Compose files only, and ${file} is an Outpost manifest (no top-level services:)`);
}

/** A cheap look at the text: most manifests have no config file to read, and go as they are. */
function mayHaveConfigFiles(text: string): boolean {
  return /configs/.test(text) && /\bfile\b/.test(text);
}

/**
 * Follows the rollout to its end, printing each replica's phases: done when
 * every replica runs the new revision and is ready; an error when the new
 * revision failed and was rolled back (E_ROLLED_BACK) or failed with nothing
 * to go back to.
 */
export async function waitRollout(client: ApiClient, app: string, timeoutMs: number, say: (s: string) => void): Promise<ReplicaRecord[]> {
  const last = new Map<string, string>();
  const deadline = Date.now() + timeoutMs;
  let target: number | null = null;
  let version: string | null = null;
  for (;;) {
    // after the first look, each request waits at the server for the next change
    const waitMs = Math.max(1, Math.min(5000, deadline - Date.now()));
    const a: AppDetail = await client.app(app, version === null ? {} : { after: version, waitMs });
    // a control plane from before long polls answers at once with no version: poll it
    if ((a.version as string | undefined) === undefined) await new Promise((r) => setTimeout(r, 100));
    version = a.version ?? null;
    target ??= a.revision;
    for (const r of a.replicas) {
      const line = phaseLine(r);
      if (last.get(r.id) !== line) {
        last.set(r.id, line);
        say(line);
      }
    }
    const ro = a.rollout;
    const fresh = a.replicas.filter((r) => r.specHash === a.specHash);
    if (ro && ro.revision !== target && ro.status === 'rolled-back') throw new OutpostError('E_ROLLED_BACK', ro.message ?? `revision ${target} was rolled back`);
    if (ro?.status === 'failed') {
      const f = fresh.find((r) => r.state === 'failed') ?? fresh.find((r) => r.lastExit);
      const code = ((f?.error ?? f?.lastExit)?.code ?? 'E_INTERNAL') as 'E_EXITED';
      throw new OutpostError(code, `revision ${ro.revision} failed: ${ro.message ?? 'see outpost replicas'}`);
    }
    if ((!ro || ro.status === 'complete') && fresh.length === a.replicas.length && fresh.every((r) => r.state === 'running')) return fresh;
    if (Date.now() > deadline) throw new OutpostError('E_HEALTH_TIMEOUT', `the rollout of ${app} did not finish within ${timeoutMs / 1000} s`);
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
