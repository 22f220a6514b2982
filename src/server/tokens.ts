// Tokens: generated on first start, kept at the top of the data dir, readable
// by the owner only, so the CLI finds the admin token with the same data dir.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export function loadOrCreateToken(dataDir: string, file: string): string {
  const p = path.join(dataDir, file);
  try {
    const t = fs.readFileSync(p, 'utf8').trim();
    if (t) return t;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const token = randomBytes(24).toString('base64url');
  // write-then-rename so a crash never leaves an empty token file
  const tmp = `${p}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, token + '\n', { mode: 0o600 });
  fs.renameSync(tmp, p);
  return token;
}

export function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
