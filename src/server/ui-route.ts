// The dashboard at /ui/: the files `npm run build` bundled into dist/ui,
// served by the control plane itself on its own port (no second server). The
// files need no token: the page signs in with one and sends it on its API
// calls. A strict content security policy keeps the page to its own origin.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';

/** dist/ui, beside dist/src where this module runs from */
export const UI_DIR = fileURLToPath(new URL('../../ui/', import.meta.url));

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // uPlot and xterm.js set element styles from script
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

/** `dir`: where the built files are (a test points it elsewhere); UI_DIR by default */
export async function uiRoutes(app: FastifyInstance, o: { dir?: string } = {}): Promise<void> {
  const dir = o.dir ?? UI_DIR;
  app.get('/', async (_req, reply) => reply.redirect('/ui/'));
  if (!existsSync(`${dir}index.html`)) {
    app.get('/ui/*', async (_req, reply) => reply.status(503).type('text/plain').send('The dashboard is not built: run `npm run build` (npm install and npm start do).'));
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/ui/',
    redirect: true,
    // the bundle's names do not change between builds; revalidate with the ETag
    cacheControl: true,
    maxAge: 0,
    setHeaders: (res) => {
      res.setHeader('content-security-policy', CSP);
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('referrer-policy', 'no-referrer');
    },
  });
}
