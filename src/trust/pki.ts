// Keys, certificates and certificate requests, with @peculiar/x509 on Node's
// WebCrypto. Every key is ECDSA P-256: small certificates, fast handshakes,
// and fast to generate on a small edge node. Keys travel as PKCS#8 PEM (what
// node:tls takes); nothing here touches files.
// @peculiar/x509 resolves its parts through tsyringe, which needs the Reflect metadata API
import 'reflect-metadata';
import { createHash, webcrypto, X509Certificate as NodeCert } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface KeyPair {
  keys: CryptoKeyPair;
  /** PKCS#8 PEM of the private key */
  keyPem: string;
}

export interface Issued {
  certPem: string;
  serial: string;
  notAfter: number;
  /** sha256 of the subject's public key (SPKI DER), hex: the identity a certificate carries */
  keyId: string;
}

export interface Authority {
  certPem: string;
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

export async function newKeyPair(): Promise<KeyPair> {
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  return { keys, keyPem: pem('PRIVATE KEY', await crypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

/** Reads a PKCS#8 PEM private key back into a key pair (the public half from its certificate or CSR is not needed). */
export async function importKeyPair(keyPem: string): Promise<KeyPair> {
  const der = Buffer.from(keyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const privateKey = await crypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
  // WebCrypto cannot derive a public key from a private one; JWK carries both halves
  const jwk = await crypto.subtle.exportKey('jwk', privateKey);
  const publicKey = await crypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, ALG, true, ['verify']);
  return { keys: { privateKey, publicKey }, keyPem };
}

export function pem(label: string, der: ArrayBuffer | Buffer): string {
  const b64 = Buffer.from(der as ArrayBuffer).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

const BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle; anything else in it (text, keys) is refused. */
export function parseCaBundle(pem: string): NodeCert[] {
  const blocks = pem.match(BLOCK) ?? [];
  if (blocks.length === 0 || pem.replace(BLOCK, '').trim() !== '') throw new Error('not a PEM certificate bundle');
  return blocks.map((b) => new NodeCert(b));
}

/**
 * sha256 over the DER of every certificate of a CA bundle, in order, hex:
 * what a join token carries. It covers the whole bundle, so nothing can be
 * added to it (for one certificate it is that certificate's fingerprint).
 */
export function caFingerprint(pem: string): string {
  const h = createHash('sha256');
  for (const c of parseCaBundle(pem)) h.update(c.raw);
  return h.digest('hex');
}

async function spkiId(key: CryptoKey | x509.PublicKey): Promise<string> {
  const der = key instanceof x509.PublicKey ? key.rawData : await crypto.subtle.exportKey('spki', key);
  return createHash('sha256').update(Buffer.from(der)).digest('hex');
}

/** The key id of a certificate's public key (what `Issued.keyId` holds). */
export function certKeyId(certPem: string): string {
  const spki = new NodeCert(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex');
}

const serial = () => Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1');

/** A new certificate authority, valid `years` (10 by default). */
export async function createAuthority(name: string, now = Date.now(), years = 10): Promise<Authority & KeyPair> {
  const kp = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(), name: `CN=${name}`, keys: kp.keys, signingAlgorithm: ALG,
    notBefore: new Date(now - 60_000), notAfter: new Date(now + years * 365 * 86_400_000),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(kp.keys.publicKey),
    ],
  });
  return { ...kp, cert, certPem: cert.toString('pem') + '\n' };
}

export async function loadAuthority(certPem: string, keyPem: string): Promise<Authority> {
  const kp = await importKeyPair(keyPem);
  return { certPem, cert: new x509.X509Certificate(certPem), keys: kp.keys };
}

interface LeafOptions {
  commonName: string;
  publicKey: CryptoKey | x509.PublicKey;
  usage: 'server' | 'client';
  notAfter: number;
  now: number;
  /** server certificates: the DNS names and IP addresses it answers on */
  sans?: { dns: string[]; ip: string[] };
}

async function issue(ca: Authority, o: LeafOptions): Promise<Issued> {
  const publicKey = o.publicKey instanceof x509.PublicKey ? await o.publicKey.export(ALG, ['verify'], crypto) : o.publicKey;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension([o.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
    await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
  ];
  if (o.sans) {
    extensions.push(new x509.SubjectAlternativeNameExtension([
      ...o.sans.dns.map((value) => ({ type: 'dns' as const, value })),
      ...o.sans.ip.map((value) => ({ type: 'ip' as const, value })),
    ]));
  }
  const s = serial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: s, subject: `CN=${o.commonName}`, issuer: ca.cert.subject, publicKey, signingKey: ca.keys.privateKey, signingAlgorithm: ALG,
    notBefore: new Date(o.now - 60_000), notAfter: new Date(o.notAfter), extensions,
  });
  return { certPem: cert.toString('pem') + '\n', serial: s, notAfter: o.notAfter, keyId: await spkiId(publicKey) };
}

/** A serving certificate for the control plane's names and addresses. */
export async function issueServerCert(ca: Authority, sans: { dns: string[]; ip: string[] }, now: number, ttlMs: number): Promise<Issued & KeyPair> {
  const kp = await newKeyPair();
  const issued = await issue(ca, { commonName: sans.dns[0] ?? sans.ip[0] ?? 'outpost', publicKey: kp.keys.publicKey, usage: 'server', notAfter: now + ttlMs, now, sans });
  return { ...issued, ...kp };
}

/**
 * A node hub's serving certificate, from the hub CA (never the control
 * plane's: a node that names the control plane's address must not be able to
 * stand in for it): CN is the node name, the key is the node's own.
 */
export function issueHubCert(hubCa: Authority, csr: CsrInfo, sans: { dns: string[]; ip: string[] }, now: number, ttlMs: number): Promise<Issued> {
  return issue(hubCa, { commonName: csr.commonName, publicKey: csr.publicKey, usage: 'server', notAfter: now + ttlMs, now, sans });
}

/**
 * A self-signed serving certificate no client trusts, named
 * NAME-awaiting-certificate: what a hub serves until its node's own arrives
 * (devices that verify refuse it, as they should, and the name says why).
 */
export async function awaitingCert(name: string, now = Date.now()): Promise<{ certPem: string; keyPem: string }> {
  const ca = await createAuthority(`${name}-awaiting-certificate`, now, 1);
  const leaf = await issueServerCert(ca, { dns: [`${name}-awaiting-certificate`], ip: [] }, now, 86_400_000);
  return { certPem: leaf.certPem, keyPem: leaf.keyPem };
}

/** A certificate request for `name`, signed by the node's own key (which proves it holds the key). */
export async function makeCsr(kp: KeyPair, name: string): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${name}`, keys: kp.keys, signingAlgorithm: ALG });
  return csr.toString('pem');
}

export interface CsrInfo {
  commonName: string;
  keyId: string;
  publicKey: x509.PublicKey;
}

/** Parses and checks a CSR: its signature must verify with its own key. Throws on anything else. */
export async function readCsr(csrPem: string): Promise<CsrInfo> {
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  if (!(await csr.verify())) throw new Error('the request\'s signature does not verify with its key');
  const cn = csr.subjectName.getField('CN')[0];
  if (!cn) throw new Error('the request names no CN');
  return { commonName: cn, keyId: await spkiId(csr.publicKey), publicKey: csr.publicKey };
}

/** A node's client certificate: CN is the node name, the key is the one the node proved it holds. */
export function issueNodeCert(ca: Authority, csr: CsrInfo, now: number, ttlMs: number): Promise<Issued> {
  return issue(ca, { commonName: csr.commonName, publicKey: csr.publicKey, usage: 'client', notAfter: now + ttlMs, now });
}
