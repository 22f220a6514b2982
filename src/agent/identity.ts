// The node's identity on the agent's side: its key (made here, never sent),
// its certificate, and the CA it trusts for the control plane, kept in
// <dir>/identity (0700; the key 0600).
//
// First contact has only the join token, which carries the CA's fingerprint:
// the CA is fetched over an unverified TLS connection and kept only if its
// fingerprint matches, then every request verifies the server against it.
// Enrolment sends a CSR with the join token; a node whose certificate expired
// while it was offline enrols again with a CSR signed by the same key (the
// control plane knows the key), and only falls back to a join token if that
// is refused.
//
// With several control-plane URLs (instances sharing one CA and one store),
// the CA fetch and enrolment go to the next URL when one cannot be reached or
// answers 503; an answer is the control plane's word and is not asked again
// elsewhere. Enrolment may thus be sent twice (as the agent's retry always
// has): for the same name and key the control plane issues a certificate
// again; at worst a join-token use is spent.
import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { isIP } from 'node:net';
import { OutpostError } from '../core/errors.js';
import { errorOf, request } from '../trust/request.js';
import { parseJoinToken } from '../core/jointoken.js';
import { awaitingCert, caFingerprint, importKeyPair, parseCaBundle, makeCsr, newKeyPair, type KeyPair } from '../trust/pki.js';
import type { EnrolAnswer } from '../contract/api.js';
import { ServerUrls } from '../contract/client.js';

export interface Credentials {
  /** PEM: the node's key and certificate, and the CA that signs the server's (TLS) */
  key: string;
  cert: string;
  ca: string | null;
  /** without TLS: the node's secret */
  secret: string | null;
  notBefore: number;
  notAfter: number;
  /** when this node got it, on its own clock (renewal is timed from it) */
  receivedAt: number;
  /** PEM: the data hub's serving certificate (same key), when one was asked for and issued */
  hubCert: string | null;
}

export class NodeIdentityStore {
  private readonly dir: string;
  private kp: KeyPair | null = null;
  creds: Credentials | null = null;

  /**
   * `hubNames`: the names and addresses of this node's data hub, whose
   * serving certificate is asked for with the node's (null: none).
   */
  constructor(agentDir: string, readonly name: string, server: string | readonly string[] | ServerUrls, private readonly joinToken: string | null, readonly hubNames: string[] | null = null) {
    this.dir = path.join(agentDir, 'identity');
    this.servers = server instanceof ServerUrls ? server : new ServerUrls(server);
  }

  /** the control plane's URLs (shared with the agent: the one that answered is the one it dials) */
  readonly servers: ServerUrls;

  /** the URLs are all of one scheme (src/core/settings.ts) */
  get tls(): boolean {
    return this.servers.current.startsWith('https:');
  }

  /**
   * `path` asked of each URL in turn until one answers other than 503 (the
   * last one's answer whatever it is): that URL becomes the current one. A
   * certificate that does not verify is not passed over (E_TLS).
   */
  private async ask<T>(p: string, send: (url: string) => Promise<{ status: number; body: T; text: string }>): Promise<{ status: number; body: T; text: string; server: string }> {
    const order = this.servers.order();
    const tried: string[] = [];
    for (const [i, server] of order.entries()) {
      try {
        const r = await send(server + p);
        if (r.status !== 503 || i === order.length - 1) {
          this.servers.answered(server);
          return { ...r, server };
        }
        tried.push(`${server} (HTTP 503)`);
      } catch (e) {
        if (e instanceof OutpostError) throw e;
        tried.push(`${server} (${(e as Error).message || (e as { code?: string }).code})`);
      }
    }
    throw new OutpostError('E_NO_SERVER', `cannot reach the control plane at ${tried.join(', ')}`);
  }

  private file(f: string): string {
    return path.join(this.dir, f);
  }

  private read(f: string): string | null {
    try { return fs.readFileSync(this.file(f), 'utf8'); } catch { return null; }
  }

