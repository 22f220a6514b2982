// outpost exec end to end: a real control plane, real agents (the process
// runtime, and Podman through its Docker API), the real CLI. Each runtime runs
// the same checks: output streams with stdout and stderr apart, exit codes,
// stdin, a TTY, output held back for a client that does not read, a client
// that leaves mid-command (its command is killed: looked for in /proc), the
// refusals (a viewer's token, a missing replica or container, an offline node),
// and each session's exec.started and exec.ended events and its count.
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AuditEntry, ReplicaRecord } from '../src/core/types.js';
import type { OutpostEvent } from '../src/core/events.js';
import { LABELS } from '../src/agent/drivers/driver.js';
import WebSocket from 'ws';
import { EXEC_BEARER_PREFIX, EXEC_SUBPROTOCOL, EXEC_WINDOW } from '../src/contract/exec.js';
import type { ExecConnection } from '../src/contract/exec-client.js';
import { OutpostError } from '../src/core/errors.js';
import { engineOrSkip, EXAMPLE_IMAGE } from './engine.js';
import { CLI, ROOT, call, cli, cliEnv, controlPlane, settleAgents, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';
import { spawn } from 'node:child_process';

const { docker, skip } = await engineOrSkip();
const cp = await controlPlane();
const env = cliEnv(cp);
const work = tmpDir();
const agents: AgentProc[] = [];
const groups: string[] = [];
const tag = process.pid.toString(36);
/** the example image with a shell and a few coreutils beside node (they need only libc, which it has) */
const PROBE_IMAGE = 'localhost/outpost-exec-probe:1';

interface Runtime { name: 'process' | 'docker'; node: string; app: string; manifest: object; skip: string | false }
const runtimes: Runtime[] = [
  {
    name: 'process', node: `exec-p${tag}`, app: `xp${tag}`, skip: false,
    manifest: { command: ['node', 'examples/sensor-stats/server.mjs'], ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' } },
  },
  {
    name: 'docker', node: `exec-c${tag}`, app: `xc${tag}`, skip,
    manifest: { image: PROBE_IMAGE, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' } },
  },
];

after(async () => {
  for (const app of [...runtimes.map((r) => r.app), ...groups]) await cli(['rm', app], env).catch(() => {});
  await settleAgents();
  if (docker) {
    await waitFor('containers removed', async () => (await docker.listContainers({ all: true, filters: { label: [`${LABELS.node}=${runtimes[1]!.node}`] } })).length === 0, 15_000).catch(() => {});
  }
  for (const a of agents) a.child.kill('SIGKILL');
  await cp.close();
});

/** pids whose command line is exactly `argv` */
function processesRunning(argv: string[]): number[] {
  const want = argv.join('\0') + '\0';
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === want ? [Number(p)] : [];
    } catch {
      return [];
    }
  });
}

/** Runs the CLI as a child we can kill, collecting its output. */
function cliChild(args: string[], e: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...e }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

/** A series' value at the control plane's GET /metrics (NaN: not there). */
async function metric(series: string): Promise<number> {
  const text = await cp.client.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}
const sessions = (outcome: string) => metric(`outpost_exec_sessions_total{outcome="${outcome}"}`);

/** Everything a session wrote, and its exit status. */
async function collect(conn: ExecConnection): Promise<{ stdout: Buffer; stderr: Buffer; code: number }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  conn.on('stdout', (b) => out.push(b));
  conn.on('stderr', (b) => err.push(b));
  const code = await conn.exited;
  return { stdout: Buffer.concat(out), stderr: Buffer.concat(err), code };
}

