// How the site proxy frames what it forwards: a chunked body on a method that
// takes none stays one request at the replica (no request smuggled in a chunk).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { raw, servers, serving } from './testkit.js';

test('a chunked body on GET, HEAD, DELETE, OPTIONS or TRACE reaches the replica as that body, never as a request of its own', async () => {
  const seen: string[] = [];
  const replica = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers['x-forwarded-for']}`);
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  servers.push(replica);
  await new Promise<void>((r) => replica.listen(0, '127.0.0.1', r));
  const { p, port } = await serving([{ replica: 'r-0-0', endpoint: `http://127.0.0.1:${(replica.address() as net.AddressInfo).port}` }]);
  const headed = (got: string) => got.includes('\r\n\r\n');
  const smuggled = 'GET /smuggled HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 6.6.6.6\r\n\r\n';
  for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE']) {
    seen.length = 0;
    const chunked = `${method} /first HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
    const answer = await raw(port, chunked, headed);
    assert.match(answer, /^HTTP\/1\.1 200/, method);
    // a request after it on the same kept-alive upstream connection: anything smuggled would have come before it
    await raw(port, 'GET /after HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', headed);
    assert.deepEqual(seen, [`${method} /first 127.0.0.1`, 'GET /after 127.0.0.1'], method);
  }
  await p.stop();
});

test('an upgrade is spliced only when the replica answers 101; a refused WebSocket upgrade is forwarded and closed; an h2c upgrade goes as a plain request', async () => {
  const seen: string[] = [];
  const replica = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.upgrade ?? '-'} ${req.headers['x-forwarded-for']}`);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('no such socket');
  });
  servers.push(replica);
  await new Promise<void>((r) => replica.listen(0, '127.0.0.1', r));
  const { p, port } = await serving([{ replica: 'r-0-0', endpoint: `http://127.0.0.1:${(replica.address() as net.AddressInfo).port}` }]);
  const next = 'GET /next HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 6.6.6.6\r\n\r\n';
  const ws = 'GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
  const refused = await raw(port, ws + next);
  assert.match(refused, /^HTTP\/1\.1 404 Not Found\r\n/);
  assert.match(refused, /\r\n\r\nno such socket$/);
  const h2c = await raw(port, `GET /h2 HTTP/1.1\r\nhost: x\r\nconnection: upgrade, http2-settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQAAP__\r\n\r\n${next}`);
  assert.match(h2c, /^HTTP\/1\.1 404 /);
  assert.deepEqual(seen, ['GET /ws websocket 127.0.0.1', 'GET /h2 - 127.0.0.1'], 'the bytes after an upgrade that was not accepted never reach the replica');
  const body = await raw(port, 'POST /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\ncontent-length: 3\r\n\r\nabc');
  assert.match(body, /^HTTP\/1\.1 400 .*E_UPGRADE_BODY/s);
  await p.stop();
});
