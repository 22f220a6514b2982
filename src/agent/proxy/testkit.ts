// What the site proxy's tests share: real upstream servers on loopback, a
// proxy that records its confirmations and listeners, raw HTTP over a socket.
import { after } from 'node:test';
import http from 'node:http';
import net from 'node:net';
import pino from 'pino';
import type { AppRoute } from '../../core/routes.js';
import type { ProxyListener } from '../../core/types.js';
import { SiteProxy, type ProxyOptions } from './proxy.js';
import { freePort as freePortOn } from '../health.js';

const log = pino({ level: 'silent' });
export const servers: (http.Server | net.Server)[] = [];
after(() => { for (const s of servers) { (s as http.Server).closeAllConnections?.(); s.close(); } });

/** An upstream that answers with its name, the path, the body it got and the headers the proxy added. */
export async function upstream(name: string, port = 0, slow?: Promise<void>): Promise<{ server: http.Server; port: number; endpoint: string }> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => void (slow ?? Promise.resolve()).then(() => res.end(JSON.stringify({ name, path: req.url, body, xff: req.headers['x-forwarded-for'], via: req.headers.via }))));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const p = (server.address() as net.AddressInfo).port;
  return { server, port: p, endpoint: `http://127.0.0.1:${p}` };
}

export const freePort = () => freePortOn('127.0.0.1');

export function proxyAt(o: Partial<ProxyOptions> = {}) {
  const acks: { seq: number; busy: string[] }[] = [];
  let listeners: ProxyListener[] = [];
  const p = new SiteProxy({ host: '127.0.0.1', node: 'edge-1', log, ack: (seq, busy) => acks.push({ seq, busy }), changed: (l) => { listeners = l; }, ...o });
  return { p, acks, listeners: () => listeners };
}

export const route = (port: number, eps: { replica: string; endpoint: string }[], protocol: 'http' | 'tcp' = 'http', drainMs = 5000): AppRoute[] =>
  [{ app: 'web', port, protocol, drainMs, endpoints: eps.map((e) => ({ ...e, node: e.replica.split('-')[0]! })) }];

export async function get(port: number, path = '/x', body?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, body === undefined ? {} : { method: 'POST', body });
  return { status: res.status, json: await res.json() as Record<string, unknown> };
}

export async function until<T>(f: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Writes `text` on a new connection to `port` and resolves with all it reads
 * until the proxy closes it, or until what it read is `enough` (then closes it).
 */
export function raw(port: number, text: string, enough: (got: string) => boolean = () => false): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(text));
    let got = '';
    c.on('data', (d) => { got += d; if (enough(got)) c.destroy(); });
    c.on('close', () => resolve(got));
    c.on('error', reject);
  });
}

/** A proxy serving `web` on a free port to these endpoints, listening. */
export async function serving(eps: { replica: string; endpoint: string }[], protocol: 'http' | 'tcp' = 'http', o: Partial<ProxyOptions> = {}, drainMs = 5000) {
  const port = await freePort();
  const x = proxyAt(o);
  x.p.apply(1, route(port, eps, protocol, drainMs));
  await until(() => x.listeners()[0]?.state === 'listening');
  return { ...x, port };
}
