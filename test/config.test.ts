// Settings end to end: the real CLI reads a --config file, a flag wins over
// it, a variable too, and bad values are refused naming where they came from.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CLI, ROOT, cli, tmpDir, waitFor } from './helpers.js';

const dir = tmpDir();
const children: ReturnType<typeof spawn>[] = [];
after(() => { for (const c of children) c.kill('SIGKILL'); });

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    }).on('error', reject);
  });
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
// liveness only: the server's own CA is not what this checks
const healthy = (port: number) => new Promise<boolean>((resolve) => {
  https.get(`https://127.0.0.1:${port}/healthz`, { rejectUnauthorized: false }, (res) => { res.resume(); resolve(res.statusCode === 200); }).on('error', () => resolve(false));
});

/** Runs `outpost server ARGS` until it answers on `port`, then stops it. */
async function serverAnswers(args: string[], port: number): Promise<void> {
  const child = spawn(process.execPath, [CLI, 'server', ...args], { cwd: ROOT, env: { ...process.env, OUTPOST_LOG_LEVEL: 'warn', OUTPOST_DATA_DIR: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise((r) => child.on('exit', r));
  try {
    await waitFor(`outpost server ${args.join(' ')} on port ${port}`, async () => (child.exitCode !== null ? Promise.reject(new Error(err)) : healthy(port)), 15_000);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

test('outpost server takes its port and data dir from --config; a flag wins over the file', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const conf = path.join(dir, 'server.yaml');
  fs.writeFileSync(conf, `# a relative dataDir is taken from this file's directory\nlisten: 127.0.0.1:${p1}\ndataDir: from-file\nnodeTimeoutMs: 20000\n`);
  await serverAnswers(['--config', conf], p1);
  assert.ok(fs.existsSync(path.join(dir, 'from-file', 'admin.token')), 'the data dir of the file');

  const flagDir = path.join(dir, 'from-flag');
  await serverAnswers(['--config', conf, '--listen', `127.0.0.1:${p2}`, '--data-dir', flagDir], p2);
  assert.ok(fs.existsSync(path.join(flagDir, 'admin.token')), 'the data dir of the flag');
  assert.equal(await healthy(p1), false, 'nothing on the file\'s port');

  const shown = await cli(['server', '--config', conf, '--listen', `127.0.0.1:${p2}`, '--print-config'], { OUTPOST_NODE_TIMEOUT_MS: '30000', OUTPOST_DATA_DIR: '' });
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, new RegExp(`^listen: "${esc(`127.0.0.1:${p2}`)}" +# flag --listen$`, 'm'));
  assert.match(shown.stdout, new RegExp(`^dataDir: "${esc(path.join(dir, 'from-file'))}" +# file ${esc(conf)}$`, 'm'));
  assert.match(shown.stdout, /^nodeTimeoutMs: 30000 +# env OUTPOST_NODE_TIMEOUT_MS$/m);
  assert.match(shown.stdout, /^streamRetentionDays: 30 +# default$/m);
});

test('bad settings are E_USAGE (exit 2) naming where they came from', async () => {
  const typo = path.join(dir, 'typo.yaml');
  fs.writeFileSync(typo, 'listen: 127.0.0.1:0\nnodeTimeout: 20000\n');
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['server'], { OUTPOST_NODE_TIMEOUT_MS: 'abc' }, /^error E_USAGE: OUTPOST_NODE_TIMEOUT_MS=abc: must be a number of ms >= 1000\n$/],
    [['server', '--config', typo], {}, /^error E_USAGE: .*typo\.yaml: unknown key "nodeTimeout" for outpost server \(it takes /],
    [['server', '--listen', 'nowhere'], {}, /^error E_USAGE: --listen=nowhere: must be HOST:PORT/],
    [['agent', '--server', 'http://127.0.0.1:1', '--runtime', 'podman'], {}, /^error E_USAGE: --runtime=podman: must be one of auto, docker, process/],
    [['agent', '--server', 'http://127.0.0.1:1', '--runtime', 'process', '--join-token-file', '/nonexistent/token'], {}, /^error E_USAGE: --join-token-file \/nonexistent\/token: ENOENT/],
    [['hub', '--config', path.join(dir, 'none.yaml')], {}, /^error E_USAGE: cannot read --config .*none\.yaml: ENOENT/],
  ];
  for (const [args, env, re] of cases) {
    const r = await cli(args, env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

test('outpost up and outpost hub read the variables the agent reads', async () => {
  const up = await cli(['up', '--print-config'], { OUTPOST_NODE_TIMEOUT_MS: '20000', OUTPOST_HUB_HTTP_PORT: '0' });
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, /^nodeTimeoutMs: 20000 +# env OUTPOST_NODE_TIMEOUT_MS$/m);
  assert.match(up.stdout, /^hubHttpPort: 0 +# env OUTPOST_HUB_HTTP_PORT$/m);
  const hub = await cli(['hub', '--print-config', '--hub-http-port', '7090'], { OUTPOST_HUB_HTTP_PORT: '0', OUTPOST_HUB_MQTT_PORT: '0' });
  assert.match(hub.stdout, /^hubHttpPort: 7090 +# flag --hub-http-port$/m);
  assert.match(hub.stdout, /^hubMqttPort: 0 +# env OUTPOST_HUB_MQTT_PORT$/m);
});
