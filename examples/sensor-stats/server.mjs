// sensor-stats: the seed's example service (section 4.2), request for request.
// POST /process_data -> {"processed_data": mean}
// POST /storage_data -> {"stored_data": sum}
// POST /compute_data -> {"computed_data": product, "log_abs_product", "product_sign"}
// GET /  -> Hello, World!      GET /healthz -> 200 {"ok":true}
// GET /outpost/stages -> cumulative per-stage cost counters (items and
//   microseconds, parse + compute) from which Outpost learns the per-item
//   t_process (mean), t_storage (sum) and t_compute (product) of its model
// Plain node:http with no dependencies, so the image is only Node and this file.
import http from 'node:http';
import { mean, sum, product, logProduct } from './stats.mjs';

const port = Number(process.env.PORT ?? 5000);
const host = process.env.HOST ?? '0.0.0.0';
const maxBody = Number(process.env.MAX_BODY_BYTES ?? 16 * 1024 * 1024);

// LEAK_MB_PER_S: the seed's "memory leak" failure, on purpose, for chaos tests
const leakRate = Number(process.env.LEAK_MB_PER_S ?? 0);
if (leakRate > 0) {
  const kept = [];
  setInterval(() => kept.push(Buffer.alloc(Math.round(leakRate * 1024 * 1024 / 10), 1)), 100);
}

class BadRequest extends Error {
  constructor(code, message, status = 400) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

function parseNumbers(text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new BadRequest('E_BAD_JSON', `body is not valid JSON: ${e.message}`);
  }
  if (!Array.isArray(data)) {
    throw new BadRequest('E_NOT_ARRAY', 'body must be a JSON array of numbers, e.g. [1,2,3]');
  }
  for (let i = 0; i < data.length; i++) {
    if (typeof data[i] !== 'number' || !Number.isFinite(data[i])) {
      throw new BadRequest('E_NOT_NUMBER', `item [${i}] is not a finite number: ${JSON.stringify(data[i])}`);
    }
  }
  return data;
}

// Non-finite results (an overflowed product) become null: JSON has no Infinity.
const finiteOrNull = (x) => (Number.isFinite(x) ? x : null);

// which of the seed's stages each endpoint is
const STAGE = { '/process_data': 'process', '/storage_data': 'storage', '/compute_data': 'compute' };
const stages = { process: { items: 0, us: 0 }, storage: { items: 0, us: 0 }, compute: { items: 0, us: 0 } };

const routes = {
  '/process_data': (a) => {
    if (a.length === 0) throw new BadRequest('E_EMPTY', 'the mean of an empty array is undefined');
    return { processed_data: mean(a) };
  },
  '/storage_data': (a) => ({ stored_data: sum(a) }),
  '/compute_data': (a) => {
    const { log, sign } = logProduct(a);
    return {
      computed_data: finiteOrNull(product(a)),
      log_abs_product: finiteOrNull(log),
      product_sign: sign,
    };
  },
};

function send(res, status, body, type = 'application/json') {
  const text = type === 'application/json' ? JSON.stringify(body) : body;
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > maxBody) {
        // keep reading and discard the rest, so the client still gets the 413
        req.removeAllListeners('data');
        req.resume();
        reject(new BadRequest('E_TOO_LARGE', `body exceeds ${maxBody} bytes`, 413));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  try {
    if (req.method === 'GET' && path === '/') return send(res, 200, 'Hello, World!', 'text/html; charset=utf-8');
    if (req.method === 'GET' && path === '/healthz') return send(res, 200, { ok: true });
    if (req.method === 'GET' && path === '/outpost/stages') return send(res, 200, stages);
    const handler = routes[path];
    if (!handler) return send(res, 404, { error: { code: 'E_NOT_FOUND', message: `no route ${req.method} ${path}` } });
    if (req.method !== 'POST') return send(res, 405, { error: { code: 'E_METHOD', message: `${path} takes POST` } });
    const text = await readBody(req);
    const t0 = process.hrtime.bigint();
    const data = parseNumbers(text);
    const out = handler(data);
    const s = stages[STAGE[path]];
    s.items += data.length;
    s.us += Number(process.hrtime.bigint() - t0) / 1000;
    return send(res, 200, out);
  } catch (e) {
    if (e instanceof BadRequest) {
      if (e.status === 413) res.setHeader('connection', 'close');
      if (!res.headersSent) send(res, e.status, { error: { code: e.code, message: e.message } });
      return;
    }
    console.error(e);
    if (!res.headersSent) send(res, 500, { error: { code: 'E_INTERNAL', message: 'internal error' } });
  }
});

server.listen(port, host, () => console.log(`sensor-stats listening on ${host}:${port}`));
for (const sig of ['SIGTERM', 'SIGINT']) {
  // close kept-alive connections too, or a stop waits for idle clients
  process.on(sig, () => { server.close(() => process.exit(0)); server.closeAllConnections(); });
}
