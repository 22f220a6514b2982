// The example app against the seed's own Flask service (run with Debian's
// python3-flask and python3-numpy when present): same bodies, same answers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from '../src/agent/health.js';
import { ROOT, postJson, waitFor } from './helpers.js';

const SEED = path.resolve(ROOT, '../shared/peers/seed_flask_app.py');
const children: ChildProcess[] = [];
after(() => children.forEach((c) => c.kill()));

async function serve(cmd: string, args: string[], port: number, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const c = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: 'ignore' });
  children.push(c);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${cmd} on ${port}`, async () => (await fetch(url + '/')).ok, 15_000);
  return url;
}

const port = await freePort('127.0.0.1');
const ours = await serve(process.execPath, ['examples/sensor-stats/server.mjs'], port, { PORT: String(port), HOST: '127.0.0.1', MAX_BODY_BYTES: '100000' });

test('the seed\'s paths and shapes', async () => {
  assert.equal(await (await fetch(ours + '/')).text(), 'Hello, World!');
  assert.equal((await fetch(ours + '/healthz')).status, 200);
  assert.deepEqual((await postJson(`${ours}/process_data`, '[1,2,3]')).json, { processed_data: 2 });
  assert.deepEqual((await postJson(`${ours}/storage_data`, '[1,2,3]')).json, { stored_data: 6 });
  const c = (await postJson(`${ours}/compute_data`, '[1,2,3]')).json as Record<string, number>;
  assert.equal(c.computed_data, 6);
  assert.equal(c.product_sign, 1);
  assert.ok(Math.abs(c.log_abs_product! - Math.log(6)) < 1e-12);
});

test('a long array whose product underflows keeps computed_data (0, as the seed) and adds a usable log', async () => {
  const xs = Array.from({ length: 1000 }, (_, i) => (i % 2 ? -0.001 : 0.002));
  const c = (await postJson(`${ours}/compute_data`, JSON.stringify(xs))).json as Record<string, number>;
  assert.equal(c.computed_data, 0);
  const expected = 500 * Math.log(0.001) + 500 * Math.log(0.002);
  assert.ok(Math.abs(c.log_abs_product! - expected) < 1e-6);
  assert.equal(c.product_sign, 1); // 500 negative factors
});

test('bad bodies get a 400 with a clear code, never a crash', async () => {
  const cases: [string, string, number][] = [
    ['{not json', 'E_BAD_JSON', 400],
    ['{"a":1}', 'E_NOT_ARRAY', 400],
    ['[1,"2",3]', 'E_NOT_NUMBER', 400],
    ['[1,null]', 'E_NOT_NUMBER', 400],
    ['[[1,2]]', 'E_NOT_NUMBER', 400],
    ['[1e400]', 'E_NOT_NUMBER', 400],
    [JSON.stringify(Array(30000).fill(1.5)), 'E_TOO_LARGE', 413],
  ];
  for (const [body, code, status] of cases) {
    const r = await postJson(`${ours}/process_data`, body);
    assert.equal(r.status, status, body.slice(0, 20));
    assert.equal((r.json as { error: { code: string } }).error.code, code);
  }
  assert.equal((await postJson(`${ours}/process_data`, '[]')).status, 400);
  assert.equal((await fetch(`${ours}/process_data`)).status, 405);
  assert.equal((await fetch(ours + '/healthz')).status, 200, 'still serving');
});

const flaskOk = fs.existsSync(SEED) && spawnSync('python3', ['-c', 'import flask, numpy'], { stdio: 'ignore' }).status === 0;
test('the same bodies give the same numbers as the seed\'s Flask service', { skip: flaskOk ? false : 'python3-flask/python3-numpy or the seed listing are not here' }, async () => {
  const fport = await freePort('127.0.0.1');
  const seed = await serve('python3', [SEED, String(fport)], fport);
  let rnd = 42;
  const rand = () => ((rnd = (rnd * 1103515245 + 12345) % 2147483648) / 2147483648) * 6 - 3;
  let compared = 0;
  for (const size of [1, 3, 7, 8, 9, 100, 128, 129, 1000, 4097]) {
    const body = JSON.stringify(Array.from({ length: size }, rand));
    for (const [p, key] of [['/process_data', 'processed_data'], ['/storage_data', 'stored_data'], ['/compute_data', 'computed_data']] as const) {
      const a = (await postJson(ours + p, body)).json as Record<string, number>;
      const b = (await postJson(seed + p, body)).json as Record<string, number>;
      assert.equal(a[key], b[key], `${p} with ${size} numbers`);
      compared++;
    }
  }
  assert.equal(compared, 30);
});
