// The control plane's certificate authority and serving certificate, kept in
// the data dir:
//
//   ca.crt            the CA clients trust for this server (the CLI reads it)
//   tls/ca.key        the CA's key (0600): it signs node certificates
//   tls/ca.crt        the CA's certificate
//   tls/server.{crt,key}  the serving certificate, re-issued when it nears its
//                     end or the names it must cover change
//   hub-ca.crt        the CA devices trust for the nodes' data hubs
//   tls/hub-ca.{key,crt}  that CA: it signs the hubs' serving certificates,
//                     and only them (a node names its own addresses, so its
//                     certificate must never pass for the control plane's)
//
// Each CA is made once: the first process to link its files into place wins,
// and any other (a second instance starting at the same moment) reads those.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { caFingerprint, createAuthority, issueServerCert, loadAuthority, type Authority } from '../../trust/pki.js';
import { OutpostError } from '../../core/errors.js';

export interface TlsMaterial {
  /** the CA that signs node certificates (always Outpost's own) */
  ca: Authority;
  /** the serving certificate chain and key, PEM */
  cert: string;
  key: string;
  /** the CA clients must trust for the serving certificate (ours, or the operator's --tls-ca) */
  trustPem: string;
  /** sha256 of trustPem's certificates: what join tokens carry */
  fingerprint: string;
  /** the CA of the nodes' hubs' serving certificates (devices trust it) */
  hubCa: Authority;
  /** the keys of TLS session tickets, kept across restarts so a fleet reconnecting resumes its sessions */
  ticketKeys: Buffer;
}

export interface TlsOptions {
  /** names and addresses the server is reached at (added to localhost and this host's own) */
  sans?: string[];
  /** an operator's serving certificate and key, and the CA that signed it */
  certFile?: string;
  keyFile?: string;
  caFile?: string;
  now?: number;
}

const SERVER_TTL_MS = 365 * 86_400_000;
/** a serving certificate with less than this left is re-issued at start (and by the daily check) */
const RENEW_BEFORE_MS = 30 * 86_400_000;

