// A followed log (`outpost logs -f`, the dashboard's log view) against a real
// control plane and a real agent (process runtime): a replica that writes
// megabytes a second does not cost its node the connection (the agent keeps
// its logs within a budget and says what it dropped), and a connection that
// drops while a log is followed comes back (the agent stops sending that log:
// on the next connection, before it registers, it would be refused).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { LOG_BURST_CHARS, LOG_CHARS_PER_S } from '../src/agent/log-pacer.js';
import { cli, cliEnv, controlPlane, settleAgents, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';

const cp = await controlPlane();
const env = cliEnv(cp);
const work = tmpDir();
const tag = process.pid.toString(36);
const node = `logs-f${tag}`;
const apps = { fast: `lf-fast-${tag}`, slow: `lf-slow-${tag}` };
let agent: AgentProc;

/** What a followed log gives for `ms`. */
async function follow(app: string, ms: number, during?: () => void): Promise<string> {
  const res: IncomingMessage = await cp.client.logs(app, { follow: true, tail: 5 });
  let text = '';
  res.on('data', (d: Buffer) => { text += d.toString('utf8'); });
  setTimeout(() => during?.(), 300);
  await new Promise((r) => setTimeout(r, ms));
  res.destroy();
  return text;
}

const disconnects = () => agent.output().split('disconnected from the control plane').length - 1;

before(async () => {
  agent = spawnAgent(cp, ['--name', node, '--runtime', 'process', '--data-dir', tmpDir(), '--no-hub']);
  await waitFor('agent registered', () => agent.output().includes('registered with the control plane'));
  // about 6 MB a second, in 60 KB writes; and a line every 50 ms
  const fast = "const b = ('x'.repeat(99) + '\\n').repeat(600); setInterval(() => process.stdout.write(b), 10)";
  const slow = "setInterval(() => console.log('tick ' + Date.now()), 50)";
  for (const [name, script] of [[apps.fast, fast], [apps.slow, slow]] as const) {
    const r = await cli(['deploy', '-f', writeManifest(work, name, { name, command: ['node', '-e', script], placement: { nodes: [node] } }), '--wait'], env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
  }
});

after(async () => {
  for (const a of Object.values(apps)) await cli(['rm', a], env).catch(() => {});
  await settleAgents();
  agent.child.kill('SIGKILL');
  await cp.close();
});

test('a log written at megabytes a second is sent within the budget, what is dropped is said, and the node stays connected', async () => {
  const before = disconnects();
  const text = await follow(apps.fast, 4000);
  assert.ok(cp.gateway.isConnected(node), 'still connected');
  assert.equal(disconnects(), before, agent.output().slice(-2000));
  assert.match(text, /\(outpost: \d+ characters of this log were dropped: it was written faster than the 256 KiB a second logs may take of the node's connection\)/);
  assert.ok(text.length <= LOG_BURST_CHARS + 4.5 * LOG_CHARS_PER_S, `${text.length} characters in 4 s`);
  assert.ok(text.length > LOG_CHARS_PER_S, 'and the budget is used');
  // whole lines: every line is one the replica wrote, or the note
  const odd = text.split('\n').filter((l) => l && l !== 'x'.repeat(99) && !l.startsWith('(outpost: '));
  assert.deepEqual(odd, []);
});

test('the connection drops while a log is followed: the agent registers again at once and stays', async () => {
  const before = disconnects();
  const text = await follow(apps.slow, 3000, () => cp.gateway.disconnect(node, 'E_PROTOCOL'));
  assert.match(text, /tick \d+/);
  await waitFor('the agent back', () => cp.gateway.isConnected(node), 15_000);
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(cp.gateway.isConnected(node), 'still connected');
  assert.equal(disconnects(), before + 1, 'one drop, no more');
  // and a log followed now streams again
  assert.match(await follow(apps.slow, 800), /tick \d+/);
});
