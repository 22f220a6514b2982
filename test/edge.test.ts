// Edge nodes are closed by default (process runtime): replicas run as an
// unprivileged user, in a cgroup that enforces their memory limit, and cannot
// read the agent's files; the CLI does not pass a replica's terminal escapes
// on. A real control plane, real agent processes, real replicas.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { ReplicaRecord } from '../src/core/types.js';
import { cli, cliEnv, controlPlane, settleAgents, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'the agent must be root to switch user and make cgroups';

const cp = await controlPlane();
const env = cliEnv(cp);
const work = tmpDir();
// a data dir made beforehand, open to all, with a readable file in it (as the issue found them)
const dataDir = tmpDir();
const agentDir = path.join(dataDir, 'agent');
fs.chmodSync(dataDir, 0o755);
fs.mkdirSync(path.join(agentDir, 'processes'), { recursive: true, mode: 0o755 });
fs.chmodSync(agentDir, 0o755);
fs.writeFileSync(path.join(agentDir, 'stale.json'), '{}', { mode: 0o644 });
const rootDir = tmpDir();
const agents: AgentProc[] = [];
const start = (name: string, dir: string, extra: string[] = [], e: NodeJS.ProcessEnv = {}, user?: { uid: number; gid: number }) => {
  const a = spawnAgent(cp, ['--name', name, '--runtime', 'process', '--data-dir', dir, ...extra], e, user);
  agents.push(a);
  return a;
};
const agent = start('edge-closed', dataDir);
const rootAgent = start('edge-root', rootDir, [], { OUTPOST_ALLOW_ROOT: 'true' });
// an agent that is not root (nobody here): it cannot switch user or make cgroups
const userDir = tmpDir();
if (isRoot) fs.chownSync(userDir, 65534, 65534);
const userAgent = isRoot ? start('edge-user', userDir, [], {}, { uid: 65534, gid: 65534 }) : null;

after(async () => {
  for (const app of ['who', 'snoop', 'hog', 'who-root', 'who-user']) await cli(['rm', app], env).catch(() => {});
  await settleAgents();
  for (const a of agents) a.child.kill('SIGKILL');
  await cp.close();
});

const idle = ['node', '-e', 'setInterval(() => {}, 1000)'];

async function deployOn(node: string, doc: object): Promise<ReplicaRecord> {
  const name = (doc as { name: string }).name;
  // the agent enrols and registers before it can take a replica
  await waitFor(`${node} ready`, async () => (await cp.client.node(node).catch(() => null))?.state === 'ready', 30_000);
  const r = await cli(['deploy', '-f', writeManifest(work, name, { ...doc, placement: { nodes: [node] } }), '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  return waitFor(`${name} running`, async () => {
    const [rep] = JSON.parse((await cli(['replicas', name, '--json'], env)).stdout) as ReplicaRecord[];
    return rep?.state === 'running' ? rep : null;
  }, 30_000);
}

function state(dir: string, replica: string): { pid: number; cgroup: { memory: string; pids: string } | null } {
  return JSON.parse(fs.readFileSync(path.join(dir, 'agent', 'processes', `${replica}.json`), 'utf8'));
}

/** real, effective, saved and filesystem uid of a process, from the kernel */
function uids(pid: number): number[] {
  const line = /^Uid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return line.trim().split(/\s+/).map(Number);
}

const mode = (p: string) => fs.statSync(p).mode & 0o777;

test('a process replica runs as nobody, with no groups, in its own cgroup with its limits', { skip }, async () => {
  await waitFor('agent says who replicas run as', () => agent.output().includes('process replicas run as nobody'));
  const rep = await deployOn('edge-closed', { name: 'who', command: idle, resources: { memoryMiB: 80 } });
  const st = state(dataDir, rep.id);
  assert.deepEqual(uids(st.pid), [65534, 65534, 65534, 65534]);
  assert.match(fs.readFileSync(`/proc/${st.pid}/status`, 'utf8'), /^Groups:\s*$/m, 'root\'s supplementary groups are dropped');
  assert.ok(st.cgroup, 'the replica has a cgroup');
  // the kernel's view: the process is in the cgroup, and the cgroup holds the limits
  assert.match(fs.readFileSync(`/proc/${st.pid}/cgroup`, 'utf8'), new RegExp(`:memory:.*/outpost/${rep.id}\\.[0-9a-f]{8}$|^0::/outpost.slice/${rep.id}\\.[0-9a-f]{8}$`, 'm'));
  const memFile = ['memory.limit_in_bytes', 'memory.max'].map((f) => path.join(st.cgroup!.memory, f)).find((f) => fs.existsSync(f))!;
  assert.equal(Number(fs.readFileSync(memFile, 'utf8')), 80 * 1048576);
  assert.equal(fs.readFileSync(path.join(st.cgroup.pids, 'pids.max'), 'utf8').trim(), '1024');
});

test('the agent\'s data dir and files are its own (0700/0600), even when made open beforehand', { skip }, async () => {
  assert.equal(mode(agentDir), 0o700);
  assert.equal(mode(path.join(agentDir, 'processes')), 0o700);
  assert.equal(mode(path.join(agentDir, 'stale.json')), 0o600);
  await waitFor('desired.json saved', () => fs.existsSync(path.join(agentDir, 'desired.json')));
  assert.equal(mode(path.join(agentDir, 'desired.json')), 0o600);
  const files = fs.readdirSync(path.join(agentDir, 'processes'));
  assert.ok(files.some((f) => f.endsWith('.log')) && files.some((f) => f.endsWith('.json')));
  for (const f of files) assert.equal(mode(path.join(agentDir, 'processes', f)), 0o600, f);
});

test('a replica cannot read the agent\'s files; its terminal escapes reach the CLI as text', { skip }, async () => {
  const desired = path.join(agentDir, 'desired.json');
  const script = 'printf "\\033]0;owned\\007\\033[2Jhello\\n"; cat "$1"; echo "cat exit $?"; ls "$2"; echo "ls exit $?"; exec sleep 600';
  await deployOn('edge-closed', { name: 'snoop', command: ['sh', '-c', script, 'sh', desired, path.join(agentDir, 'processes')] });
  const out = await waitFor('its output', async () => {
    const r = await cli(['logs', 'snoop'], env);
    return r.stdout.includes('ls exit') ? r.stdout : null;
  });
  assert.match(out, /desired\.json: Permission denied/);
  assert.match(out, /cat exit 1/);
  assert.match(out, /Permission denied/);
  assert.doesNotMatch(out, /"assignments"/, 'nothing of desired.json is shown');
  // the escapes are shown, not obeyed
  assert.ok(out.includes('^[]0;owned^G^[[2Jhello'), out);
  assert.ok(!out.includes('\x1b') && !out.includes('\x07'));
});

test('a replica that allocates past its memory limit is killed at the limit, and its lastExit says OOMKilled', { skip }, async () => {
  const hog = { name: 'hog', command: ['node', '-e', 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))'], resources: { memoryMiB: 64 }, restart: { policy: 'never' }, placement: { nodes: ['edge-closed'] } };
  const r = await cli(['deploy', '-f', writeManifest(work, 'hog', hog), '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  const rep = await waitFor('hog stopped', async () => {
    const [x] = JSON.parse((await cli(['replicas', 'hog', '--json'], env)).stdout) as ReplicaRecord[];
    return x?.lastExit ? x : null;
  }, 60_000);
  assert.equal(rep.state, 'failed');
  assert.equal(rep.lastExit!.code, 'E_EXITED');
  assert.match(rep.lastExit!.message, /OOMKilled at the 64 MiB memory limit/);
  // the cgroup (kept until the replica is removed) never held more than the limit
  const st = state(dataDir, rep.id);
  const peak = ['memory.max_usage_in_bytes', 'memory.peak'].map((f) => path.join(st.cgroup!.memory, f)).find((f) => fs.existsSync(f));
  if (peak) assert.ok(Number(fs.readFileSync(peak, 'utf8')) <= 64 * 1048576);
  await cli(['rm', 'hog'], env);
  await waitFor('its cgroup removed', () => !fs.existsSync(st.cgroup!.memory), 10_000);
});

test('with --allow-root (OUTPOST_ALLOW_ROOT=true) a root agent runs its replicas as root', { skip }, async () => {
  await waitFor('agent says so', () => rootAgent.output().includes('process replicas run as root (--allow-root)'));
  const rep = await deployOn('edge-root', { name: 'who-root', command: idle });
  assert.deepEqual(uids(state(rootDir, rep.id).pid), [0, 0, 0, 0]);
});

test('an agent that is not root runs replicas as itself, without a cgroup, and says so once', { skip }, async () => {
  const out = await waitFor('its start-up log', () => (userAgent!.output().includes('agent started') ? userAgent!.output() : null));
  assert.equal(out.split('the agent is not root (uid 65534): process replicas run as the agent\'s own user').length - 1, 1);
  assert.equal(out.split('no usable cgroup: process replicas run without memory, CPU or pids limits').length - 1, 1);
  const rep = await deployOn('edge-user', { name: 'who-user', command: idle });
  const st = state(userDir, rep.id);
  assert.deepEqual(uids(st.pid), [65534, 65534, 65534, 65534]);
  assert.equal(st.cgroup, null);
});
