// What the agent's DNS server answers (docs/routing.md, DNS): `APP.outpost.`
// names the nearest healthy endpoint of an exposed app, by the node's route
// table (the one its site proxy serves). Wire format by dns-packet; this file
// turns one query's bytes into one answer's bytes and never throws: a packet
// it cannot read is answered FORMERR when it has a header, and dropped when it
// has none.
//
// One address is answered, the nearest: stub resolvers and getaddrinfo sort a
// set of addresses by their own rules (RFC 6724), so an order "nearest first"
// would not reach the client. A short TTL carries a failover instead.
import net from 'node:net';
import { AUTHORITATIVE_ANSWER, RECURSION_DESIRED, TRUNCATED_RESPONSE, decode, encode, type Answer, type Packet, type Question } from 'dns-packet';
import type { RouteEndpoint } from '../../core/routes.js';
import { NAME_RE } from '../../core/names.js';
import { parse } from './upstreams.js';

/** the zone the server answers for */
export const ZONE = 'outpost';
/** seconds an answer (and a negative answer) may be cached: a failover reaches clients within it */
export const TTL_S = 5;
/** the largest UDP answer sent to a client that says (EDNS) it takes more than 512 bytes (the DNS flag day 2020 figure) */
const EDNS_MAX = 1232;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** An app's endpoints, nearest first; undefined: no such exposed app in the node's table; null: the node has no table yet. */
export type Lookup = (app: string) => readonly RouteEndpoint[] | undefined | null;

const SOA: Answer = {
  name: ZONE, type: 'SOA', ttl: TTL_S,
  // `minimum` is the negative-caching TTL (RFC 2308): an unknown name is asked again as soon as an answer would be
  data: { mname: ZONE, rname: 'nobody.invalid', serial: 1, refresh: 60, retry: 60, expire: 60, minimum: TTL_S },
};

/** The answer to one query (UDP or TCP payload, without TCP's length prefix); null: nothing is sent back. */
export function answerQuery(query: Buffer, lookup: Lookup, transport: 'udp' | 'tcp'): Buffer | null {
  // fewer than a header's 12 bytes: no id to answer to; a response (QR set): never answered, so two servers cannot loop
  if (query.length < 12 || (query[2]! & 0x80) !== 0) return null;
  const id = query.readUInt16BE(0);
  const flags = query.readUInt16BE(2);
  const head = { id, rd: flags & RECURSION_DESIRED };
  let q;
  try {
    q = decode(query);
  } catch {
    return build(head, RCODE.FORMERR, { transport });
  }
  const edns = q.additionals?.find((r) => r.type === 'OPT') as { udpPayloadSize?: number } | undefined;
  const o = { transport, edns: edns ? Math.min(Math.max(edns.udpPayloadSize ?? 512, 512), EDNS_MAX) : 0 };
  if (((flags >> 11) & 0xf) !== 0) return build(head, RCODE.NOTIMP, o);
  if (q.questions?.length !== 1) return build(head, RCODE.FORMERR, o);
  const question = q.questions[0]!;
  const r = resolve(question, lookup);
  return build(head, r.rcode, { ...o, question, answers: r.answers, authoritative: r.authoritative });
}

interface Resolved {
  rcode: number;
  answers: Answer[];
  /** in the zone: the answer is the server's own (AA), and a negative one carries the SOA */
  authoritative: boolean;
}

function resolve(q: Question, lookup: Lookup): Resolved {
  const name = q.name.toLowerCase().replace(/\.$/, '');
  // dns-packet reads type 255 as ANY, which its types leave out
  const qtype: string = q.type;
  const inZone = name === ZONE || name.endsWith(`.${ZONE}`);
  // a name elsewhere is refused, not denied: a stub resolver then asks its next server (NXDOMAIN would end the search)
  if (!inZone || (q.class !== 'IN' && q.class !== 'ANY')) return { rcode: RCODE.REFUSED, answers: [], authoritative: false };
  const none = (rcode: number): Resolved => ({ rcode, answers: [], authoritative: true });
  // no zone transfers: the zone is a view of the table, different on every node
  if (qtype === 'AXFR' || qtype === 'IXFR') return { rcode: RCODE.REFUSED, answers: [], authoritative: false };
  if (name === ZONE) return qtype === 'SOA' || qtype === 'ANY' ? { rcode: RCODE.NOERROR, answers: [SOA], authoritative: true } : none(RCODE.NOERROR);
  const app = name.slice(0, -ZONE.length - 1);
  const endpoints = NAME_RE.test(app) ? lookup(app) : undefined;
  // an agent just started, with no table saved and none sent yet, does not know the app is absent: a passing failure, not cached as "no such name"
  if (endpoints === null) return none(RCODE.SERVFAIL);
  if (!endpoints) return none(RCODE.NXDOMAIN);
  const nearest = endpoints.map((e) => parse(e.endpoint)?.host ?? '').find((h) => net.isIP(h) !== 0);
  // the app is there but no endpoint is up now: a passing failure (getaddrinfo's EAI_AGAIN), not "no address"
  if (!nearest) return none(RCODE.SERVFAIL);
  const type = net.isIPv4(nearest) ? 'A' : 'AAAA';
  if (qtype !== type && qtype !== 'ANY') return none(RCODE.NOERROR);
  // the name as asked, in its case (resolvers that randomise case check it)
  return { rcode: RCODE.NOERROR, answers: [{ name: q.name, type, ttl: TTL_S, data: nearest }], authoritative: true };
}

interface BuildOptions {
  transport: 'udp' | 'tcp';
  /** the client's EDNS payload size (0: it sent no OPT) */
  edns?: number;
  question?: Question;
  answers?: Answer[];
  authoritative?: boolean;
}

function build(head: { id: number; rd: number }, rcode: number, o: BuildOptions): Buffer | null {
  // "no such name" and "no such record" carry the SOA, whose minimum bounds how long they are cached (RFC 2308)
  const negative = o.authoritative && !o.answers?.length && (rcode === RCODE.NOERROR || rcode === RCODE.NXDOMAIN);
  const packet: Packet = {
    type: 'response', id: head.id,
    flags: head.rd | (o.authoritative ? AUTHORITATIVE_ANSWER : 0) | rcode,
    questions: o.question ? [o.question] : [],
    answers: o.answers ?? [],
    authorities: negative ? [SOA] : [],
    additionals: o.edns ? [{ name: '.', type: 'OPT', udpPayloadSize: EDNS_MAX, flags: 0 } as Answer] : [],
  };
  try {
    const out = encode(packet);
    const max = o.transport === 'tcp' ? 0xffff : o.edns || 512;
    if (out.length <= max) return out;
    // too long for this client's UDP: the question alone, truncated, so it asks again over TCP
    return encode({ ...packet, flags: packet.flags! | TRUNCATED_RESPONSE, answers: [], authorities: [] });
  } catch {
    // a question dns-packet decoded but cannot write back (a label it reads but does not encode alike)
    try {
      return encode({ ...packet, flags: head.rd | RCODE.FORMERR, questions: [], answers: [], authorities: [] });
    } catch {
      return null;
    }
  }
}
