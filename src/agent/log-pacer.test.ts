// The log pacer: chunks gathered into one message, every stream within one
// budget, what is over it dropped at a line's end and said.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOG_BURST_CHARS, LOG_CHARS_PER_S, LOG_GATHER_MS, LOG_PARTIAL_MS, LogPacer } from './log-pacer.js';

test('chunks that come together leave as one message, a few ms later', async () => {
  const sent: string[] = [];
  const out = new LogPacer().stream((s) => sent.push(s));
  for (let i = 0; i < 100; i++) out.data(`line ${i}\n`);
  assert.equal(sent.length, 0);
  await new Promise((r) => setTimeout(r, LOG_GATHER_MS + 20));
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.split('\n').length, 101);
  out.data('the end, without a newline');
  out.flush();
  assert.equal(sent[1], 'the end, without a newline');
  out.data('cancelled');
  out.cancel();
  await new Promise((r) => setTimeout(r, LOG_GATHER_MS + 20));
  assert.equal(sent.length, 2, 'a cancelled stream sends nothing more');
});

test('past the budget (all streams together), whole lines are dropped and a line says how many characters', () => {
  let now = 0;
  const pacer = new LogPacer(() => now);
  const a: string[] = [];
  const b: string[] = [];
  const outA = pacer.stream((s) => a.push(s));
  const outB = pacer.stream((s) => b.push(s));
  const line = `${'x'.repeat(99)}\n`;
  outA.data(line.repeat(6000));
  outA.flush();
  const kept = a[0]!.split('\n').filter((l) => l === 'x'.repeat(99)).length;
  assert.equal(kept, Math.floor(LOG_BURST_CHARS / 100));
  assert.match(a[0]!, new RegExp(`\\(outpost: ${600_000 - kept * 100} characters of this log were dropped: it was written faster than the 256 KiB a second`));
  // the budget is shared: another stream's line does not fit what is left, and is said to be dropped
  outB.data(line);
  outB.flush();
  assert.equal(b.length, 1);
  assert.match(b[0]!, /^\(outpost: 100 characters of this log were dropped/);
  now += 1000;
  outB.data(line.repeat(10));
  outB.flush();
  assert.equal(b[1], line.repeat(10), 'a second later, room again');
  outA.cancel();
  outB.cancel();
});

test('writes split inside lines, past the budget: every line sent is a whole line the replica wrote', async () => {
  let now = 0;
  const pacer = new LogPacer(() => now);
  const sent: string[] = [];
  const out = pacer.stream((s) => sent.push(s));
  const line = `${'x'.repeat(99)}\n`;
  // 2 MB in chunks of 65,537 characters (a pipe's read size, not a line's): cut inside a line each time
  const all = line.repeat(20_000);
  for (let i = 0; i < all.length; i += 65_537) {
    out.data(all.slice(i, i + 65_537));
    await new Promise((r) => setTimeout(r, LOG_GATHER_MS + 5));
    now += 50;
  }
  out.flush();
  const text = sent.join('');
  const odd = text.split('\n').filter((l) => l && l !== 'x'.repeat(99) && !l.startsWith('(outpost: '));
  assert.deepEqual(odd, []);
  assert.match(text, /\(outpost: \d+ characters of this log were dropped/);
  assert.ok(text.length < all.length, 'some was dropped');
});

test('the start of a line waits for its end, and is sent as it is when none comes (a prompt)', async () => {
  const sent: string[] = [];
  const out = new LogPacer().stream((s) => sent.push(s));
  out.data('one\ntw');
  await new Promise((r) => setTimeout(r, LOG_GATHER_MS + 20));
  assert.deepEqual(sent, ['one\n']);
  out.data('o\nthree> ');
  await new Promise((r) => setTimeout(r, LOG_GATHER_MS + 20));
  assert.deepEqual(sent, ['one\n', 'two\n']);
  await new Promise((r) => setTimeout(r, LOG_PARTIAL_MS));
  assert.deepEqual(sent, ['one\n', 'two\n', 'three> ']);
  out.cancel();
});

test('a line written a piece at a time (progress dots every 50 ms) is sent LOG_PARTIAL_MS after it began, not held while pieces come', async () => {
  const sent: string[] = [];
  const out = new LogPacer().stream((s) => sent.push(s));
  const dots = setInterval(() => out.data('.'), 50);
  await new Promise((r) => setTimeout(r, LOG_PARTIAL_MS + 250));
  clearInterval(dots);
  assert.ok(sent.length >= 1, 'sent while the dots still came');
  assert.match(sent[0]!, /^\.+$/);
  out.cancel();
});
