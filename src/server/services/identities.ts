// Node identities: which key holds each node name, its short-lived client
// certificate, approval and revocation. A node enrols with a join token (or,
// once enrolled, with proof of its key: a CSR signed by it), and from then on
// is whoever holds that key; the name in its messages is only checked against
// it. A name held by one key is refused to any other until an operator
// removes the node.
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { EnrolAnswer } from '../../contract/api.js';
import { OutpostError } from '../../core/errors.js';
import { NAME_RE } from '../../core/names.js';
import { parseJoinToken } from '../../core/jointoken.js';
import type { NodeIdentity, Refusal } from '../../core/types.js';
import { issueHubCert, issueNodeCert, readCsr, type Authority, type CsrInfo } from '../../trust/pki.js';
import type { Writer } from '../writer.js';
import type { JoinTokens } from './tokens.js';
import { newSecret } from '../../core/secret.js';
import type { Nodes } from './nodes.js';

export interface TrustPolicy {
  /** lifetime of node certificates (24 h by default) */
  certTtlMs: number;
  /** new nodes wait for `outpost node approve` */
  approveNodes: boolean;
  /** a node whose certificate expired may enrol again with its old key, no token */
  reenrolWithKey: boolean;
  /** no TLS: nodes get a secret to authenticate with instead of using their certificate */
  insecure: boolean;
}

/** the shortest time between two certificates for one node */
const RENEW_FLOOR_MS = 10_000;

export const DEFAULT_TRUST: TrustPolicy = { certTtlMs: 24 * 3_600_000, approveNodes: false, reenrolWithKey: true, insecure: false };

export interface EnrolRequest {
  name: string;
  csr: string;
  /** absent: re-enrolment with the node's existing key */
  token?: string;
  /** the names and addresses of the node's hub: asks for its serving certificate too */
  hub?: string[];
}

type Auth = { ca: Authority; trustPem: string; hubCa?: Authority };

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * The names a hub's certificate may cover: host names and IP addresses, no
 * wildcards, at most 8. A node names its own addresses (as a kubelet does
 * for its serving certificate); the hub CA that signs them is trusted by
 * devices only, so no name here can stand in for the control plane.
 */
export function hubSans(list: unknown): { dns: string[]; ip: string[] } {
  if (!Array.isArray(list) || list.length === 0 || list.length > 8) throw new OutpostError('E_INVALID', 'hub: 1 to 8 host names or IP addresses', { path: 'hub' });
  const dns: string[] = [];
  const ip: string[] = [];
  list.forEach((v, i) => {
    if (typeof v === 'string' && isIP(v)) ip.push(v);
    else if (typeof v === 'string' && DNS_NAME.test(v)) dns.push(v.toLowerCase());
    else throw new OutpostError('E_INVALID', `hub[${i}]: not a host name or IP address (no wildcards)`, { path: `hub.${i}` });
  });
  return { dns: [...new Set(dns)], ip: [...new Set(ip)] };
}


export class Identities {
  constructor(
    private readonly w: Writer,
    private readonly tokens: JoinTokens,
    private readonly nodes: Nodes,
    private readonly authority: () => Auth | null,
    readonly policy: TrustPolicy,
    private readonly now: () => number,
  ) {}

  get(name: string): NodeIdentity | undefined {
    return this.w.state.get('identities', name);
  }

