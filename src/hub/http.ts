// The hub's HTTP side: devices post points, people and apps query what is
// stored. No token: it serves the node's local network, like the MQTT port.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { OutpostError, toOutpostError } from '../core/errors.js';
import { parseBody } from '../core/points.js';
import { numberParam } from '../core/query.js';
import type { DataHub } from './hub.js';

const BODY_LIMIT = 16 * 1024 * 1024;

function range(q: { from?: string; to?: string; limit?: string }, maxLimit: number) {
  const limit = numberParam(q.limit, 'limit') ?? maxLimit;
  return { from: numberParam(q.from, 'from') ?? 0, to: numberParam(q.to, 'to') ?? 8.64e15, limit: Math.min(maxLimit, Math.max(1, limit)) };
}

export function buildHubHttp(hub: DataHub, log: Logger): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT });
  // bodies are parsed by the hub itself, to name the first bad value
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    const e = toOutpostError(err);
    const stream = (req.params as { stream?: string } | undefined)?.stream;
    if (req.method === 'POST') hub.reject(e.code, stream && hub.streamNames().includes(stream) ? stream : null);
    if (e.status >= 500) log.error({ err }, 'hub request failed');
    void reply.status(e.status).send({ error: e.toJSON() });
  });

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/v1/stats', async () => hub.stats());
  app.get('/v1/streams', async () => {
    const s = hub.stats().streams;
    return hub.streamNames().map((name) => ({ name, ...s[name] }));
  });

  app.post<{ Params: { stream: string }; Body: string }>('/v1/streams/:stream/points', async (req) => {
    const text = typeof req.body === 'string' ? req.body : '';
    if (!hub.streamNames().includes(req.params.stream)) {
      throw new OutpostError('E_UNKNOWN_STREAM', `no app on this node declares the stream "${req.params.stream}"`, { path: 'stream' });
    }
    const type = req.headers['content-type'] ?? '';
    const ndjson = type.includes('ndjson') || type.includes('jsonlines');
    const batch = parseBody(text, ndjson, Date.now());
    const bytes = Number(req.headers['content-length']) || Buffer.byteLength(text);
    // accepted points are stored; late ones (for a window already emitted) and filtered ones count no further
    return await hub.ingest(req.params.stream, batch, bytes);
  });

  app.get<{ Params: { stream: string }; Querystring: { from?: string; to?: string; limit?: string } }>('/v1/streams/:stream/windows', async (req) => {
    const r = range(req.query, 10_000);
    return hub.store.windows(req.params.stream, r.from, r.to, r.limit);
  });
  app.get<{ Params: { stream: string }; Querystring: { from?: string; to?: string; limit?: string } }>('/v1/streams/:stream/points', async (req) => {
    const r = range(req.query, 100_000);
    return hub.store.points(req.params.stream, r.from, r.to, r.limit);
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'E_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });
  return app;
}
