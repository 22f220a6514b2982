import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OutpostError } from '../core/errors.js';
import { AGENT_SETTINGS, PROCESSES, SERVER_SETTINGS, UP_SETTINGS } from '../core/settings.js';
import { DEFAULT_ADMISSION } from '../server/admission.js';
import { resolveConfig, type ConfigInputs } from './resolve.js';
import { formatConfig, readConfigFile } from './load.js';

const where = { cwd: '/work', home: '/home/u', command: 'outpost server' };
const server = (inputs: ConfigInputs) => resolveConfig(SERVER_SETTINGS, inputs, where);
const file = (values: Record<string, unknown>, p = '/etc/outpost/server.yaml') => ({ path: p, values });

/** The OutpostError `fn` throws. */
function usage(fn: () => unknown): OutpostError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof OutpostError, String(e));
    return e;
  }
  assert.fail('no error');
}

test('a flag wins over its variable, the variable over the file, the file over the default; each says where it came from', () => {
  const all: ConfigInputs = {
    flags: { nodeTimeoutMs: '40000' },
    env: { OUTPOST_NODE_TIMEOUT_MS: '30000', OUTPOST_ADMIT_RATE: '100' },
    file: file({ nodeTimeoutMs: 20000, admitRate: 50, admitBurst: 7, streamRetentionDays: 2 }),
  };
  const r = server(all);
  assert.equal(r.config.nodeTimeoutMs, 40000);
  assert.deepEqual(r.sources.nodeTimeoutMs, { from: 'flag', flag: '--node-timeout' });
  assert.equal(r.config.admitRate, 100);
  assert.deepEqual(r.sources.admitRate, { from: 'env', name: 'OUTPOST_ADMIT_RATE' });
  assert.equal(r.config.admitBurst, 7);
  assert.deepEqual(r.sources.admitBurst, { from: 'file', file: '/etc/outpost/server.yaml', key: 'admitBurst' });
  assert.deepEqual(r.config.listen, { host: '127.0.0.1', port: 7070 });
  assert.deepEqual(r.sources.listen, { from: 'default' });

  assert.equal(server({ env: all.env, file: all.file }).config.nodeTimeoutMs, 30000);
  assert.equal(server({ file: all.file }).config.nodeTimeoutMs, 20000);
  assert.equal(server({}).config.nodeTimeoutMs, 15000);
  // an empty variable is unset, and so is a null in the file
  assert.equal(server({ env: { OUTPOST_NODE_TIMEOUT_MS: '' }, file: file({ nodeTimeoutMs: 20000 }) }).config.nodeTimeoutMs, 20000);
  assert.equal(server({ file: file({ nodeTimeoutMs: null }) }).config.nodeTimeoutMs, 15000);
});

test('a bad value is E_USAGE naming the setting as it was given', () => {
  const cases: [ConfigInputs, string, string][] = [
    [{ env: { OUTPOST_NODE_TIMEOUT_MS: 'abc' } }, 'OUTPOST_NODE_TIMEOUT_MS=abc: must be a number of ms >= 1000', 'OUTPOST_NODE_TIMEOUT_MS'],
    [{ env: { OUTPOST_NODE_TIMEOUT_MS: '999' } }, 'OUTPOST_NODE_TIMEOUT_MS=999: must be a number of ms >= 1000', 'OUTPOST_NODE_TIMEOUT_MS'],
    [{ flags: { listen: 'localhost:http' } }, '--listen=localhost:http: must be HOST:PORT (or a port)', 'listen'],
    [{ flags: { listen: '127.0.0.1:70000' } }, '--listen=127.0.0.1:70000: must be HOST:PORT (or a port)', 'listen'],
    [{ file: file({ streamRetentionDays: 0 }) }, 'streamRetentionDays: 0 in /etc/outpost/server.yaml: must be a number of days > 0', 'streamRetentionDays'],
    [{ file: file({ admitBurst: 2.5 }) }, 'admitBurst: 2.5 in /etc/outpost/server.yaml: must be an integer >= 1', 'admitBurst'],
    [{ file: file({ logLevel: 'loud' }) }, 'logLevel: "loud" in /etc/outpost/server.yaml: must be one of trace, debug, info, warn, error, fatal, silent', 'logLevel'],
    [{ env: { OUTPOST_ADMIT_RATE: ' ' } }, 'OUTPOST_ADMIT_RATE= : must be a number of handshakes per second > 0', 'OUTPOST_ADMIT_RATE'],
  ];
  for (const [inputs, message, at] of cases) {
    const e = usage(() => server(inputs));
    assert.equal(e.code, 'E_USAGE');
    assert.equal(e.message, message);
    assert.equal(e.path, at);
  }
  // a bad value that a better source hides is never read
  assert.equal(server({ flags: { nodeTimeoutMs: '5000' }, env: { OUTPOST_NODE_TIMEOUT_MS: 'abc' } }).config.nodeTimeoutMs, 5000);
});

