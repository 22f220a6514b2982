// What digest a registry holds for a tag, through the Registry HTTP API v2
// (GET /v2/<name>/manifests/<tag>): the digest of the manifest bytes it sends,
// computed here; a Docker-Content-Digest header that says otherwise is
// refused. Authentication as registries ask for it: a 401 with
// `WWW-Authenticate: Bearer realm=...` sends us for a token (with the
// credential, if any), `Basic` takes the credential itself.
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { createHash } from 'node:crypto';
import { OutpostError, errorMessage } from '../core/errors.js';
import type { ImageRef } from '../core/imageref.js';
import type { RegistryAuth, RegistryCredential } from './auth.js';

/** Manifests and indexes, OCI and Docker: a multi-platform image is pinned by its index, and each node pulls its platform. */
const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

const MAX_MANIFEST_BYTES = 4 * 1048576;
const TIMEOUT_MS = 30_000;

export interface ResolveOptions {
  auth?: RegistryAuth | null;
  /** registries (host:port) that may answer in plain HTTP besides loopback ones */
  insecure?: readonly string[];
  /** where engines keep per-registry CAs (`<dir>/<host:port>/*.crt`); the CLI trusts the same */
  certDirs?: readonly string[];
}

export const CERT_DIRS = ['/etc/containers/certs.d', '/etc/docker/certs.d'];

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

/** The digest (`sha256:...`) the registry holds for `ref`'s tag (`latest` when it names none). */
export async function resolveDigest(ref: ImageRef, o: ResolveOptions = {}): Promise<string> {
  const host = ref.registry === 'docker.io' ? 'registry-1.docker.io' : ref.registry;
  const tag = ref.tag ?? 'latest';
  const cred = o.auth?.forRegistry(ref.registry) ?? null;
  const base = await pickBase(host, o);
  const url = `${base.origin}/v2/${ref.path}/manifests/${encodeURIComponent(tag)}`;
  let a = await get(url, { accept: ACCEPT }, base.ca);
  if (a.status === 401) {
    const authorization = await answerChallenge(String(a.headers['www-authenticate'] ?? ''), cred, ref, base.ca);
    if (authorization) a = await get(url, { accept: ACCEPT, authorization }, base.ca);
  }
  const what = `${ref.name}:${tag}`;
  if (a.status === 401 || a.status === 403) {
    throw new OutpostError('E_UNAUTHORIZED', `the registry ${ref.registry} refused ${cred ? 'the credential in ' + o.auth!.file : 'an anonymous request'} for ${what} (HTTP ${a.status})${cred ? '' : '; give one with --registry-auth FILE'}`);
  }
  if (a.status === 404) throw new OutpostError('E_IMAGE_NOT_FOUND', `the registry ${ref.registry} has no ${what}`);
  if (a.status !== 200) throw new OutpostError('E_PULL_FAILED', `the registry ${ref.registry} answered HTTP ${a.status} for ${what}`);
  const digest = `sha256:${createHash('sha256').update(a.body).digest('hex')}`;
  const said = String(a.headers['docker-content-digest'] ?? '');
  if (said.startsWith('sha256:') && said !== digest) {
    throw new OutpostError('E_DIGEST_MISMATCH', `the registry ${ref.registry} says ${what} is ${said}, but the manifest it sent is ${digest}`);
  }
  return digest;
}

function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}

/** Extra CAs the engines trust for this registry, or undefined for the defaults (which include NODE_EXTRA_CA_CERTS). */
function registryCa(host: string, dirs: readonly string[]): string[] | undefined {
  const extra: string[] = [];
  for (const d of dirs) {
    const dir = path.join(d, host);
    let files: string[] = [];
    try { files = fs.readdirSync(dir).filter((f) => f.endsWith('.crt')); } catch { continue; }
    for (const f of files) extra.push(fs.readFileSync(path.join(dir, f), 'utf8'));
  }
  return extra.length ? [...tls.rootCertificates, ...extra] : undefined;
}

/**
 * HTTPS, verified. A loopback registry or one listed as insecure may speak
 * plain HTTP instead (as engines allow for them): only when its port does not
 * speak TLS at all, never after a certificate was refused.
 */
async function pickBase(host: string, o: ResolveOptions): Promise<{ origin: string; ca?: string[] }> {
  const ca = registryCa(host, o.certDirs ?? CERT_DIRS);
  const secure = { origin: `https://${host}`, ca };
  if (!isLoopback(host) && !(o.insecure ?? []).includes(host)) return secure;
  try {
    await get(`${secure.origin}/v2/`, {}, ca);
    return secure;
  } catch (e) {
    if (e instanceof OutpostError && e.code === 'E_TLS') throw e;
    return { origin: `http://${host}` };
  }
}

async function answerChallenge(challenge: string, cred: RegistryCredential | null, ref: ImageRef, ca?: string[]): Promise<string | undefined> {
  const scheme = challenge.split(' ', 1)[0]!.toLowerCase();
  if (scheme === 'basic') return cred && 'username' in cred ? basic(cred) : undefined;
  if (scheme !== 'bearer') return undefined;
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
  if (!params.realm) throw new OutpostError('E_PULL_FAILED', `the registry ${ref.registry} asked for a token without saying where to get it: ${challenge}`);
  const u = new URL(params.realm);
  if (params.service) u.searchParams.set('service', params.service);
  u.searchParams.set('scope', params.scope ?? `repository:${ref.path}:pull`);
  const headers: Record<string, string> = {};
  if (cred && 'username' in cred) headers.authorization = basic(cred);
  // an identity token is exchanged with an OAuth2 POST; a GET with it as a refresh token is not understood everywhere, so it goes unsent here
  const a = await get(u.toString(), headers, ca);
  if (a.status !== 200) return undefined;
  try {
    const j = JSON.parse(a.body.toString('utf8')) as { token?: string; access_token?: string };
    const token = j.token ?? j.access_token;
    return token ? `Bearer ${token}` : undefined;
  } catch {
    return undefined;
  }
}

function basic(c: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

function get(url: string, headers: Record<string, string | undefined>, ca?: string[]): Promise<Answer> {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  const h = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Record<string, string>;
  return new Promise((resolve, reject) => {
    const req = lib.request(u, { method: 'GET', headers: h, timeout: TIMEOUT_MS, ...(ca && u.protocol === 'https:' ? { ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > MAX_MANIFEST_BYTES) { req.destroy(new Error(`more than ${MAX_MANIFEST_BYTES} bytes`)); return; }
        chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (e: NodeJS.ErrnoException) => reject(requestError(u, e)));
    req.end();
  });
}

const CERT_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH/;

function requestError(u: URL, e: NodeJS.ErrnoException): OutpostError {
  if (CERT_ERRORS.test(e.code ?? '')) {
    return new OutpostError('E_TLS', `the registry at ${u.host} presented a certificate this machine does not trust (${e.code}); put its CA in ${CERT_DIRS[0]}/${u.host}/ca.crt or NODE_EXTRA_CA_CERTS`);
  }
  return new OutpostError('E_PULL_FAILED', `cannot reach the registry at ${u.origin}: ${errorMessage(e)}`);
}