  async enrol(r: EnrolRequest): Promise<EnrolAnswer> {
    const auth = this.authority();
    if (!auth) throw new OutpostError('E_INTERNAL', 'this control plane has no certificate authority');
    if (!NAME_RE.test(r.name)) throw new OutpostError('E_INVALID', 'node names are [a-z0-9-], 1-63 characters', { path: 'name' });
    const token = r.token !== undefined ? parseJoinToken(r.token) : null;
    const sans = r.hub === undefined ? null : hubSans(r.hub);
    let csr;
    try {
      csr = await readCsr(r.csr);
    } catch (e) {
      throw new OutpostError('E_INVALID', `csr: ${(e as Error).message}`, { path: 'csr' });
    }
    if (csr.commonName !== r.name) throw new OutpostError('E_INVALID', `the request is for CN=${csr.commonName}, not ${r.name}`, { path: 'csr' });
    // every check is made before signing (cheap refusals), and again in the write that records it
    // the credential first: without a valid token or the name's own key, the answer says
    // nothing about the name (whether it exists, is taken or revoked)
    const check = () => {
      const s = this.w.state;
      const prev = s.get('identities', r.name);
      const ownKey = prev !== undefined && prev.keyId === csr.keyId;
      if (token) {
        const why = this.tokens.refusal(s, token);
        if (why) throw new OutpostError('E_TOKEN_INVALID', why);
      } else if (!ownKey || !this.policy.reenrolWithKey || this.policy.insecure) {
        // without TLS a CSR could be seen and replayed: re-enrolment there takes a token
        throw new OutpostError('E_TOKEN_INVALID', ownKey ? 're-enrolment with the node\'s key alone is off here: give a fresh join token' : 'a join token is required to enrol a node');
      }
      if (prev?.revokedAt) throw new OutpostError('E_NODE_REVOKED', `node ${r.name} was revoked; an operator must \`outpost node rm ${r.name}\` before the name can enrol again`);
      if (prev && !ownKey) throw new OutpostError('E_NODE_NAME_TAKEN', `node name ${r.name} is held by another key; enrol under another name, or \`outpost node rm ${r.name}\` first`, { path: 'name' });
      return prev;
    };
    check();
    const issued = await issueNodeCert(auth.ca, csr, this.now(), this.policy.certTtlMs);
    // without TLS the node authenticates with a secret (only its hash is kept)
    const nodeSecret = this.policy.insecure ? newSecret(24) : null;
    const identity = await this.w.run((s) => {
      const prev = check();
      const t = token ? s.get('tokens', token.id)! : null;
      const doc: NodeIdentity = {
        name: r.name, keyId: csr.keyId, serial: issued.serial, certNotAfter: issued.notAfter,
        enrolledAt: prev?.enrolledAt ?? this.now(), renewedAt: this.now(), tokenId: t?.id ?? prev?.tokenId ?? null,
        approved: prev?.approved ?? !this.policy.approveNodes, revokedAt: null,
        site: t ? t.site : prev?.site ?? null, labels: t ? t.labels : prev?.labels ?? {},
        lastRefusal: null,
      };
      if (nodeSecret) doc.secretHash = nodeSecret.secretHash;
      const changes = [{ kind: 'identities' as const, key: r.name, doc }];
      return { changes: t ? [...changes, { kind: 'tokens' as const, key: t.id, doc: { ...t, used: t.used + 1 } }] : changes, result: doc };
    });
    const hubCert = await this.hubCert(auth, identity, csr, sans);
    return {
      name: r.name, cert: issued.certPem, ca: auth.trustPem, notAfter: issued.notAfter, approved: identity.approved,
      ...(nodeSecret ? { secret: nodeSecret.secret } : {}), ...(hubCert ? { hubCert } : {}),
    };
  }

  /**
   * The hub's serving certificate, for the node's key, as long as its node
   * certificate: only for an approved node (one still pending is not trusted
   * to name addresses devices will believe).
   */
  private async hubCert(auth: Auth, id: NodeIdentity, csr: CsrInfo, sans: { dns: string[]; ip: string[] } | null): Promise<string | null> {
    if (!sans || !auth.hubCa || !id.approved || id.revokedAt) return null;
    return (await issueHubCert(auth.hubCa, csr, sans, this.now(), this.policy.certTtlMs)).certPem + auth.hubCa.certPem;
  }

  /** Whether a certificate was signed by our CA (its signature verifies), in date or not. */
  issuedHere(peer: X509Certificate): boolean {
    const auth = this.authority();
    if (!auth) return false;
    const ca = (this.caCert ??= new X509Certificate(auth.ca.certPem));
    return peer.checkIssued(ca) && peer.verify(ca.publicKey);
  }

  private caCert: X509Certificate | null = null;

