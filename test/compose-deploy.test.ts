// End to end: a Compose file of three services, two of them built from
// contexts beside it (FROM the local base image), deployed with one
// `outpost deploy -f` through a real control plane and a Podman agent: the
// images are built and pushed to the local registry, the services start in
// depends_on order (the api waits for the store to be healthy), reach each
// other by service name, read a config file and a substituted variable, and
// the app answers at its endpoint.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { ReplicaRecord } from '../src/core/types.js';
import { LABELS } from '../src/agent/drivers/driver.js';
import { engineOrSkip, EXAMPLE_IMAGE } from './engine.js';
import { cli, cliEnv, controlPlane, spawnAgent, tmpDir, waitFor, type AgentProc } from './helpers.js';

const { docker, skip } = await engineOrSkip();
const registry = process.env.OUTPOST_TEST_REGISTRY ?? '127.0.0.1:5000';
const reachable = await fetch(`http://${registry}/v2/`).then((r) => r.ok, () => false);
const why = skip || (!reachable && `no registry answers at ${registry}`);
if (why && !skip) console.log(`# compose deploy test skipped: ${why}`);

const STORE = `
const http = require('http');
http.createServer((q, s) => s.end(JSON.stringify({ from: 'store', host: require('os').hostname() }))).listen(8081);
`;
const API = `
const http = require('http');
const fs = require('fs');
http.createServer((q, s) => {
  http.get('http://store:8081/', (r) => {
    let body = '';
    r.on('data', (c) => (body += c));
    r.on('end', () => s.end(JSON.stringify({ greeting: fs.readFileSync('/etc/api/greeting.txt', 'utf8').trim(), site: process.env.SITE, store: JSON.parse(body) })));
  }).on('error', (e) => { s.statusCode = 502; s.end(String(e)); });
}).listen(8080);
`;

describe('a Compose file deployed with outpost deploy -f', { skip: why }, () => {
  const node = `edge-compose-${process.pid}`;
  const app = `compose-e2e-${process.pid}`;
  let cp: Awaited<ReturnType<typeof controlPlane>>;
  let env: NodeJS.ProcessEnv;
  let agent: AgentProc;
  const mine = async () => docker!.listContainers({ all: true, filters: { label: [`${LABELS.node}=${node}`] } });

  before(async () => {
    cp = await controlPlane();
    env = cliEnv(cp);
    agent = spawnAgent(cp, ['--name', node, '--runtime', 'docker', '--data-dir', tmpDir()]);
    await waitFor('agent registered', () => agent.output().includes('registered with the control plane'));
  });
  after(async () => {
    await cli(['rm', app], env);
    await waitFor('containers removed', async () => (await mine()).length === 0, 15_000).catch(() => {});
    agent.child.kill('SIGKILL');
    for (const c of await mine()) await docker!.getContainer(c.Id).remove({ force: true }).catch(() => {});
    for (const img of await docker!.listImages()) {
      for (const t of img.RepoTags ?? []) if (t.includes(`/${app}-`)) await docker!.getImage(t).remove({ force: true }).catch(() => {});
    }
    await cp.close();
  });

  test('built, pushed, started in order, reaching each other by name, answering', async () => {
    const base = (await docker!.listImages()).flatMap((i) => i.RepoTags ?? []).find((t) => t.startsWith('localhost/outpost-node-base:'))!;
    const dir = path.join(tmpDir(), 'plant');
    const write = (rel: string, text: string) => {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), text);
    };
    write('store/server.js', STORE);
    write('store/Dockerfile', `FROM ${base}\nCOPY server.js /app/\nCMD ["/usr/bin/node", "/app/server.js"]\n`);
    write('api/server.js', API);
    write('api/Dockerfile', `FROM ${base}\nCOPY server.js /app/\nUSER 65534\nCMD ["/usr/bin/node", "/app/server.js"]\n`);
    write('greeting.txt', 'hello from a config\n');
    write('.env', 'SITE=line-7\n');
    write('docker-compose.yml', `
services:
  api:
    build: ./api
    ports: ["8080:8080"]
    environment:
      SITE: \${SITE:?}
    configs:
      - source: greeting
        target: /etc/api/greeting.txt
    depends_on:
      store:
        condition: service_healthy
    restart: unless-stopped
  store:
    build:
      context: ./store
    healthcheck:
      test: ["CMD", "/usr/bin/node", "-e", "require('http').get('http://127.0.0.1:8081/', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))"]
      interval: 1s
      timeout: 2s
      retries: 5
    volumes:
      - store-data:/data
  stats:
    image: ${EXAMPLE_IMAGE}
    mem_limit: 128m
volumes:
  store-data:
configs:
  greeting:
    file: ./greeting.txt
`);
    const r = await cli(['deploy', '-f', path.join(dir, 'docker-compose.yml'), '--name', app, '--registry', registry, '--wait', '--timeout', '180'], env);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /building api from .*\npushing .*\nbuilding store from .*\npushing /);
    assert.match(r.stdout, /ready +http:\/\/127\.0\.0\.1:\d+/);
    const [rep] = JSON.parse((await cli(['replicas', app, '--json'], env)).stdout) as ReplicaRecord[];
    assert.equal(rep!.state, 'running');
    const answer = await (await fetch(rep!.endpoint!)).json() as { greeting: string; site: string; store: { from: string } };
    assert.deepEqual({ greeting: answer.greeting, site: answer.site, from: answer.store.from }, { greeting: 'hello from a config', site: 'line-7', from: 'store' });
    const cs = await mine();
    assert.equal(cs.length, 3, 'one container per service');
    const images = cs.map((c) => c.Image).sort();
    assert.ok(images.filter((i) => i.startsWith(`${registry}/${app}-`)).length === 2, `two built images from the registry: ${images.join(', ')}`);
  });
});
