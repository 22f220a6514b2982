// Process-runtime logs: `tail` reads from the end (what it costs is what it
// returns, not the file's size), logs are rotated by size, and `follow` goes
// on across a rotation. Real replicas writing real files through the driver.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { validateApp, specHash } from '../src/core/manifest.js';
import { ProcessDriver } from '../src/agent/drivers/process.js';
import type { RuntimeDriver } from '../src/agent/drivers/driver.js';
import { ROOT, tmpDir, waitFor } from './helpers.js';

const node = `logs-${process.pid}`;
const created: [RuntimeDriver, string][] = [];
after(async () => { for (const [d, id] of created) await d.remove(id); });

async function run(driver: ProcessDriver, id: string, script: string): Promise<string> {
  const spec = validateApp({ name: 'logger', command: ['node', '-e', script], resources: { memoryMiB: 256 } });
  await driver.create({ replicaId: id, app: spec.name, specHash: specHash(spec), node, spec, hostPorts: {}, bindHost: '127.0.0.1', env: {} });
  created.push([driver, id]);
  await driver.start(id);
  return id;
}

function read(driver: RuntimeDriver, id: string, tail: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    driver.logs(id, { follow: false, tail }, (s) => { out += s; }, (err) => (err ? reject(new Error(err)) : resolve(out)));
  });
}

function lastBytes(file: string, n: number): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    fs.readSync(fd, buf, 0, n, fs.fstatSync(fd).size - n);
    return buf.toString();
  } finally {
    fs.closeSync(fd);
  }
}

/** bytes this process has read through system calls, from the kernel's count */
const readBytes = () => Number(/^rchar: (\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'utf8'))![1]);

test('tail 3 of a 50 MB log returns its last 3 lines, reading a small part of the file', async () => {
  const dir = tmpDir();
  const driver = new ProcessDriver(dir, node, ROOT, { logMaxBytes: 256 * 1048576 });
  // 50 MB of numbered lines, then three known ones; then it stays up
  const script = `const line = 'x'.repeat(99); const out = [];
    for (let i = 0; i < 500000; i++) out.push(i + ' ' + line);
    process.stdout.write(out.join('\\n') + '\\n', () => { console.log('third from last'); console.log('second from last'); console.log('the last'); setInterval(() => {}, 1000); });`;
  const id = await run(driver, `tail-${process.pid}`, script);
  const log = path.join(dir, 'processes', `${id}.log`);
  await waitFor('50 MB written', () => fs.existsSync(log) && fs.statSync(log).size > 50_000_000 && lastBytes(log, 9) === 'the last\n', 60_000, 200);
  const before = readBytes();
  const text = await read(driver, id, 3);
  const cost = readBytes() - before;
  assert.equal(text, 'third from last\nsecond from last\nthe last\n');
  assert.ok(cost < 1048576, `tail read ${cost} bytes of a ${fs.statSync(log).size}-byte log`);
  // and lines that span chunks: the last 1000 lines are exactly those
  const more = (await read(driver, id, 1003)).split('\n');
  assert.equal(more.length, 1004);
  assert.match(more[0]!, /^499000 x{99}$/);
  assert.equal(more[999], `499999 ${'x'.repeat(99)}`);
});

test('a log is rotated by size: it and its two copies stay near the cap, and follow goes on across rotations', async (t) => {
  const dir = tmpDir();
  const cap = 1048576;
  const driver = new ProcessDriver(dir, node, ROOT, { logMaxBytes: cap, logKeep: 2, logCheckMs: 50 });
  // ~20 MB over ~2 s: a thousand 100-byte lines every 10 ms, numbered
  const script = `let n = 0; const pad = 'y'.repeat(90);
    const t = setInterval(() => { const b = []; for (let i = 0; i < 1000; i++) b.push(n++ + ' ' + pad); console.log(b.join('\\n'));
      if (n >= 200000) { clearInterval(t); console.log('done'); setInterval(() => {}, 1000); } }, 10);`;
  const id = `rot-${process.pid}`;
  const got: string[] = [];
  let partial = '';
  await run(driver, id, script);
  const cancel = driver.logs(id, { follow: true, tail: 0 }, (s) => {
    const lines = (partial + s).split('\n');
    partial = lines.pop()!;
    got.push(...lines);
  }, () => {});
  await waitFor('the last line followed', () => got.at(-1) === 'done', 60_000);
  cancel();
  const log = path.join(dir, 'processes', `${id}.log`);
  await waitFor('a rotation after the end', () => fs.statSync(log).size <= cap, 10_000);
  assert.ok(fs.statSync(`${log}.1`).size <= 2 * cap, 'the newest copy holds about the cap');
  assert.ok(fs.statSync(`${log}.2`).size <= 2 * cap);
  assert.ok(!fs.existsSync(`${log}.3`), 'only two copies are kept');
  // what follow delivered from where it began: in order, none twice, nearly
  // all (copy-then-truncate loses what is written between the copy's end and the truncation)
  const nums = got.slice(0, -1).map((l) => Number(l.split(' ')[0]));
  for (let i = 1; i < nums.length; i++) assert.ok(nums[i]! > nums[i - 1]!, `line ${nums[i]} after ${nums[i - 1]}`);
  assert.equal(nums.at(-1), 199999);
  const expected = 200000 - nums[0]!;
  assert.ok(expected > 150000, `follow began at line ${nums[0]}`);
  t.diagnostic(`followed ${nums.length} of ${expected} lines across the rotations`);
  assert.ok(nums.length >= expected * 0.99, `followed ${nums.length} of ${expected} lines`);
  // tail reads across the rotated copies
  const last = (await read(driver, id, 5)).split('\n');
  assert.deepEqual(last.slice(-2), ['done', '']);
  assert.equal(last[0], `199996 ${'y'.repeat(90)}`);
});
