// outpost convert -f docker-compose.yml, and the Compose half of `deploy -f`:
// the file becomes one Outpost app (src/compose); its notes go to stderr,
// each with the file's line. Loaded only for a Compose file (it brings the
// YAML parser, the schema and, with build:, the engine's client).
import YAML from 'yaml';
import { loadCompose } from '../../compose/load.js';
import { where, type Note } from '../../compose/findings.js';
import type { Conversion } from '../../compose/convert.js';
import { readEnv } from '../../env.js';
import { printJson } from '../output.js';

export interface ComposeOptions {
  envFile?: string;
  name?: string;
  registry?: string;
  registryAuth?: string;
}

export function noteLine(file: string, n: Note): string {
  return `${where(file, n)}: ${n.kind}: ${n.message}`;
}

function printNotes(file: string, notes: Note[]): void {
  for (const n of notes) process.stderr.write(`note ${noteLine(file, n)}\n`);
}

const registryOf = (o: ComposeOptions) => o.registry || readEnv('OUTPOST_REGISTRY') || undefined;

export function convertFile(file: string, o: ComposeOptions & { json?: boolean }): void {
  const conv = loadCompose({ file, envFile: o.envFile, name: o.name, registry: registryOf(o) });
  // the YAML carries the notes as comments: on a terminal, once is enough
  if (o.json || !process.stdout.isTTY) printNotes(file, conv.notes);
  if (o.json) return printJson(conv.app);
  process.stdout.write(manifestYaml(file, conv));
}

/** The manifest as YAML, the notes above it as comments: a file worth keeping. */
export function manifestYaml(file: string, conv: Conversion): string {
  const head = [`# converted from ${file} by outpost convert`, ...conv.notes.map((n) => `# ${noteLine(file, n)}`)];
  return `${head.join('\n')}\n${YAML.stringify(conv.app, { lineWidth: 0 })}`;
}

/**
 * The app to deploy: converted, with every `build:` built and pushed and its
 * image named. Without `build` (plan), a built service keeps the provisional
 * image the conversion names, and a note says so.
 */
export async function composeApp(file: string, o: ComposeOptions & { quiet?: boolean; say: (s: string) => void; build: boolean }): Promise<Record<string, unknown>> {
  const registry = registryOf(o);
  const conv = loadCompose({ file, envFile: o.envFile, name: o.name, registry });
  if (!o.quiet) printNotes(file, conv.notes);
  if (conv.builds.length === 0) return conv.app;
  if (!o.build) {
    if (!o.quiet) process.stderr.write(`note: ${conv.builds.map((b) => b.service).join(', ')} ${conv.builds.length > 1 ? 'are' : 'is'} built by deploy, not by plan: planned with the image named in the manifest, which no node has yet\n`);
    return conv.app;
  }
  const { buildAndPush } = await import('../../compose/build.js');
  const refs = await buildAndPush(conv.builds, { app: String(conv.app.name), registry, registryAuth: o.registryAuth ?? readEnv('OUTPOST_REGISTRY_AUTH'), say: o.say });
  const containers = (conv.app.containers as { name: string; image: string }[]).map((c) => (refs.has(c.name) ? { ...c, image: refs.get(c.name)! } : c));
  return { ...conv.app, containers };
}