  private write(f: string, data: string): void {
    const tmp = `${this.file(f)}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, data, { mode: 0o600 });
    fs.renameSync(tmp, this.file(f));
  }

  /** The node's key: made on first use, never leaves this directory. */
  async key(): Promise<KeyPair> {
    if (this.kp) return this.kp;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(this.dir, 0o700);
    const pem = this.read('node.key');
    this.kp = pem ? await importKeyPair(pem) : await newKeyPair();
    if (!pem) this.write('node.key', this.kp.keyPem);
    return this.kp;
  }

  /** Credentials from disk, when they are for this node and this key. */
  private async loadSaved(): Promise<Credentials | null> {
    const kp = await this.key();
    const cert = this.read('node.crt');
    const secret = this.read('node.secret');
    if (!cert) return null;
    const c = new X509Certificate(cert);
    if (!c.subject.split('\n').includes(`CN=${this.name}`) || !keyMatches(cert, kp)) return null;
    const receivedAt = fs.statSync(this.file('node.crt')).mtimeMs;
    return {
      key: kp.keyPem, cert, ca: this.read('ca.crt'), secret: secret?.trim() || null, notBefore: Date.parse(c.validFrom), notAfter: Date.parse(c.validTo), receivedAt,
      hubCert: this.usableHubCert(this.read('hub.crt'), kp),
    };
  }

  /** A hub certificate worth serving: for this key, in date, covering every name the hub is reached at. */
  private usableHubCert(pem: string | null, kp: KeyPair): string | null {
    if (!pem || !this.hubNames) return null;
    try {
      const c = new X509Certificate(pem);
      if (!keyMatches(pem, kp) || Date.parse(c.validTo) <= Date.now() + 5000) return null;
      return this.hubNames.every((n) => (isIP(n) ? c.checkIP(n) : c.checkHost(n)) !== undefined) ? pem : null;
    } catch {
      return null;
    }
  }

  /** The CA to trust: the saved one, or the server's, checked against the join token's fingerprint. */
  private async trustAnchor(): Promise<string | null> {
    if (!this.tls) return null;
    const saved = this.read('ca.crt');
    if (saved) return saved;
    if (!this.joinToken) throw new OutpostError('E_TOKEN_INVALID', 'no CA to trust for the control plane yet: give a join token (it carries the CA\'s fingerprint)');
    const want = parseJoinToken(this.joinToken).caFingerprint;
    // every instance of one control plane has the same CA: the first that answers gives it
    const r = await this.ask('/v1/ca', (url) => request<string>(url, 'GET', undefined, { verify: false }));
    if (r.status !== 200) throw errorOf(r.status, r.body, `GET /v1/ca answered ${r.status}`);
    // the fingerprint covers the whole bundle: a certificate added to it (a proxy's own CA) changes it
    let certs;
    try { certs = parseCaBundle(r.text); } catch { throw new OutpostError('E_CA_MISMATCH', `${r.server} sent no CA certificate bundle: refusing to talk to it`); }
    const got = caFingerprint(r.text);
    if (got !== want || !certs.every((c) => c.ca)) throw new OutpostError('E_CA_MISMATCH', `the control plane at ${r.server} presents CA ${got.slice(0, 16)}..., not the ${want.slice(0, 16)}... the join token names: refusing to talk to it`);
    const pem = certs.map((c) => c.toString()).join('');
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.write('ca.crt', pem);
    return pem;
  }

  /**
   * Credentials to connect with: the saved ones while they are in date,
   * otherwise a new certificate (with the key, then with the join token).
   */
  async ensure(now = Date.now()): Promise<Credentials> {
    const saved = this.creds ?? (await this.loadSaved());
    // without TLS the node's secret is its credential and does not expire; with TLS a certificate in date is
    if (saved && (this.tls ? saved.notAfter > now + 5000 : saved.secret)) return (this.creds = saved);
    return this.enrol(saved !== null);
  }

  /** Enrols (again): with the key alone when the control plane knows it, else with the join token. */
  async enrol(known: boolean): Promise<Credentials> {
    const kp = await this.key();
    const ca = await this.trustAnchor();
    const csr = await makeCsr(kp, this.name);
    const body = { name: this.name, csr, ...(this.hubNames ? { hub: this.hubNames } : {}) };
    const enrol = (token?: string) => this.ask('/v1/enroll', (url) => request<EnrolAnswer>(url, 'POST', body, { ca, token }));
    let r = known ? await enrol() : null;
    if ((!r || r.status !== 200) && this.joinToken) r = await enrol(this.joinToken);
    if (!r) throw new OutpostError('E_TOKEN_INVALID', 'this node is not enrolled and has no join token (--join-token-file or OUTPOST_JOIN_TOKEN)');
    if (r.status !== 200) throw errorOf(r.status, r.body, `enrolment answered ${r.status}`);
    return this.save(r.body.cert, r.body.secret ?? null, r.body.hubCert);
  }

  /**
   * Keeps a certificate the control plane issued (enrolment or renewal), if
   * it is for this key, and the hub's with it (without a new one the one
   * held stays, while it is usable).
   */
  async save(cert: string, secret: string | null = this.creds?.secret ?? null, hubCert?: string): Promise<Credentials> {
    const kp = await this.key();
    if (!keyMatches(cert, kp)) throw new OutpostError('E_TLS', 'the control plane sent a certificate for another key');
    this.write('node.crt', cert);
    if (secret) this.write('node.secret', secret);
    const fresh = this.usableHubCert(hubCert ?? null, kp);
    if (fresh) this.write('hub.crt', fresh);
    const c = new X509Certificate(cert);
    this.creds = {
      key: kp.keyPem, cert, ca: this.read('ca.crt'), secret, notBefore: Date.parse(c.validFrom), notAfter: Date.parse(c.validTo), receivedAt: Date.now(),
      hubCert: fresh ?? this.usableHubCert(this.creds?.hubCert ?? this.read('hub.crt'), kp),
    };
    return this.creds;
  }

  /** The hub CA (the last certificate of the hub's chain), once a hub certificate is held. */
  hubCa(): string | null {
    const chain = this.creds?.hubCert?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g);
    return chain && chain.length > 1 ? chain[chain.length - 1]! : null;
  }

  /**
   * What the hub starts with: the hub certificate held on disk when it is
   * usable, else one no device trusts until the control plane issues ours.
   */
  async hubTlsAtStart(): Promise<{ cert: string; key: string }> {
    const kp = await this.key();
    const cert = this.usableHubCert(this.read('hub.crt'), kp);
    if (cert) return { cert, key: kp.keyPem };
    const interim = await awaitingCert(this.name);
    return { cert: interim.certPem, key: interim.keyPem };
  }

  /** A CSR for renewal over the live connection (same key). */
  async csr(): Promise<string> {
    return makeCsr(await this.key(), this.name);
  }
}

/** Whether a certificate is for this key pair (its public key is the one node:crypto derives from the private key). */
function keyMatches(cert: string, kp: KeyPair): boolean {
  const mine = createPublicKey(createPrivateKey(kp.keyPem)).export({ type: 'spki', format: 'der' });
  return new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' }).equals(mine);
}