function writePrivate(p: string, data: string): void {
  const tmp = `${p}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode: 0o600 });
  fs.renameSync(tmp, p);
}

/** Creates the CA unless it exists; safe against a second process doing the same at the same time. */
async function loadOrCreateCa(dir: string, now: number, base = 'ca'): Promise<Authority> {
  const certP = path.join(dir, `${base}.crt`);
  const keyP = path.join(dir, `${base}.key`);
  if (!fs.existsSync(certP)) {
    const ca = await createAuthority(`outpost-${base}-${os.hostname()}`, now);
    // a name of its own per attempt: two openings in one process must not share temporary files
    const tag = randomBytes(6).toString('hex');
    const tmpKey = `${keyP}.${tag}.tmp`;
    const tmpCert = `${certP}.${tag}.tmp`;
    fs.writeFileSync(tmpKey, ca.keyPem, { mode: 0o600 });
    fs.writeFileSync(tmpCert, ca.certPem, { mode: 0o644 });
    try {
      // the key first: a reader that sees ca.crt finds its key beside it
      fs.linkSync(tmpKey, keyP);
      fs.linkSync(tmpCert, certP);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // another process is making it: its certificate follows its key within moments
      for (let i = 0; i < 100 && !fs.existsSync(certP); i++) await new Promise((r) => setTimeout(r, 50));
      if (!fs.existsSync(certP)) throw new OutpostError('E_USAGE', `${keyP} exists without ${certP}: a CA creation was interrupted; remove ${keyP} (nothing can have been signed with it) and start again`);
    } finally {
      fs.rmSync(tmpKey, { force: true });
      fs.rmSync(tmpCert, { force: true });
    }
  }
  return loadAuthority(fs.readFileSync(certP, 'utf8'), fs.readFileSync(keyP, 'utf8'));
}

/** The DNS names and IPs a serving certificate covers: localhost, this host, the listen address, every interface's address when it listens on all. */
export function serverNames(host: string, extra: string[] = []): { dns: string[]; ip: string[] } {
  const all = ['localhost', os.hostname(), '127.0.0.1', '::1', ...extra];
  if (host === '0.0.0.0' || host === '::') {
    for (const addrs of Object.values(os.networkInterfaces())) for (const a of addrs ?? []) all.push(a.address.split('%')[0]!);
  } else {
    all.push(host);
  }
  const uniq = [...new Set(all.filter(Boolean))];
  return { dns: uniq.filter((s) => !isIP(s)), ip: uniq.filter((s) => isIP(s)) };
}

function covers(certPem: string, names: { dns: string[]; ip: string[] }, now: number): boolean {
  const c = new X509Certificate(certPem);
  if (Date.parse(c.validTo) - now < RENEW_BEFORE_MS) return false;
  const san = c.subjectAltName ?? '';
  return names.dns.every((d) => san.includes(`DNS:${d}`)) && names.ip.every((ip) => c.checkIP(ip) !== undefined);
}

export async function openTls(dataDir: string, host: string, o: TlsOptions = {}): Promise<TlsMaterial> {
  const now = o.now ?? Date.now();
  const dir = path.join(dataDir, 'tls');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = await loadOrCreateCa(dir, now);
  const hubCa = await loadOrCreateCa(dir, now, 'hub-ca');
  let cert: string;
  let key: string;
  let trustPem: string;
  if (o.certFile || o.keyFile) {
    if (!o.certFile || !o.keyFile) throw new OutpostError('E_USAGE', '--tls-cert and --tls-key go together');
    // agents pin the CA a join token names: it must be the one that signed the operator's certificate
    if (!o.caFile) throw new OutpostError('E_USAGE', '--tls-cert needs --tls-ca, the CA that signed it: agents and the CLI verify the server against it');
    const read = (f: string, flag: string) => {
      try { return fs.readFileSync(f, 'utf8'); } catch (e) { throw new OutpostError('E_USAGE', `${flag} ${f}: ${(e as Error).message}`); }
    };
    cert = read(o.certFile, '--tls-cert');
    key = read(o.keyFile, '--tls-key');
    trustPem = o.caFile ? read(o.caFile, '--tls-ca') : ca.certPem;
  } else {
    const names = serverNames(host, o.sans);
    const certP = path.join(dir, 'server.crt');
    const keyP = path.join(dir, 'server.key');
    if (!fs.existsSync(certP) || !fs.existsSync(keyP) || !covers(fs.readFileSync(certP, 'utf8'), names, now)) {
      const issued = await issueServerCert(ca, names, now, SERVER_TTL_MS);
      writePrivate(keyP, issued.keyPem);
      writePrivate(certP, issued.certPem + ca.certPem);
    }
    cert = fs.readFileSync(certP, 'utf8');
    key = fs.readFileSync(keyP, 'utf8');
    trustPem = ca.certPem;
  }
  // the files the CLI (and an operator handing them to others) reads
  publish(path.join(dataDir, 'ca.crt'), trustPem);
  publish(path.join(dataDir, 'hub-ca.crt'), hubCa.certPem);
  return { ca, hubCa, cert, key, trustPem, fingerprint: caFingerprint(trustPem), ticketKeys: loadOrCreateTicketKeys(path.join(dir, 'ticket.keys')) };
}

function publish(p: string, pem: string): void {
  if (!fs.existsSync(p) || fs.readFileSync(p, 'utf8') !== pem) fs.writeFileSync(p, pem, { mode: 0o644 });
}

/**
 * The 48 bytes that encrypt TLS session tickets, made once. With them a
 * restarted control plane resumes the sessions its agents hold: a reconnect
 * costs a symmetric handshake, not a certificate signature and verification
 * (TLS 1.3 resumption still does an (EC)DHE exchange: forward secrecy stays).
 */
function loadOrCreateTicketKeys(p: string): Buffer {
  try {
    const k = fs.readFileSync(p);
    if (k.length === 48) return k;
  } catch { /* none yet */ }
  const k = randomBytes(48);
  const tmp = `${p}.${randomBytes(6).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, k, { mode: 0o600 });
  fs.renameSync(tmp, p);
  return k;
}