  /**
   * A certificate for a connected node (over its live connection), for the
   * key it holds or a new one it proves it holds; refused when the name is
   * no longer bound to the connection's key (removed and enrolled again by
   * another), or when it asks again too soon.
   */
  async renew(name: string, csrPem: string, connKeyId: string, hub?: string[]): Promise<{ cert: string; notAfter: number; hubCert?: string }> {
    const cur = this.get(name);
    if (!cur || cur.revokedAt || cur.keyId !== connKeyId) throw new OutpostError('E_FORBIDDEN', `node ${name} is no longer bound to this connection's key`);
    // an agent renews at half-life; one that asks again and again (a bug, a clock gone wrong) gets one every 10 s at most
    if (this.now() - cur.renewedAt < Math.min(this.policy.certTtlMs / 4, RENEW_FLOOR_MS)) throw new OutpostError('E_RATE_LIMITED', `node ${name} got a certificate ${Math.round((this.now() - cur.renewedAt) / 1000)} s ago; renewal is at half-life`);
    const auth = this.authority();
    if (!auth) throw new OutpostError('E_INTERNAL', 'this control plane has no certificate authority');
    const csr = await readCsr(csrPem).catch((e: Error) => { throw new OutpostError('E_INVALID', `csr: ${e.message}`, { path: 'csr' }); });
    if (csr.commonName !== name) throw new OutpostError('E_FORBIDDEN', `node ${name} asked for a certificate for ${csr.commonName}`, { path: 'csr' });
    const sans = hub === undefined ? null : hubSans(hub);
    const issued = await issueNodeCert(auth.ca, csr, this.now(), this.policy.certTtlMs);
    const doc = await this.w.run((s) => {
      const prev = s.get('identities', name);
      if (!prev || prev.revokedAt) throw new OutpostError('E_NODE_REVOKED', `node ${name} was revoked or removed`);
      if (prev.keyId !== connKeyId) throw new OutpostError('E_FORBIDDEN', `node ${name} is no longer bound to this connection's key`);
      const doc: NodeIdentity = { ...prev, keyId: csr.keyId, serial: issued.serial, certNotAfter: issued.notAfter, renewedAt: this.now(), lastRefusal: null };
      return { changes: [{ kind: 'identities', key: name, doc }], result: doc };
    });
    const hubCert = await this.hubCert(auth, doc, csr, sans);
    return { cert: issued.certPem, notAfter: issued.notAfter, ...(hubCert ? { hubCert } : {}) };
  }

  /** Why a connection as `name` holding key `keyId` is refused, or null. */
  refusal(name: string, keyId: string): OutpostError | null {
    const id = this.get(name);
    if (!id) return new OutpostError('E_UNAUTHORIZED', `node ${name} is not enrolled (removed?): enrol again with a join token`);
    if (id.revokedAt) return new OutpostError('E_NODE_REVOKED', `node ${name} was revoked at ${new Date(id.revokedAt).toISOString()}`);
    if (id.keyId !== keyId) return new OutpostError('E_NODE_NAME_TAKEN', `node ${name} is held by another key`);
    return null;
  }

  /** Records why a node was turned away, for `outpost nodes` (at most one write a minute per node and reason). */
  refused(name: string, e: OutpostError): void {
    const id = this.get(name);
    const last = id?.lastRefusal;
    if (!id || (last && last.code === e.code && this.now() - last.at < 60_000)) return;
    const refusal: Refusal = { code: e.code, message: e.message, at: this.now() };
    void this.w.run((s) => {
      const cur = s.get('identities', name);
      return { changes: cur ? [{ kind: 'identities', key: name, doc: { ...cur, lastRefusal: refusal } }] : [], result: undefined };
    }).catch(() => {});
  }

  async approve(name: string): Promise<NodeIdentity> {
    const doc = await this.change(name, (id) => ({ ...id, approved: true }));
    await this.nodes.update(name, (n) => (n.state === 'pending' ? { ...n, state: 'ready' } : null));
    return doc;
  }

  /** Revokes a node: its certificate is refused from now on and its node is marked revoked (its replicas move). */
  async revoke(name: string): Promise<NodeIdentity> {
    const doc = await this.change(name, (id) => ({ ...id, revokedAt: id.revokedAt ?? this.now() }));
    this.nodes.revoked(name);
    await this.nodes.update(name, (n) => (n.state === 'revoked' ? null : { ...n, state: 'revoked', lastSeen: this.now() }));
    return doc;
  }

  /** Forgets a node: its identity and its record; the name is free to enrol again. Its replicas must be elsewhere first. */
  async remove(name: string): Promise<void> {
    await this.w.run((s) => {
      if (!s.get('identities', name) && !s.node(name)) throw new OutpostError('E_NOT_FOUND', `no node named "${name}"`, { path: 'name' });
      const n = s.node(name);
      if (n && n.state === 'ready') throw new OutpostError('E_CONFLICT', `node ${name} is connected: \`outpost node revoke ${name}\` first`);
      if (s.nodeReplicas(name).length > 0) throw new OutpostError('E_CONFLICT', `node ${name} still has replicas; they move once it is revoked or lost: try again shortly`);
      return { changes: [{ kind: 'identities', key: name, doc: null }, { kind: 'nodes', key: name, doc: null }], result: undefined };
    });
  }

  private change(name: string, f: (id: NodeIdentity) => NodeIdentity): Promise<NodeIdentity> {
    return this.w.run((s) => {
      const id = s.get('identities', name);
      if (!id) throw new OutpostError('E_NOT_FOUND', `no enrolled node named "${name}"`, { path: 'name' });
      const doc = f(id);
      return { changes: [{ kind: 'identities', key: name, doc }], result: doc };
    });
  }
}
