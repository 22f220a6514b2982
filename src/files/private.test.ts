import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensurePrivateDir } from './private.js';

const mode = (p: string) => fs.lstatSync(p).mode & 0o7777;

test('a dir made open beforehand becomes 0700 and its files 0600; links and what they point to are left alone', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-private-'));
  const dir = path.join(base, 'data');
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, 'spec.json'), '{}', { mode: 0o644 });
  const outside = path.join(base, 'outside.txt');
  fs.writeFileSync(outside, 'x', { mode: 0o644 });
  fs.symlinkSync(outside, path.join(dir, 'link'));
  ensurePrivateDir(dir);
  assert.equal(mode(dir), 0o700);
  assert.equal(mode(path.join(dir, 'spec.json')), 0o600);
  assert.equal(mode(outside), 0o644, 'a link in the dir does not make the agent chmod another file');
  assert.equal(mode(path.join(dir, 'sub')), 0o755, 'only files directly inside');
});

test('a missing dir is made with 0700, parents too', () => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-private-')), 'a', 'b');
  const old = process.umask(0);
  try {
    ensurePrivateDir(dir);
  } finally {
    process.umask(old);
  }
  assert.equal(mode(dir), 0o700);
  assert.equal(mode(path.dirname(dir)), 0o700);
});
