// A site proxy's TCP listener for one exposed app: each connection is piped
// to the nearest endpoint that accepts one. The client's bytes wait (the
// socket is paused) until the upstream connection is up, so a failed connect
// loses nothing and the next endpoint is tried; when none accepts, the
// client's connection is closed.
import net from 'node:net';
import type { Outcome } from './counters.js';
import type { Upstreams } from './upstreams.js';
import { CONNECT_TIMEOUT_MS } from './http.js';

export interface TcpContext {
  upstreams: Upstreams;
  record: (o: Outcome) => void;
}

export function tcpServer(ctx: TcpContext): net.Server {
    // half-open both ways: a client that ends its side (a request sent whole) still gets the answer
  return net.createServer({ pauseOnConnect: true, noDelay: true, allowHalfOpen: true }, (client) => pipeTo(ctx, client));
}

function pipeTo(ctx: TcpContext, client: net.Socket): void {
  const t0 = performance.now();
  const order = ctx.upstreams.order();
  let gone = false;
  client.on('error', () => {});
  client.once('close', () => { gone = true; });
  const attempt = (i: number): void => {
    const u = order[i];
    if (!u || gone) {
      ctx.record({ node: '', status: null, error: true, connectMs: null, firstByteMs: null, totalMs: performance.now() - t0 });
      return void client.destroy();
    }
    const tc = performance.now();
    const up = net.connect({ host: u.host, port: u.port, noDelay: true, allowHalfOpen: true });
    const timer = setTimeout(() => up.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT_MS);
    const refused = () => {
      clearTimeout(timer);
      ctx.upstreams.markDown(u);
      attempt(i + 1);
    };
    up.once('error', refused);
    up.once('connect', () => {
      clearTimeout(timer);
      up.off('error', refused);
      if (gone) return void up.destroy();
      const connectMs = performance.now() - tc;
      let firstByteMs: number | null = null;
      up.once('data', () => { firstByteMs = performance.now() - t0; });
      ctx.upstreams.acquire(u);
      let broken = false;
      const onErr = () => { broken = true; };
      up.on('error', onErr);
      client.on('error', onErr);
      up.once('close', () => {
        ctx.upstreams.release(u);
        client.destroy();
        ctx.record({ node: u.node, status: null, error: broken, connectMs, firstByteMs, totalMs: performance.now() - t0 });
      });
      client.once('close', () => up.destroy());
      client.pipe(up);
      up.pipe(client);
      client.resume();
    });
  };
  attempt(0);
}
