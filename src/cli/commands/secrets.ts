// outpost secret set | list | rm | rotate-key
import fs from 'node:fs';
import { OutpostError } from '../../core/errors.js';
import type { ApiClient } from '../../contract/client.js';
import { printJson, table } from '../output.js';

export interface SetFlags {
  fromFile?: string;
  fromLiteral?: string;
  json?: boolean;
}

/** The value from a file, the command line, or stdin (not a terminal: a value typed there would be echoed). */
async function readValue(f: SetFlags): Promise<Buffer> {
  if (f.fromFile !== undefined && f.fromLiteral !== undefined) throw new OutpostError('E_USAGE', 'give one of --from-file and --from-literal (or the value on stdin)', { path: 'from-file' });
  if (f.fromFile !== undefined) {
    try {
      return fs.readFileSync(f.fromFile);
    } catch (e) {
      throw new OutpostError('E_USAGE', `cannot read ${f.fromFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { path: 'from-file' });
    }
  }
  if (f.fromLiteral !== undefined) return Buffer.from(f.fromLiteral, 'utf8');
  if (process.stdin.isTTY) throw new OutpostError('E_USAGE', 'give the value with --from-file FILE, --from-literal VALUE, or on stdin (`... | outpost secret set NAME`)', { path: 'from-file' });
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function secretSet(client: ApiClient, name: string, f: SetFlags): Promise<void> {
  const r = await client.setSecret(name, await readValue(f));
  if (f.json) return printJson(r);
  console.log(`secret ${name} is at version ${r.secret.version}${r.redeployed.length ? `; rolling ${r.redeployed.join(', ')}` : ''}`);
}

export async function secretList(client: ApiClient, json: boolean): Promise<void> {
  const list = await client.secrets();
  if (json) return printJson(list);
  if (list.length === 0) return console.log('no secrets; add one with `outpost secret set NAME --from-file FILE`');
  console.log(table(['SECRET', 'VERSION', 'UPDATED', 'USED BY'], list.map((s) => [s.name, s.version, new Date(s.updatedAt).toISOString(), s.apps.join(', ') || null])));
}

export async function secretRm(client: ApiClient, name: string): Promise<void> {
  await client.removeSecret(name);
  console.log(`secret ${name} removed`);
}

export async function secretRotateKey(client: ApiClient, json: boolean): Promise<void> {
  const r = await client.rotateSecretsKey();
  if (json) return printJson(r);
  console.log(`envelope key rotated: ${r.secrets} secret(s) re-encrypted under key ${r.keyId}`);
}
