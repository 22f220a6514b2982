// The CLI's own failure modes: stable codes on stderr, non-zero exits, no stack traces.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, cli, cliEnv, controlPlane, tmpDir } from './helpers.js';

const cp = await controlPlane();
const env = cliEnv(cp);
const dir = tmpDir();
after(() => cp.close());

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

test('a malformed or invalid manifest fails before any change, naming the field', async () => {
  const cases: [string, RegExp][] = [
    [file('a.yaml', 'name: [oops\n'), /^error E_BAD_YAML: manifest is not valid YAML \(line \d+, column \d+\): Flow sequence/],
    [file('b.json', '{"name": "x",'), /^error E_BAD_JSON/],
    [file('c.yaml', 'name: web\nimage: x:1\nreplicas: -2\n'), /^error E_INVALID: .*replicas/],
    [file('d.yaml', 'name: web\nimage: x:1\nports:\n  - { name: http, container: 80, proto: tcp }\n'), /^error E_INVALID: .*ports\[0\]\.proto: unknown field/],
    [file('e.yaml', 'name: Web_1\nimage: x:1\n'), /^error E_INVALID: .*name: must be/],
    [path.join(dir, 'missing.yaml'), /^error E_USAGE: cannot read .*ENOENT/],
  ];
  for (const [f, re] of cases) {
    const r = await cli(['deploy', '-f', f], env);
    assert.notEqual(r.code, 0, f);
    assert.match(r.stderr, re, f);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  assert.deepEqual(JSON.parse((await cli(['apps', '--json'], env)).stdout), []);
});

test('an unknown token and an unreachable server get their own codes', async () => {
  const bad = await cli(['apps'], { ...env, OUTPOST_TOKEN: 'nope' });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error E_UNAUTHORIZED/);
  const down = await cli(['apps'], { OUTPOST_SERVER: 'https://127.0.0.1:1', OUTPOST_TOKEN: 'x' });
  assert.equal(down.code, 1);
  assert.match(down.stderr, /^error E_NO_SERVER: cannot reach the control plane at https:\/\/127\.0\.0\.1:1/);
  // a CLI that does not trust the control plane's CA refuses to talk to it
  const untrusted = await cli(['apps'], { OUTPOST_SERVER: cp.url, OUTPOST_TOKEN: cp.adminToken, OUTPOST_CA: '', OUTPOST_DATA_DIR: tmpDir() });
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /^error E_TLS: the control plane at https:\/\/127\.0\.0\.1:\d+ could not be verified/);
});

test('the CLI finds the admin token in OUTPOST_DATA_DIR', async () => {
  const r = await cli(['nodes', '--json'], { OUTPOST_SERVER: cp.url, OUTPOST_TOKEN: '', OUTPOST_DATA_DIR: cp.dataDir });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), []);
});

test('deploying with no nodes says which filter ruled out what', async () => {
  const r = await cli(['deploy', '-f', file('ok.yaml', 'name: web\nimage: x:1\n')], env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error E_UNSCHEDULABLE: cannot place 1 replica\(s\) of web: 0 node\(s\) fit \(no nodes have joined\)/);
});

test('an agent with an unknown or malformed join token exits with E_TOKEN_INVALID, and takes none on its command line', async () => {
  const agent = (token: string) => cli(['agent', '--server', cp.url, '--runtime', 'process', '--data-dir', tmpDir()], { OUTPOST_JOIN_TOKEN: token });
  const unknown = await agent(cp.joinToken.replace(/\.[^.]+$/, '.' + 'x'.repeat(32)));
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /error E_TOKEN_INVALID: unknown join token/);
  const malformed = await agent('wrong');
  assert.match(malformed.stderr, /error E_TOKEN_INVALID: not an Outpost join token/);
  const argv = await cli(['agent', '--server', cp.url, '--join-token', cp.joinToken]);
  assert.match(argv.stderr, /unknown option '--join-token'/);
});

test('plan --snapshot reproduces the documented plan with no server, and explains failures', async () => {
  const noServer = { OUTPOST_SERVER: 'http://127.0.0.1:1', OUTPOST_TOKEN: 'x' };
  const r = await cli(['plan', '-f', 'examples/plan/app.yaml', '--snapshot', 'examples/plan/snapshot.json', '--json'], noServer);
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout);
  assert.equal(p.objective, 6.09);
  assert.deepEqual(p.placements[0].predicted, { imageMs: 0, containerMs: 120, engineMs: 300, deployMs: 420, concurrency: 1 });
  assert.deepEqual(p.routes.map((x: { site: string; predictedMs: number }) => [x.site, x.predictedMs]), [['factory-a', 3.1], ['factory-b', 36]]);
  assert.deepEqual(p.unmet, [{ site: 'factory-b', bestMs: 36, goalMs: 20 }]);

  const snap = JSON.parse(fs.readFileSync('examples/plan/snapshot.json', 'utf8'));
  const two = file('two.yaml', fs.readFileSync('examples/plan/app.yaml', 'utf8').replace(/^replicas: 1$/m, 'replicas: 2'));
  const u = await cli(['plan', '-f', two, '--snapshot', 'examples/plan/snapshot.json'], noServer);
  assert.equal(u.code, 1);
  assert.match(u.stderr, /^error E_UNSCHEDULABLE: cannot place 2 replica\(s\) of sensor-stats: 1 node\(s\) fit/);

  snap.rttMs['factory-b'] = {};
  const missing = file('missing-rtt.json', JSON.stringify(snap));
  const m = await cli(['plan', '-f', 'examples/plan/app.yaml', '--snapshot', missing], noServer);
  assert.equal(m.code, 1);
  assert.match(m.stderr, /^error E_INVALID: .*rttMs\.factory-b\.edge-1: no RTT from site factory-b to node edge-1/);
  const broken = await cli(['plan', '-f', 'examples/plan/app.yaml', '--snapshot', file('broken.json', '{"nodes": [')], noServer);
  assert.match(broken.stderr, /^error E_BAD_JSON/);
});

test('outpost --version and outpost apps load only the CLI, never the control plane, the agent, the hub, the lab or the config module', async () => {
  for (const args of [['--version'], ['apps', '--json']]) {
    const trace = path.join(dir, `trace-${args[0]}.txt`);
    const r = await cli(args, { ...env, OUTPOST_IMPORT_TRACE: trace, NODE_OPTIONS: `--import ${path.join(ROOT, 'dist/test/import-trace.js')}` });
    assert.equal(r.code, 0, r.stderr);
    const loaded = fs.readFileSync(trace, 'utf8').split('\n').filter(Boolean);
    assert.ok(loaded.some((u) => u.endsWith('/dist/src/cli/main.js')), 'the trace sees the entry module');
    const heavy = loaded.filter((u) => /\/dist\/src\/(server|agent|hub|lab|config)\/|\/node_modules\/(fastify|better-sqlite3|aedes|mqtt|dockerode|ws|pino|vega|vega-lite|@resvg|yaml)\//.test(u));
    assert.deepEqual(heavy, [], `${args.join(' ')} loaded: ${heavy.join(', ')}`);
  }
});
