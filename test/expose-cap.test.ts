// The bound on exposed apps: a route table holds at most MAX_ROUTED_APPS (the
// `routes` message's bound, past which every proxy agent would refuse its
// whole table and reconnect in a loop), so a deploy exposing one more is refused.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_ROUTED_APPS } from '../src/core/routes.js';
import { controlPlane } from './helpers.js';

const cp = await controlPlane();
after(() => cp.close());

const app = (i: number, expose = true) => ({ name: `x${i}`, command: ['true'], replicas: 0, ports: [{ name: 'p', container: 1 }], ...(expose ? { expose: { port: 10_000 + i } } : {}) });

test(`a deploy exposing app ${MAX_ROUTED_APPS + 1} is refused (E_CONFLICT, path expose, naming the bound); redeploying an exposed app is not`, async () => {
  for (let i = 0; i < MAX_ROUTED_APPS; i += 50) await Promise.all(Array.from({ length: 50 }, (_, k) => cp.client.deploy(app(i + k))));
  const err = await cp.client.deploy(app(MAX_ROUTED_APPS)).then(() => null, (e: { code?: string; path?: string; message: string }) => e);
  assert.equal(err?.code, 'E_CONFLICT');
  assert.equal(err?.path, 'expose');
  assert.match(err!.message, new RegExp(`\\(${MAX_ROUTED_APPS}\\)`));
  await cp.client.deploy({ ...app(0), replicas: 0, env: { V: '2' } });
  await cp.client.deploy(app(MAX_ROUTED_APPS, false));
});
