// Real registries for the image-integrity tests: Debian's docker-registry
// (Distribution) over TLS with htpasswd or token authentication, a token
// server, and a registry in the middle that swaps manifests. Podman trusts a
// registry's CA from /etc/containers/certs.d/<host:port>/ (read at each pull;
// registries.conf is read once when its service starts, so plain HTTP on a
// new port is not an option), and so does `outpost deploy --pin`.
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { freePort } from '../src/agent/health.js';
import { tmpDir, waitFor } from './helpers.js';

export const CERTS_D = '/etc/containers/certs.d';

export interface Tls { dir: string; cert: string; key: string }

/** A self-signed certificate for 127.0.0.1 (openssl). */
export function selfSigned(): Tls {
  const dir = tmpDir('outpost-tls-');
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { dir, cert, key };
}

/** Makes the engines (and deploy --pin) trust `tls` for host:port; returns the undo. */
export function trust(hostPort: string, tls: Tls): () => void {
  const d = path.join(CERTS_D, hostPort);
  fs.mkdirSync(d, { recursive: true });
  fs.copyFileSync(tls.cert, path.join(d, 'ca.crt'));
  return () => fs.rmSync(d, { recursive: true, force: true });
}

/** A bcrypt htpasswd line (Distribution takes bcrypt only): htpasswd -B if installed, else Python's crypt (libxcrypt). */
export function bcryptLine(user: string, password: string): string | null {
  const h = spawnSync('htpasswd', ['-nbB', user, password], { encoding: 'utf8' });
  if (h.status === 0) return h.stdout.trim();
  const py = spawnSync('python3', ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))', password], { encoding: 'utf8' });
  const hash = py.stdout?.trim() ?? '';
  return py.status === 0 && hash.startsWith('$2') ? `${user}:${hash}` : null;
}

export interface Registry { hostPort: string; child: ChildProcess; stop: () => Promise<void> }

/** docker-registry over TLS on a free loopback port, with the given `auth:` section (YAML lines). */
export async function startRegistry(tls: Tls, authYaml: string): Promise<Registry> {
  const port = await freePort('127.0.0.1');
  const dir = tmpDir('outpost-registry-');
  const conf = path.join(dir, 'config.yml');
  fs.writeFileSync(conf, [
    'version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${dir}/data`,
    'http:', `  addr: 127.0.0.1:${port}`, '  secret: outpost-test', '  tls:', `    certificate: ${tls.cert}`, `    key: ${tls.key}`,
    authYaml,
  ].join('\n') + '\n');
  const child = spawn('docker-registry', ['serve', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  const hostPort = `127.0.0.1:${port}`;
  await waitFor(`registry on ${hostPort}`, () => new Promise<boolean>((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/v2/', ca: fs.readFileSync(tls.cert) }, (res) => { res.resume(); resolve(true); });
    req.on('error', () => resolve(false));
  }), 15_000, 100).catch((e) => { child.kill(); throw new Error(`${(e as Error).message}\n${err}`); });
  return {
    hostPort, child,
    stop: async () => {
      child.kill();
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A Docker-style token server (what Docker Hub, GHCR and Harbor run): Basic
 * credentials in, an ES256 JWT out, signed with the key whose certificate the
 * registry's `rootcertbundle` holds (sent in the x5c header).
 */
export async function startTokenServer(tls: Tls, o: { user: string; password: string; service: string; issuer: string }): Promise<{ realm: string; requests: string[]; close: () => Promise<void> }> {
  const key = createPrivateKey(fs.readFileSync(tls.key));
  const der = Buffer.from(fs.readFileSync(tls.cert, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');
  const requests: string[] = [];
  const server = https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) }, (req, res) => {
    const u = new URL(req.url ?? '/', 'https://x');
    const got = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
    requests.push(`${u.searchParams.get('scope') ?? ''} ${got ? 'with credentials' : 'anonymous'}`);
    if (got !== `${o.user}:${o.password}`) { res.writeHead(401).end(); return; }
    const access = (u.searchParams.getAll('scope')).map((s) => {
      const [type, name, actions] = s.split(':');
      return { type, name, actions: (actions ?? '').split(',') };
    });
    const now = Math.floor(Date.now() / 1000);
    const head = b64(JSON.stringify({ alg: 'ES256', typ: 'JWT', x5c: [der.toString('base64')] }));
    const body = b64(JSON.stringify({ iss: o.issuer, sub: o.user, aud: o.service, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access }));
    const sig = sign('sha256', Buffer.from(`${head}.${body}`), { key, dsaEncoding: 'ieee-p1363' });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${head}.${body}.${b64(sig)}` }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { realm: `https://127.0.0.1:${port}/token`, requests, close: () => new Promise((r) => server.close(() => r())) };
}

/**
 * A registry in the middle (HTTPS, in front of a plain-HTTP one): for each
 * manifest path in `swap` it sends another manifest's bytes, with whatever
 * Docker-Content-Digest `claim` gives; everything else passes through.
 */
export async function startTamperingRegistry(tls: Tls, upstream: string, swap: Record<string, { serve: string; claim?: string }>): Promise<{ hostPort: string; close: () => Promise<void> }> {
  const server = https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) }, (req, res) => {
    const m = /^\/v2\/(.+)\/manifests\/([^/?]+)$/.exec(req.url ?? '');
    const s = m ? swap[m[2]!] : undefined;
    const upPath = s && m ? `/v2/${m[1]}/manifests/${s.serve}` : req.url;
    const up = http.request(`http://${upstream}${upPath}`, { method: req.method, headers: { accept: req.headers.accept ?? '*/*' } }, (ur) => {
      const headers = { ...ur.headers };
      if (s?.claim) headers['docker-content-digest'] = s.claim;
      res.writeHead(ur.statusCode ?? 502, headers);
      ur.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    up.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { hostPort: `127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

/**
 * Builds `ref` from `from` with a label (a new config, so a new digest), pushes
 * it, and returns the digest the registry holds. Asynchronous: a token server
 * in this process must answer the push.
 */
export async function buildAndPush(ref: string, from: string, label: string, pushArgs: string[] = []): Promise<string> {
  const ctx = tmpDir('outpost-img-');
  fs.writeFileSync(path.join(ctx, 'Containerfile'), `FROM ${from}\nLABEL io.outpost.test=${label}\n`);
  await run('podman', ['build', '--pull=never', '-q', '-t', ref, ctx]);
  const digestFile = path.join(ctx, 'digest');
  await run('podman', ['push', '-q', '--tls-verify=false', '--digestfile', digestFile, ...pushArgs, ref]);
  const digest = fs.readFileSync(digestFile, 'utf8').trim();
  fs.rmSync(ctx, { recursive: true, force: true });
  return digest;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => execFile(cmd, args, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr}`)) : resolve())));
}