test('the site proxy\'s limits: a flag, a variable or a config key like every agent setting, bounded', () => {
  const agent = (inputs: ConfigInputs) => resolveConfig(AGENT_SETTINGS, { ...inputs, flags: { server: 'http://cp:7070', ...inputs.flags } }, { ...where, command: 'outpost agent' });
  const dflt = agent({}).config;
  assert.deepEqual([dflt.proxyResponseTimeoutMs, dflt.proxyIdleTimeoutMs], [60_000, 900_000]);
  const r = agent({ flags: { proxyResponseTimeoutMs: '2500' }, env: { OUTPOST_PROXY_IDLE_TIMEOUT_MS: '30000' } });
  assert.deepEqual([r.config.proxyResponseTimeoutMs, r.config.proxyIdleTimeoutMs], [2500, 30_000]);
  assert.deepEqual(r.sources.proxyResponseTimeoutMs, { from: 'flag', flag: '--proxy-response-timeout' });
  assert.deepEqual(r.sources.proxyIdleTimeoutMs, { from: 'env', name: 'OUTPOST_PROXY_IDLE_TIMEOUT_MS' });
  assert.equal(agent({ file: file({ proxyResponseTimeoutMs: 5000 }, '/etc/outpost/agent.yaml') }).config.proxyResponseTimeoutMs, 5000);
  assert.equal(resolveConfig(UP_SETTINGS, { env: { OUTPOST_PROXY_RESPONSE_TIMEOUT_MS: '700' } }, where).config.proxyResponseTimeoutMs, 700, 'outpost up too');
  const cases: [ConfigInputs, string, string][] = [
    [{ flags: { proxyResponseTimeoutMs: '0' } }, '--proxy-response-timeout=0: must be an integer of ms from 100 to 86400000', 'proxy-response-timeout'],
    [{ env: { OUTPOST_PROXY_IDLE_TIMEOUT_MS: '15m' } }, 'OUTPOST_PROXY_IDLE_TIMEOUT_MS=15m: must be an integer of ms from 100 to 86400000', 'OUTPOST_PROXY_IDLE_TIMEOUT_MS'],
    [{ file: file({ proxyIdleTimeoutMs: 86_400_001 }, '/etc/outpost/agent.yaml') }, 'proxyIdleTimeoutMs: 86400001 in /etc/outpost/agent.yaml: must be an integer of ms from 100 to 86400000', 'proxyIdleTimeoutMs'],
    [{ file: file({ proxyResponseTimeoutMs: 1.5 }, '/etc/outpost/agent.yaml') }, 'proxyResponseTimeoutMs: 1.5 in /etc/outpost/agent.yaml: must be an integer of ms from 100 to 86400000', 'proxyResponseTimeoutMs'],
  ];
  for (const [inputs, message, at] of cases) {
    const e = usage(() => agent(inputs));
    assert.equal(e.code, 'E_USAGE');
    assert.equal(e.message, message);
    assert.equal(e.path, at);
  }
});

