// The agent's DNS server (`--dns-listen HOST:PORT`, off by default): UDP and
// TCP on one port, each query answered from the node's route table by
// dns-answer.ts. TCP is there for clients that ask over it (a truncated UDP
// answer, `dig +tcp`); a connection carries any number of length-prefixed
// queries (RFC 7766), and an idle one is closed.
import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from 'pino';
import { OutpostError } from '../../core/errors.js';
import { answerQuery, type Lookup } from './dns-answer.js';
import type { SiteProxy } from './proxy.js';

/** a TCP connection with no query this long is closed (RFC 7766 suggests seconds) */
const TCP_IDLE_MS = 10_000;
/** TCP connections served at once; more are closed at once (a UDP query needs none) */
const TCP_MAX = 64;

/** The answers' source: the table a site proxy serves. */
export function routeLookup(proxy: Pick<SiteProxy, 'route'>): Lookup {
  return (app) => {
    const r = proxy.route(app);
    return r === null ? null : r?.endpoints;
  };
}

export interface DnsOptions {
  host: string;
  /** 0: any free port (the same for UDP and TCP) */
  port: number;
  lookup: Lookup;
  log: Logger;
}

export class DnsServer {
  private udp: dgram.Socket | null = null;
  private tcp: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();
  /** queries read per transport, and those that got no answer (a response, a packet shorter than a header) */
  readonly counts = { udp: 0, tcp: 0, unanswered: 0 };

  constructor(private readonly o: DnsOptions) {}

  /** Listens on UDP and TCP; resolves with the port taken. A port in use (either protocol) rejects with E_USAGE, both closed. */
  async start(): Promise<{ host: string; port: number }> {
    try {
      return await this.bind();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'EACCES' ? 'EACCES (a port below 1024, such as 53, needs the privilege: CAP_NET_BIND_SERVICE)' : code ?? (e as Error).message;
      throw new OutpostError('E_USAGE', `--dns-listen ${this.o.host}:${this.o.port}: ${why}`, { path: 'dnsListen', cause: e });
    }
  }

  private async bind(): Promise<{ host: string; port: number }> {
    // port 0: the port UDP got may be taken for TCP by someone else; a few tries find one free for both
    for (let attempt = 0; ; attempt++) {
      const udp = dgram.createSocket({ type: net.isIPv6(this.o.host) ? 'udp6' : 'udp4' });
      try {
        await new Promise<void>((res, rej) => {
          udp.once('error', rej);
          udp.bind({ address: this.o.host, port: this.o.port, exclusive: true }, () => { udp.off('error', rej); res(); });
        });
      } catch (e) {
        udp.close();
        throw e;
      }
      const port = udp.address().port;
      const tcp = net.createServer((c) => this.serveTcp(c));
      try {
        await new Promise<void>((res, rej) => {
          tcp.once('error', rej);
          tcp.listen({ host: this.o.host, port }, () => { tcp.off('error', rej); res(); });
        });
      } catch (e) {
        udp.close();
        if (this.o.port === 0 && (e as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 8) continue;
        throw e;
      }
      udp.on('message', (msg, rinfo) => this.serveUdp(udp, msg, rinfo));
      // a send error (the client's port unreachable) concerns one client, never the server
      udp.on('error', (err) => this.o.log.debug({ err }, 'dns: udp error'));
      tcp.on('error', (err) => this.o.log.debug({ err }, 'dns: tcp error'));
      this.udp = udp;
      this.tcp = tcp;
      this.o.log.info({ host: this.o.host, port }, 'dns listening (udp and tcp)');
      return { host: this.o.host, port };
    }
  }

  async stop(): Promise<void> {
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = null;
    this.tcp = null;
    for (const c of this.conns) c.destroy();
    await Promise.all([
      udp ? new Promise<void>((r) => udp.close(() => r())) : null,
      tcp ? new Promise<void>((r) => tcp.close(() => r())) : null,
    ]);
  }

  private answer(q: Buffer, transport: 'udp' | 'tcp'): Buffer | null {
    this.counts[transport]++;
    const out = answerQuery(q, this.o.lookup, transport);
    if (!out) this.counts.unanswered++;
    return out;
  }

  private serveUdp(udp: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const out = this.answer(msg, 'udp');
    if (out) udp.send(out, rinfo.port, rinfo.address, () => {});
  }

  private serveTcp(c: net.Socket): void {
    if (this.conns.size >= TCP_MAX) return void c.destroy();
    this.conns.add(c);
    c.setNoDelay(true);
    c.setTimeout(TCP_IDLE_MS, () => c.destroy());
    c.on('error', () => c.destroy());
    c.on('close', () => this.conns.delete(c));
    let buf: Buffer = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      // each query is a 2-byte length then that many bytes; several may come in one read, or one across several
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        const out = this.answer(buf.subarray(2, 2 + len), 'tcp');
        buf = buf.subarray(2 + len);
        if (!out) continue;
        const frame = Buffer.allocUnsafe(2 + out.length);
        frame.writeUInt16BE(out.length, 0);
        out.copy(frame, 2);
        c.write(frame);
      }
    });
  }
}