for (const rt of runtimes) {
  describe(`exec in a ${rt.name} replica`, { skip: rt.skip }, () => {
    let replica: ReplicaRecord;
    const exec = (args: string[], stdin?: string, e = env) => cli(['exec', ...args], e, stdin);

    before(async () => {
      if (rt.name === 'docker') {
        const ctx = path.join(work, 'probe');
        fs.mkdirSync(ctx, { recursive: true });
        // dash as sh; coreutils' own binaries
        for (const [from, to] of [['/bin/dash', 'sh'], ['/usr/bin/true', 'true'], ['/usr/bin/cat', 'cat'], ['/usr/bin/sleep', 'sleep'], ['/usr/bin/tty', 'tty'], ['/usr/bin/stty', 'stty'], ['/usr/bin/head', 'head']] as const) fs.copyFileSync(from, path.join(ctx, to));
        fs.writeFileSync(path.join(ctx, 'Containerfile'), `FROM ${EXAMPLE_IMAGE}\nCOPY sh true cat sleep tty stty head /usr/bin/\n`);
        execFileSync('podman', ['build', '--pull=never', '-q', '-t', PROBE_IMAGE, ctx]);
      }
      const a = spawnAgent(cp, ['--name', rt.node, '--runtime', rt.name, '--data-dir', tmpDir(), '--no-hub']);
      agents.push(a);
      await waitFor('agent registered', () => a.output().includes('registered with the control plane'));
      const r = await cli(['deploy', '-f', writeManifest(work, rt.app, { name: rt.app, ...rt.manifest, placement: { nodes: [rt.node] } }), '--wait', '--timeout', '120'], env);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      replica = (await cp.client.appReplicas(rt.app))[0]!;
      assert.equal(replica.state, 'running');
    });

    test('output streams with stdout and stderr apart; the exit status is the CLI\'s', async () => {
      const r = await exec([rt.app, '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stdout, 'out\n');
      assert.equal(r.stderr, 'err\n');
      const t = await exec([rt.app, '--', 'true']);
      assert.equal(t.code, 0, t.stderr);
      assert.equal(t.stdout + t.stderr, '');
      // a command that is not there: why on stderr, and 127 as a shell says it
      const missing = await exec([rt.app, '--', 'no-such-command-here']);
      assert.equal(missing.code, 127);
      assert.match(missing.stderr, /no-such-command-here/);
    });

    test('the session is audited: who, the replica, the command and its exit status; never the output', async () => {
      const marker = `audit-${randomBytes(4).toString('hex')}`;
      const r = await exec(['--replica', replica.id, rt.app, '--', 'sh', '-c', `echo ${marker}-output; exit 3`]);
      assert.equal(r.code, 3, r.stderr);
      const entry = await waitFor('the exec audit entry', async () => (await cp.client.audit({ since: 0 })).find((e: AuditEntry) => e.exec?.command.join(' ').includes(marker)));
      assert.equal(entry.action, 'app:exec');
      assert.equal(entry.principal.id, 'opt_admin');
      assert.equal(entry.target, rt.app);
      assert.deepEqual({ ...entry.exec, durationMs: 0 }, {
        replica: replica.id, node: rt.node, container: rt.app, command: ['sh', '-c', `echo ${marker}-output; exit 3`], tty: false, stdin: false, exitCode: 3, ended: 'exit', durationMs: 0,
      });
      const log = await cp.client.audit({ since: 0 });
      assert.ok(!JSON.stringify(log).includes(`${marker}-output\n`), 'no output in the audit log');
      assert.equal(log.filter((e) => e.exec?.command.join(' ').includes(marker)).length, 1, 'one entry per session');
      assert.deepEqual(log.filter((e) => e.request === `GET /v1/apps/${rt.app}/exec` && !e.exec && e.status < 400), [], 'a session is not audited again as an answer');
    });

    test('each session is in the event log (exec.started, then exec.ended with its exit status; never the output) and in the metrics', async () => {
      const before = { exited: await sessions('exited'), closed: await sessions('closed') };
      const { last } = await cp.client.events({ limit: 0 });
      const marker = `event-${randomBytes(4).toString('hex')}`;
      const ofMarker = async (n: number) => {
        const ev = (await cp.client.events({ since: String(last), app: rt.app })).events.filter((e) => String(e.data.command).includes(marker));
        return ev.length === n ? ev : null;
      };
      // the output (MARKER-out) is not in the command line, so it can be looked for
      const r = await exec(['--replica', replica.id, rt.app, '--', 'sh', '-c', `printf '%s-%s\\n' ${marker} out; exit 5`]);
      assert.equal(r.code, 5, r.stderr);
      assert.equal(r.stdout, `${marker}-out\n`);
      const [started, ended] = await waitFor('exec.started and exec.ended', () => ofMarker(2));
      const where = (e: OutpostEvent) => [e.app, e.node, e.replica, e.revision, e.data.by, e.data.command, e.data.container, e.data.tty, e.data.stdin];
      const expected = [rt.app, rt.node, replica.id, 1, 'admin (opt_admin)', `sh -c 'printf '\\''%s-%s\\n'\\'' ${marker} out; exit 5'`, rt.app, false, false];
      assert.deepEqual([started!.type, ...where(started!)], ['exec.started', ...expected]);
      assert.deepEqual([ended!.type, ...where(ended!)], ['exec.ended', ...expected]);
      assert.ok(ended!.seq > started!.seq);
      assert.deepEqual([ended!.data.exitCode, ended!.data.ended, ended!.reason, typeof ended!.data.durationMs], [5, 'exit', null, 'number']);
      assert.ok(!JSON.stringify([started, ended]).includes(`${marker}-out`), 'no output in the events');
      // arguments can hold credentials: a reader without audit:read (a viewer) sees the program only
      const viewer = await cp.client.createApiToken({ name: `events-viewer-${rt.name}`, role: 'viewer' });
      const seen = await call(cp, 'GET', `/v1/events?since=${started!.seq - 1}&app=${rt.app}&limit=2`, { token: viewer.token });
      const asViewer = (seen.body as unknown as { events: OutpostEvent[] }).events.find((e) => e.seq === started!.seq)!;
      assert.equal(asViewer.data.command, 'sh …');
      assert.ok(!JSON.stringify(seen.body).includes(marker), 'no argument in a viewer\'s events');
      assert.equal(await sessions('exited'), before.exited + 1);

      // a session whose client leaves: counted as closed, its command killed (no exit status), and active while it ran
      const conn = await cp.client.exec(rt.app, { cmd: ['sleep', '171.5'] });
      await new Promise((resolve) => conn.once('started', resolve));
      assert.equal(await metric('outpost_exec_sessions_active'), 1);
      conn.close();
      await assert.rejects(conn.exited);
      await waitFor('the session over', async () => (await metric('outpost_exec_sessions_active')) === 0);
      const closed = await waitFor('its exec.ended', async () => (await cp.client.events({ since: String(ended!.seq), app: rt.app })).events.find((e) => e.type === 'exec.ended' && e.data.command === 'sleep 171.5'));
      assert.deepEqual([closed.data.exitCode, closed.data.ended], [null, 'client closed']);
      assert.equal(await sessions('closed'), before.closed + 1);
    });

    test('-i sends stdin; a megabyte goes through cat both ways, within the windows', async () => {
      const r = await exec(['-i', rt.app, '--', 'cat'], 'hello\nworld\n');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'hello\nworld\n');
      const big = randomBytes(1024 * 1024);
      const conn = await cp.client.exec(rt.app, { cmd: ['cat'], stdin: true });
      const done = collect(conn);
      for (let at = 0; at < big.length; at += 50_000) {
        if (!conn.write(big.subarray(at, at + 50_000))) await new Promise((resolve) => conn.once('drain', resolve));
      }
      conn.end();
      const got = await done;
      assert.equal(got.code, 0);
      assert.equal(createHash('sha256').update(got.stdout).digest('hex'), createHash('sha256').update(big).digest('hex'));
      // without -i the command reads end of file at once
      const noIn = await exec([rt.app, '--', 'cat'], 'ignored');
      assert.equal(noIn.code, 0);
      assert.equal(noIn.stdout, '');
    });

    test('-t gives the command a TTY of the size asked; its resizes follow', async () => {
      const r = await exec(['-t', rt.app, '--', 'tty']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^\/dev\/pts\/\d+\r?\n$/);
      const sized = await collect(await cp.client.exec(rt.app, { cmd: ['stty', 'size'], tty: true, cols: 100, rows: 40 }));
      assert.equal(sized.stdout.toString().trim(), '40 100');
      // a resize mid-command: the command sees the new size (Podman applies a resize through conmon a moment after
      // its API answers, so the line that asks may overtake it: it is asked until the answer comes)
      const conn = await cp.client.exec(rt.app, { cmd: ['sh', '-c', 'while read x; do [ "$x" = q ] && exit 0; stty size; done'], tty: true, stdin: true, cols: 80, rows: 24 });
      let text = '';
      conn.on('stdout', (b) => { text += b.toString(); });
      await new Promise((resolve) => conn.once('started', resolve));
      conn.resize(132, 50);
      await waitFor('the new size', () => { conn.write(Buffer.from('s\r')); return /50 132/.test(text); }, 10_000, 200);
      conn.write(Buffer.from('q\r'));
      assert.equal(await conn.exited, 0);
    });

    test('a client that does not read holds the output back: the command waits, the control plane holds at most a window', async () => {
      const conn = await cp.client.exec(rt.app, { cmd: ['head', '-c', '67108864', '/dev/zero'] });
      let got = 0;
      conn.on('stdout', (b) => { got += b.length; });
      // from its start on, it reads nothing (a paused socket delivers no message, 'started' included: so pause after it)
      await new Promise((resolve) => conn.once('started', () => { conn.pause(); resolve(null); }));
      const argv = ['head', '-c', '67108864', '/dev/zero'];
      await waitFor('the command to run', () => processesRunning(argv).length === 1);
      // the pipes and sockets between fill, then the command blocks on its pipe: still there, most of its output unread
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(processesRunning(argv).length, 1, 'the command waits for its reader');
      assert.ok(cp.gateway.exec.stats().outstandingBytes <= EXEC_WINDOW, `at most a window held (${cp.gateway.exec.stats().outstandingBytes})`);
      conn.resume();
      assert.equal(await conn.exited, 0);
      await waitFor('all output', () => got === 67108864);
    });

    test('a client that leaves mid-command: the command and what it started are killed', async () => {
      // a marker in the arguments finds the process in /proc, whatever runs it
      const secs = `${4000 + Math.floor(Math.random() * 1000)}.${Math.floor(Math.random() * 1000)}`;
      const c = cliChild(['exec', rt.app, '--', 'sh', '-c', `echo started; sleep ${secs}; echo never`], env);
      await waitFor('the command to start', () => c.out().includes('started'));
      const pids = await waitFor('the sleep to run', () => { const p = processesRunning(['sleep', secs]); return p.length ? p : null; });
      c.child.kill('SIGKILL');
      await waitFor('the command killed', () => processesRunning(['sleep', secs]).length === 0, 15_000);
      assert.ok(pids.length === 1);
      // through the client library too, with a TTY (the command is in a session of its own there)
      const secs2 = `${5000 + Math.floor(Math.random() * 1000)}.5`;
      const conn = await cp.client.exec(rt.app, { cmd: ['sleep', secs2], tty: true });
      await new Promise((resolve) => conn.once('started', resolve));
      await waitFor('the sleep to run', () => processesRunning(['sleep', secs2]).length === 1);
      conn.close();
      await assert.rejects(conn.exited, (e: OutpostError) => e.code === 'E_NO_SERVER');
      await waitFor('the command killed', () => processesRunning(['sleep', secs2]).length === 0, 15_000);
      const entry = await waitFor('its audit entry', async () => (await cp.client.audit({ since: 0 })).find((e) => e.exec?.command.includes(secs2)));
      assert.equal(entry.exec!.ended, 'client closed');
      assert.equal(entry.exec!.exitCode, null);
    });

    test('the node\'s connection drops mid-command: its agent kills the command, the CLI exits 255 with E_NODE_OFFLINE', async () => {
      const secs = `${6000 + Math.floor(Math.random() * 1000)}.25`;
      const c = cliChild(['exec', rt.app, '--', 'sh', '-c', `echo started; sleep ${secs}`], env);
      await waitFor('the command to start', () => c.out().includes('started'));
      await waitFor('the sleep to run', () => processesRunning(['sleep', secs]).length === 1);
      cp.gateway.disconnect(rt.node, 'E_PROTOCOL');
      assert.equal(await c.exited, 255);
      assert.match(c.err(), new RegExp(`E_NODE_OFFLINE: node ${rt.node} disconnected while the command ran`));
      await waitFor('the command killed', () => processesRunning(['sleep', secs]).length === 0, 15_000);
      await waitFor('the agent back', () => cp.gateway.isConnected(rt.node), 30_000);
    });

    if (rt.name === 'docker') {
      test('--container picks one of a group\'s containers (default: the first)', async () => {
        const group = `xg${tag}`;
        groups.push(group);
        const r = await cli(['deploy', '-f', writeManifest(work, group, {
          name: group, placement: { nodes: [rt.node] },
          containers: [{ name: 'first', image: PROBE_IMAGE, command: ['sleep', '100000'] }, { name: 'second', image: PROBE_IMAGE }],
        }), '--wait', '--timeout', '120'], env);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        const pid1 = async (args: string[]) => (await exec([...args, group, '--', 'cat', '/proc/1/cmdline'])).stdout.split('\0').filter(Boolean).join(' ');
        assert.equal(await pid1(['--container', 'first']), 'sleep 100000');
        assert.match(await pid1(['--container', 'second']), /node .*server\.mjs/);
        assert.equal(await pid1([]), 'sleep 100000');
      });
    }

    test('refused: a viewer\'s token (E_FORBIDDEN naming app:exec), a missing replica or container, a missing app', async () => {
      const viewer = await cp.client.createApiToken({ name: `viewer-${rt.name}`, role: 'viewer' });
      const v = await exec([rt.app, '--', 'true'], undefined, { ...env, OUTPOST_TOKEN: viewer.token });
      assert.equal(v.code, 255);
      assert.match(v.stderr, /E_FORBIDDEN.*app:exec/);
      const r = await exec(['--replica', `${rt.app}-9-9`, rt.app, '--', 'true']);
      assert.equal(r.code, 255);
      assert.match(r.stderr, new RegExp(`E_NOT_FOUND: app ${rt.app} has no replica "${rt.app}-9-9" \\(its replicas: ${replica.id}\\)`));
      const c = await exec(['--container', 'nope', rt.app, '--', 'true']);
      assert.match(c.stderr, /E_NOT_FOUND: .*no container "nope"/);
      const a = await exec(['no-such-app', '--', 'true']);
      assert.equal(a.code, 255);
      assert.match(a.stderr, /E_NOT_FOUND: no app named "no-such-app"/);
      const log = await cp.client.audit({ since: 0 });
      assert.ok(log.some((e) => e.principal.id === viewer.id && e.status === 403 && e.action === 'app:exec'), 'the refusal is audited');
      assert.ok(log.some((e) => e.request === `GET /v1/apps/${rt.app}/exec` && e.status === 404 && e.error === 'E_NOT_FOUND'), 'so is the missing replica');
    });
  });
}

test('a browser\'s WebSocket: the token as a subprotocol, never in the URL nor echoed back', async () => {
  const rt = runtimes[0]!;
  const url = `${cp.url.replace(/^http/, 'ws')}/v1/apps/${rt.app}/exec`;
  const bearer = `${EXEC_BEARER_PREFIX}${Buffer.from(cp.adminToken).toString('base64url')}`;
  const ws = new WebSocket(url, [EXEC_SUBPROTOCOL, bearer], { ca: cp.caPem ?? undefined });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  assert.equal(ws.protocol, EXEC_SUBPROTOCOL);
  const frames: string[] = [];
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('message', (d: Buffer, binary: boolean) => frames.push(binary ? `${d[0]}:${d.subarray(1).toString()}` : d.toString()));
  ws.send(JSON.stringify({ type: 'start', cmd: ['sh', '-c', 'echo from-the-page'] }));
  assert.equal(await closed, 1000);
  assert.ok(frames.includes('1:from-the-page\n'), frames.join(' | '));
  assert.deepEqual(JSON.parse(frames[frames.length - 1]!), { type: 'exit', code: 0 });
  // a bad one is refused at the upgrade, as the API refuses it
  const bad = new WebSocket(url, [EXEC_SUBPROTOCOL, `${EXEC_BEARER_PREFIX}${Buffer.from('opt_x.nope').toString('base64url')}`], { ca: cp.caPem ?? undefined });
  const status = await new Promise<number>((resolve) => bad.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
  assert.equal(status, 401);
});

test('a node that is not connected: E_NODE_OFFLINE', { skip: runtimes[0]!.skip }, async () => {
  const rt = runtimes[0]!;
  const a = agents[0]!;
  a.child.kill('SIGKILL');
  await waitFor('the node to be seen gone', () => !cp.gateway.isConnected(rt.node));
  const r = await cli(['exec', rt.app, '--', 'true'], env);
  assert.equal(r.code, 255);
  assert.match(r.stderr, new RegExp(`E_NODE_OFFLINE: node ${rt.node}, where replica \\S+ runs, is not connected`));
});

test('every session is over: none is left open at the control plane', () => {
  assert.deepEqual(cp.gateway.exec.stats(), { sessions: 0, outstandingBytes: 0 });
});

test('a plain GET (no upgrade) is refused as the upgrade would be (how a browser learns why), else says what the route is', async () => {
  const get = (app: string) => cp.client.request('GET', `/v1/apps/${app}/exec`);
  await assert.rejects(get('no-such-app'), (e: OutpostError) => e.code === 'E_NOT_FOUND');
  // the process node was killed above
  await assert.rejects(get(runtimes[0]!.app), (e: OutpostError) => e.code === 'E_NODE_OFFLINE');
  const up = runtimes.find((r) => !r.skip && r.name === 'docker');
  if (up) await assert.rejects(get(up.app), (e: OutpostError) => e.code === 'E_INVALID' && /WebSocket/.test(e.message));
});