test('a config file key the process does not take is refused, naming the key and the file', () => {
  const e = usage(() => server({ file: file({ listen: ':7070', prot: 7070, joinToken: 'x' }) }));
  assert.equal(e.code, 'E_USAGE');
  assert.match(e.message, /^\/etc\/outpost\/server\.yaml: unknown keys "prot", "joinToken" for outpost server \(it takes dataDir, store, listen, /);
  assert.equal(e.path, 'prot');
});

test('a required setting says every way to give it', () => {
  const e = usage(() => resolveConfig(AGENT_SETTINGS, { flags: {} }, { ...where, command: 'outpost agent' }));
  assert.match(e.message, /^outpost agent needs --server \(or server in a --config file\): control plane URL/);
  assert.equal(e.path, 'server');
});

test('paths: from a file relative to its directory, from a flag or variable relative to the working directory, ~ is home', () => {
  assert.equal(server({}).config.dataDir, '/home/u/.outpost');
  assert.equal(server({ file: file({ dataDir: 'state' }) }).config.dataDir, '/etc/outpost/state');
  assert.equal(server({ file: file({ dataDir: 'state' }, 'conf/s.yaml') }).config.dataDir, '/work/conf/state');
  assert.equal(server({ env: { OUTPOST_DATA_DIR: 'state' } }).config.dataDir, '/work/state');
  assert.equal(server({ flags: { dataDir: '~/x' } }).config.dataDir, '/home/u/x');
});

test('values from text and from YAML', () => {
  const listen = (v: unknown) => server({ file: file({ listen: v }) }).config.listen;
  assert.deepEqual(listen('0.0.0.0:7071'), { host: '0.0.0.0', port: 7071 });
  assert.deepEqual(listen(':7071'), { host: '0.0.0.0', port: 7071 });
  assert.deepEqual(listen('[::1]:7071'), { host: '::1', port: 7071 });
  assert.deepEqual(listen(7071), { host: '127.0.0.1', port: 7071 });
  const agent = (inputs: ConfigInputs) => resolveConfig(AGENT_SETTINGS, { ...inputs, flags: { server: 'http://cp:7070', ...inputs.flags } }, where).config;
  assert.deepEqual(agent({ flags: { labels: 'zone=north, tier = edge' } }).labels, { zone: 'north', tier: 'edge' });
  assert.deepEqual(agent({ file: file({ labels: { zone: 'north', rack: 4 } }) }).labels, { zone: 'north', rack: '4' });
  assert.deepEqual(agent({}).labels, {});
  assert.match(usage(() => agent({ flags: { labels: 'zone' } })).message, /^--labels=zone: must be k=v,k=v/);
  assert.equal(agent({ flags: { hub: false } }).hub, false);
  assert.equal(agent({ file: file({ hub: false }) }).hub, false);
  assert.match(usage(() => agent({ file: file({ hub: 'no' }) })).message, /^hub: "no" in .*: must be true or false$/);
  assert.equal(agent({ file: file({ site: 42 }) }).site, '42');
  assert.equal(agent({}).site, undefined);
  assert.match(usage(() => agent({ flags: { server: 'cp:7070' } })).message, /^--server=cp:7070: must be one or more http:\/\/ or https:\/\/ URLs/);
  assert.deepEqual(agent({ flags: { server: 'https://cp1:7070/, https://cp2:7070' } }).server, ['https://cp1:7070', 'https://cp2:7070']);
  assert.deepEqual(resolveConfig(AGENT_SETTINGS, { file: file({ server: ['http://cp1:7070', 'http://cp2:7070'] }) }, where).config.server, ['http://cp1:7070', 'http://cp2:7070']);
  for (const bad of ['https://cp1:7070,http://cp2:7070', 'https://cp1:7070,', 'https://cp1:7070,cp2']) assert.match(usage(() => agent({ flags: { server: bad } })).message, /^--server=.*: must be one or more/, bad);
  assert.match(usage(() => agent({ flags: { network: 'nat' } })).message, /^--network=nat: must be one of bridge, host$/);
  assert.throws(() => server({ flags: { logLevel: 'debug' } }), /no setting with a flag/, 'a flag the table does not declare is a bug');
});

test('outpost up reads the node timeout like the server does', () => {
  const r = resolveConfig(UP_SETTINGS, { env: { OUTPOST_NODE_TIMEOUT_MS: '20000' } }, where);
  assert.equal(r.config.nodeTimeoutMs, 20000);
  assert.equal(r.config.logLevel, 'warn', 'up is quieter by default');
});

test('the server\'s admission defaults are the control plane\'s own', () => {
  assert.deepEqual({ rate: SERVER_SETTINGS.admitRate.default, burst: SERVER_SETTINGS.admitBurst.default }, DEFAULT_ADMISSION);
});

test('every setting has a meaning, and every default is a value its kind takes', () => {
  for (const [name, p] of Object.entries(PROCESSES)) {
    for (const [key, s] of Object.entries(p.settings)) {
      assert.ok(s.meaning, `${name}.${key}`);
      assert.ok(!(s.required && s.default !== undefined), `${name}.${key} is required and has a default`);
      if (s.default !== undefined) assert.deepEqual(s.kind.parse(s.kind.toFile ? s.kind.toFile(s.default) : s.default), s.default, `${name}.${key}`);
    }
  }
});

test('config files: a YAML mapping; --print-config writes one that reads back the same', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-config-'));
  try {
    const write = (name: string, text: string) => { fs.writeFileSync(path.join(dir, name), text); return path.join(dir, name); };
    assert.deepEqual(readConfigFile(write('empty.yaml', '# nothing\n')).values, {});
    assert.equal(usage(() => readConfigFile(write('list.yaml', '- a\n- b\n'))).code, 'E_USAGE');
    assert.match(usage(() => readConfigFile(write('list.yaml', '- a\n'))).message, /list\.yaml: a config file is a mapping of settings \(key: value\), not a list/);
    assert.equal(usage(() => readConfigFile(write('bad.yaml', 'listen: [oops\n'))).code, 'E_BAD_YAML');
    assert.equal(usage(() => readConfigFile(write('dup.yaml', 'listen: 1\nlisten: 2\n'))).code, 'E_BAD_YAML');
    assert.match(usage(() => readConfigFile(path.join(dir, 'missing.yaml'))).message, /^cannot read --config .*missing\.yaml: ENOENT/);

    const inputs: ConfigInputs = { flags: { server: 'http://cp:7070', labels: 'zone=north' }, env: { OUTPOST_JOIN_TOKEN: 'secret-token', OUTPOST_PROBE_INTERVAL_MS: '500' } };
    const r = resolveConfig(AGENT_SETTINGS, inputs, where);
    const text = formatConfig(AGENT_SETTINGS, 'outpost agent', r);
    assert.doesNotMatch(text, /secret-token/);
    assert.match(text, /^joinToken: "\*\*\*" +# env OUTPOST_JOIN_TOKEN$/m);
    assert.match(text, /^server: "http:\/\/cp:7070" +# flag --server$/m);
    assert.match(text, /^probeIntervalMs: 500 +# env OUTPOST_PROBE_INTERVAL_MS$/m);
    assert.match(text, /^# name: +# unset: the hostname$/m);
    const back = readConfigFile(write('printed.yaml', text.replace(/^joinToken: .*$/m, 'joinToken: secret-token')));
    assert.deepEqual(resolveConfig(AGENT_SETTINGS, { file: back }, where).config, r.config);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
