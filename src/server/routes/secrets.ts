// /v1/secrets: set, list (never values), remove, and rotate the envelope key.
import type { FastifyInstance } from 'fastify';
import { OutpostError } from '../../core/errors.js';
import type { RouteDeps } from '../http.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function secretRoutes(app: FastifyInstance, { cp }: RouteDeps): void {
  app.get('/v1/secrets', async () => cp.secrets.view());
  app.put<{ Params: { name: string }; Body: { value?: unknown } }>('/v1/secrets/:name', async (req) => {
    const v = req.body?.value;
    // the message never echoes what was sent: it may be the secret
    if (typeof v !== 'string' || v.length % 4 !== 0 || !BASE64.test(v)) throw new OutpostError('E_INVALID', 'value must be the secret\'s bytes in base64', { path: 'value' });
    return cp.secrets.set(req.params.name, Buffer.from(v, 'base64'));
  });
  app.delete<{ Params: { name: string } }>('/v1/secrets/:name', async (req) => {
    await cp.secrets.remove(req.params.name);
    return { removed: req.params.name };
  });
  app.post('/v1/secrets/rotate-key', async () => cp.secrets.rotateKey());
}
