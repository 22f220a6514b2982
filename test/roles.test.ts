// Roles, scopes and the audit log end to end: a real control plane, a real
// process-runtime agent, the real CLI holding API tokens of each role.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { AuditEntry } from '../src/core/types.js';
import type { CreatedApiToken, WhoAmI } from '../src/contract/api.js';
import { ROUTE_RULES, ruleFor } from '../src/core/capabilities.js';
import { call, cli, cliEnv, controlPlane, settleAgents, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';

const cp = await controlPlane();
const admin = cliEnv(cp);
const work = tmpDir();
const agents: AgentProc[] = [spawnAgent(cp, ['--name', 'edge-r1', '--runtime', 'process', '--data-dir', tmpDir(), '--no-hub'])];
after(async () => {
  for (const app of ['shop-a', 'factory-app']) await cli(['rm', app], admin).catch(() => {});
  await settleAgents();
  for (const a of agents) a.child.kill('SIGKILL');
  await cp.close();
});

const app = (name: string) => writeManifest(work, name, { name, command: ['node', '-e', `console.log('hello from ${name}'); setInterval(() => {}, 1e6)`] });
const as = (token: string) => ({ ...admin, OUTPOST_TOKEN: token });
/** The error code and message a refused command printed. */
const refused = (r: { code: number | null; stderr: string }, code: string, ...words: string[]) => {
  assert.notEqual(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(code), r.stderr);
  for (const w of words) assert.ok(r.stderr.includes(w), `"${w}" in: ${r.stderr}`);
};
const secrets: string[] = [];

async function mint(args: string[], env = admin): Promise<CreatedApiToken> {
  const r = await cli(['token', 'create', ...args, '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  const t = JSON.parse(r.stdout) as CreatedApiToken;
  secrets.push(t.token.split('.')[1]!);
  return t;
}

await waitFor('the agent', async () => (await cp.client.nodes()).some((n) => n.state === 'ready'));
for (const name of ['shop-a', 'factory-app']) assert.equal((await cli(['deploy', '-f', app(name), '--wait'], admin)).code, 0);
const viewer = await mint(['--role', 'viewer', '--name', 'vera']);
const deployer = await mint(['--role', 'deployer', '--name', 'ci-shop', '--apps', 'shop-*']);

test('the admin token from admin.token still works, as the record opt_admin', async () => {
  const r = await cli(['whoami', '--json'], { OUTPOST_SERVER: cp.url, OUTPOST_DATA_DIR: cp.dataDir });
  assert.equal(r.code, 0, r.stderr);
  const w = JSON.parse(r.stdout) as WhoAmI;
  assert.equal(w.id, 'opt_admin');
  assert.equal(w.role, 'admin');
  assert.ok(w.capabilities.includes('backup:read'));
  assert.equal(fs.readFileSync(path.join(cp.dataDir, 'admin.token'), 'utf8').trim(), cp.adminToken);
  const revoke = await cli(['token', 'revoke', 'opt_admin'], admin);
  refused(revoke, 'E_CONFLICT');
});

test('a viewer lists apps but cannot deploy, read logs, create tokens, read the audit log or take a backup', async () => {
  const v = as(viewer.token);
  const apps = await cli(['apps', '--json'], v);
  assert.equal(apps.code, 0, apps.stderr);
  assert.deepEqual((JSON.parse(apps.stdout) as { name: string }[]).map((a) => a.name).sort(), ['factory-app', 'shop-a']);
  assert.equal((await cli(['nodes'], v)).code, 0);
  refused(await cli(['deploy', '-f', app('shop-a')], v), 'E_FORBIDDEN', 'app:deploy', 'vera');
  refused(await cli(['logs', 'shop-a'], v), 'E_FORBIDDEN', 'app:logs');
  refused(await cli(['token', 'create', '--role', 'viewer', '--name', 'another'], v), 'E_FORBIDDEN', 'token:write');
  refused(await cli(['token', 'list'], v), 'E_FORBIDDEN', 'token:read');
  refused(await cli(['audit'], v), 'E_FORBIDDEN', 'audit:read');
  refused(await cli(['backup', '--out', path.join(work, 'b.gz')], v), 'E_FORBIDDEN', 'backup:read');
  assert.ok(!fs.existsSync(path.join(work, 'b.gz')));
  refused(await cli(['rm', 'shop-a'], v), 'E_FORBIDDEN', 'app:remove');
});

test('a viewer cannot list secrets', async (t) => {
  // the secret routes come with the secrets part of this issue; refused by the table once they exist
  if (!cp.routes.includes('GET /v1/secrets')) return t.skip('no secret routes in this build');
  const s = await call(cp, 'GET', '/v1/secrets', { token: viewer.token });
  assert.equal(s.status, 403);
  assert.match(s.body.error!.message, /secret:read/);
});

test('a deployer scoped to shop-* deploys, undoes and reads logs of shop-a, and is refused for factory-app', async () => {
  const d = as(deployer.token);
  const ok = await cli(['deploy', '-f', writeManifest(work, 'shop-a', { name: 'shop-a', command: ['node', '-e', "console.log('hello from shop-a v2'); setInterval(() => {}, 1e6)"] }), '--wait'], d);
  assert.equal(ok.code, 0, ok.stderr);
  const logs = await waitFor('shop-a v2 logs', async () => { const r = await cli(['logs', 'shop-a'], d); return r.code === 0 && r.stdout.includes('hello from shop-a v2') ? r : null; });
  assert.equal(logs.code, 0);
  assert.equal((await cli(['rollout', 'undo', 'shop-a'], d)).code, 0);
  refused(await cli(['deploy', '-f', app('factory-app')], d), 'E_FORBIDDEN', 'app:deploy', 'factory-app', 'shop-*');
  refused(await cli(['rm', 'factory-app'], d), 'E_FORBIDDEN', 'app:remove');
  refused(await cli(['logs', 'factory-app'], d), 'E_FORBIDDEN', 'app:logs', 'factory-app');
  refused(await cli(['rollout', 'undo', 'factory-app'], d), 'E_FORBIDDEN', 'app:deploy', 'factory-app');
  refused(await cli(['rm', 'shop-a'], d), 'E_FORBIDDEN', 'app:remove');
  // lists are not filtered by scope: the deployer sees factory-app listed
  assert.ok((await cli(['apps'], d)).stdout.includes('factory-app'));
  assert.equal((await cp.client.app('factory-app')).revision, 1, 'factory-app was not touched');
});

test('a revoked token and an expired one are E_UNAUTHORIZED', async () => {
  const temp = await mint(['--role', 'viewer', '--name', 'temp']);
  assert.equal((await cli(['whoami'], as(temp.token))).code, 0);
  const r = await cli(['token', 'revoke', temp.id], admin);
  assert.equal(r.code, 0, r.stderr);
  refused(await cli(['apps'], as(temp.token)), 'E_UNAUTHORIZED', 'revoked');
  const short = await mint(['--role', 'viewer', '--name', 'short', '--ttl', '1ms']);
  refused(await cli(['apps'], as(short.token)), 'E_UNAUTHORIZED', 'expired');
  refused(await cli(['apps'], as(`${viewer.id}.${'x'.repeat(32)}`)), 'E_UNAUTHORIZED');
  refused(await cli(['apps'], as('not-the-admin-token')), 'E_UNAUTHORIZED');
});

test('a token cannot mint or revoke a stronger one', async () => {
  const scoped = await mint(['--role', 'admin', '--name', 'shop-admin', '--apps', 'shop-*']);
  const s = as(scoped.token);
  refused(await cli(['token', 'create', '--role', 'admin', '--name', 'root'], s), 'E_FORBIDDEN', 'apps');
  refused(await cli(['token', 'create', '--role', 'deployer', '--name', 'wide', '--apps', '*'], s), 'E_FORBIDDEN');
  const narrower = await mint(['--role', 'deployer', '--name', 'shop-b-ci', '--apps', 'shop-b*'], s);
  assert.equal(narrower.apps, 'shop-b*');
  refused(await cli(['token', 'revoke', viewer.id], s), 'E_FORBIDDEN');
  refused(await cli(['token', 'create', '--role', 'nobody', '--name', 'x'], admin), 'E_INVALID', 'role');
  refused(await cli(['token', 'create', '--role', 'viewer', '--name', 'x', '--apps', 'Shop A'], admin), 'E_INVALID', 'apps');
  refused(await cli(['token', 'create', '--role', 'viewer', '--name', 'x', '--uses', '3'], admin), 'E_USAGE', '--uses');
});

test('token list shows join and API tokens, never a secret or a hash', async () => {
  const r = await cli(['token', 'list', '--json'], admin);
  assert.equal(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout) as { kind: string; id: string }[];
  assert.ok(list.some((t) => t.kind === 'join'));
  assert.ok(list.some((t) => t.kind === 'api' && t.id === deployer.id));
  assert.ok(list.every((t) => !('secretHash' in t) && !('token' in t)));
  const text = (await cli(['token', 'list'], admin)).stdout;
  assert.match(text, /KIND/);
  assert.match(text, new RegExp(`${deployer.id}\\s+api\\s+valid`));
});

test('outpost audit shows each mutating call with its principal, refused ones too, and never a token', async () => {
  const r = await cli(['audit', '--json', '--since', '1h'], admin);
  assert.equal(r.code, 0, r.stderr);
  const log = JSON.parse(r.stdout) as AuditEntry[];
  const find = (f: (e: AuditEntry) => boolean, what: string) => { const e = log.find(f); assert.ok(e, `${what} in ${JSON.stringify(log, null, 1)}`); return e; };
  find((e) => e.request === 'POST /v1/enroll' && e.principal.name === 'node edge-r1' && e.status === 200, 'the agent\'s enrolment');
  find((e) => e.request === 'POST /v1/apitokens' && e.principal.id === 'opt_admin' && e.target === deployer.id && e.status === 201, 'the deployer token\'s creation');
  const dep = find((e) => e.request === 'POST /v1/apps' && e.principal.id === deployer.id && e.target === 'shop-a' && e.status < 300, 'the deployer\'s deploy');
  assert.equal(dep.principal.name, 'ci-shop');
  assert.equal(dep.action, 'app:deploy');
  assert.match(dep.from, /127\.0\.0\.1/);
  find((e) => e.request === 'POST /v1/apps' && e.principal.id === deployer.id && e.target === 'factory-app' && e.status === 403 && e.error === 'E_FORBIDDEN', 'the deployer\'s refused deploy');
  find((e) => e.request === 'DELETE /v1/apps/factory-app' && e.principal.id === deployer.id && e.status === 403, 'the deployer\'s refused rm');
  find((e) => e.request === 'GET /v1/apps/shop-a/logs' && e.principal.id === deployer.id && e.action === 'app:logs' && e.status === 200, 'the deployer\'s logs (a read that is audited)');
  find((e) => e.request === 'POST /v1/apps' && e.principal.id === viewer.id && e.status === 403, 'the viewer\'s refused deploy');
  find((e) => e.request === 'GET /v1/backup' && e.principal.id === viewer.id && e.status === 403, 'the viewer\'s refused backup');
  find((e) => e.request.startsWith('DELETE /v1/apitokens/') && e.principal.id === 'opt_admin' && e.status === 200, 'a revocation');
  find((e) => e.request === 'GET /v1/apps' && e.status === 401 && e.error === 'E_UNAUTHORIZED', 'a call with a revoked token');
  find((e) => e.request === 'DELETE /v1/apitokens/opt_admin' && e.status === 409 && e.error === 'E_CONFLICT', 'the refused revocation of the admin token');
  assert.ok(!log.some((e) => e.request === 'GET /v1/apps' && e.status === 200), 'plain reads are not audited');
  for (const s of [...secrets, cp.adminToken]) assert.ok(!r.stdout.includes(s), 'no token in the audit log');
  const text = await cli(['audit', '--since', '1h'], admin);
  assert.match(text.stdout, new RegExp(`${deployer.id} \\(ci-shop\\)\\s+app:deploy\\s+POST /v1/apps\\s+factory-app\\s+\\S+\\s+403 E_FORBIDDEN`));
});

test('the capability table names every route the control plane serves', () => {
  assert.ok(cp.routes.length > 30);
  const missing = cp.routes.filter((r) => { const [m, u] = r.split(' ') as [string, string]; return !ruleFor(m, u); });
  assert.deepEqual(missing, []);
  assert.ok(Object.keys(ROUTE_RULES).length >= cp.routes.length);
});

test('audit entries past --audit-retention-days go with the store\'s compaction; newer ones stay', async () => {
  const day = 86_400_000;
  const short = await controlPlane(tmpDir(), { auditRetentionMs: day, compactMs: 100 });
  try {
    short.cp.audit.record({ at: Date.now() - 2 * day, principal: { id: 'opt_old', name: 'old' }, action: 'app:deploy', request: 'POST /v1/apps', target: 'x', from: '127.0.0.1', status: 200, error: null });
    await short.client.createApiToken({ name: 'recent', role: 'viewer' });
    await waitFor('the old entry to be compacted away', async () => !(await short.cp.audit.list({})).some((e) => e.principal.id === 'opt_old'));
    assert.ok((await short.cp.audit.list({})).some((e) => e.request === 'POST /v1/apitokens'), 'the recent entry stays');
  } finally {
    await short.close();
  }
});
