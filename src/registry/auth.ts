// Registry credentials from a Docker-style auth file (what `docker login` and
// `podman login --authfile` write): {"auths": {"host[:port]": {"auth":
// base64("user:password")}}}. The agent sends them on pulls (X-Registry-Auth),
// `outpost deploy --pin` to the registry's API. The file holds passwords: one
// that others could read is refused, not used.
import fs from 'node:fs';
import { OutpostError } from '../core/errors.js';

export type RegistryCredential =
  | { username: string; password: string }
  /** an OAuth refresh token some registries hand out instead of a password */
  | { identitytoken: string };

export interface RegistryAuth {
  readonly file: string;
  /** the credential for a registry (`host[:port]`, `docker.io`), or null */
  forRegistry(registry: string): RegistryCredential | null;
}

/** Reads and checks the file: it must be the user's own (mode 0600 or stricter) and hold an `auths` map. */
export function readRegistryAuth(file: string): RegistryAuth {
  let st: fs.Stats;
  let text: string;
  try {
    st = fs.statSync(file);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new OutpostError('E_USAGE', `cannot read the registry auth file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new OutpostError('E_USAGE', `the registry auth file ${file} can be read by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); it holds passwords: chmod 600 ${file}`);
  }
  const creds = parseAuths(text, file);
  return { file, forRegistry: (registry) => creds.get(registryKey(registry)) ?? null };
}

/** The registry a key of `auths` names, spelt as an image reference spells it (Docker Hub's several names are docker.io). */
export function registryKey(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  return ['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'].includes(host) ? 'docker.io' : host;
}

function parseAuths(text: string, file: string): Map<string, RegistryCredential> {
  const bad = (why: string) => new OutpostError('E_USAGE', `the registry auth file ${file} ${why}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw bad(`is not valid JSON: ${(e as Error).message}`);
  }
  const auths = (doc as { auths?: unknown } | null)?.auths;
  if (!auths || typeof auths !== 'object' || Array.isArray(auths)) throw bad('has no "auths" map ({"auths": {"host:port": {"auth": "base64(user:password)"}}})');
  const out = new Map<string, RegistryCredential>();
  for (const [key, v] of Object.entries(auths as Record<string, unknown>)) {
    const e = (v ?? {}) as { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown };
    if (typeof e.identitytoken === 'string' && e.identitytoken) {
      out.set(registryKey(key), { identitytoken: e.identitytoken });
    } else if (typeof e.auth === 'string' && e.auth) {
      const plain = Buffer.from(e.auth, 'base64').toString('utf8');
      const i = plain.indexOf(':');
      if (i <= 0) throw bad(`has an "auth" for ${key} that is not base64 of user:password`);
      out.set(registryKey(key), { username: plain.slice(0, i), password: plain.slice(i + 1) });
    } else if (typeof e.username === 'string' && typeof e.password === 'string') {
      out.set(registryKey(key), { username: e.username, password: e.password });
    } else {
      throw bad(`has no "auth" (or username and password) for ${key}`);
    }
  }
  return out;
}
