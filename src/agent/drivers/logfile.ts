// A process replica's log: the replica writes its stdout and stderr straight
// into a file the agent opened for it (so it keeps logging while the agent
// restarts, and needs no right to the agent's directory). Reading it costs
// what is returned, not the file's size: `tail` reads backwards from the end.
// Rotation is by size, "copy then truncate": the replica's descriptor cannot
// be moved to a new file, but it appends (O_APPEND), so after the truncation
// its next write lands at the start of the emptied file.
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

const CHUNK = 64 * 1024;
const COPY_CHUNK = 1024 * 1024;
const NL = 0x0a;

/** The log and its rotated copies, newest first: log, log.1 ... log.keep. */
export function logFiles(file: string, keep: number): string[] {
  return [file, ...Array.from({ length: keep }, (_, i) => `${file}.${i + 1}`)];
}

/**
 * The last `n` lines of the files (newest first, each the continuation of the
 * next), read backwards in chunks until n line ends are found: the cost is
 * what is returned plus one chunk, whatever the files' size. `end`: the size
 * of the newest file as read, where following it goes on.
 */
export function tailLines(files: readonly string[], n: number): { text: string; end: number } {
  const parts: Buffer[] = []; // newest first
  const done = () => ({ text: Buffer.concat(parts.reverse()).toString('utf8'), end: first });
  let first = 0;
  let ends = 0;
  let last = true; // the very last byte: a newline there ends the last line, it does not start one
  for (const file of files) {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      continue; // not rotated that far yet
    }
    try {
      let end = fs.fstatSync(fd).size;
      if (file === files[0]) first = end;
      if (n <= 0) break;
      while (end > 0) {
        const len = Math.min(CHUNK, end);
        const buf = Buffer.allocUnsafe(len);
        const got = readFully(fd, buf, end - len);
        end -= len;
        for (let i = got - 1; i >= 0; i--) {
          const nl = buf[i] === NL;
          if (last) { last = false; if (nl) continue; }
          if (nl && ++ends === n) {
            parts.push(buf.subarray(i + 1, got));
            return done();
          }
        }
        parts.push(buf.subarray(0, got));
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return done();
}

function readFully(fd: number, buf: Buffer, pos: number): number {
  let got = 0;
  while (got < buf.length) {
    const r = fs.readSync(fd, buf, got, buf.length - got, pos + got);
    if (r === 0) break;
    got += r;
  }
  return got;
}

/** Where a rotation put the bytes it kept: the old log from `from` on is now `${file}.1` from 0. */
export interface Rotation {
  from: number;
}

/**
 * When the log is over `maxBytes`: the older copies shift (log.1 -> log.2 ...,
 * the oldest is dropped), the log's last `maxBytes` (from a line start) become
 * log.1, and the log is emptied. Every file stays near `maxBytes` however fast
 * the replica wrote since the last look. Bytes written between the end of the
 * copy and the truncation (a few microseconds) are lost, as with logrotate's
 * copytruncate.
 */
export function rotateLog(file: string, maxBytes: number, keep: number): Rotation | null {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    return null;
  }
  if (size <= maxBytes) return null;
  if (keep <= 0) {
    fs.truncateSync(file, 0);
    return { from: Infinity };
  }
  for (let i = keep - 1; i >= 1; i--) {
    try { fs.renameSync(`${file}.${i}`, `${file}.${i + 1}`); } catch { /* not there yet */ }
  }
  const src = fs.openSync(file, 'r');
  const dst = fs.openSync(`${file}.1`, 'w', 0o600);
  let from = size - maxBytes;
  try {
    from = lineStart(src, from);
    const buf = Buffer.allocUnsafe(COPY_CHUNK);
    // up to the end as it is now, and whatever the replica adds meanwhile (bounded: a replica that never pauses is cut)
    for (let pos = from, limit = size + maxBytes; pos < limit;) {
      const r = fs.readSync(src, buf, 0, Math.min(buf.length, limit - pos), pos);
      if (r === 0) break;
      fs.writeSync(dst, buf, 0, r);
      pos += r;
    }
    fs.truncateSync(file, 0);
  } finally {
    fs.closeSync(src);
    fs.closeSync(dst);
  }
  return { from };
}

/** The first line start at or after `pos` within one chunk (else `pos` itself: a line longer than a chunk is cut). */
function lineStart(fd: number, pos: number): number {
  if (pos === 0) return 0;
  const buf = Buffer.allocUnsafe(CHUNK);
  const got = fs.readSync(fd, buf, 0, CHUNK, pos - 1);
  const i = buf.subarray(0, got).indexOf(NL);
  return i < 0 ? pos : pos - 1 + i + 1;
}

/**
 * Follows a log from a position: `poll` sends what was appended; `rotated`
 * (called by whoever rotated, right after) sends what was appended before the
 * rotation from the copy, then goes on from the start of the emptied log.
 */
export class LogFollower {
  private readonly utf8 = new StringDecoder('utf8');

  constructor(private readonly file: string, private pos: number, private readonly onData: (s: string) => void) {}

  /** false when the log is gone */
  poll(): boolean {
    let size: number;
    try {
      size = fs.statSync(this.file).size;
    } catch {
      return false;
    }
    // emptied by a rotation this process did not see (another agent process)
    if (size < this.pos) this.pos = 0;
    this.pos = this.send(this.file, this.pos, size);
    return true;
  }

  rotated(r: Rotation): void {
    const copy = `${this.file}.1`;
    if (Number.isFinite(r.from)) {
      try {
        this.send(copy, Math.max(0, this.pos - r.from), fs.statSync(copy).size);
      } catch { /* dropped already */ }
    }
    this.pos = 0;
  }

  /** sends [from, to) of a file in chunks; returns where it stopped */
  private send(file: string, from: number, to: number): number {
    if (to <= from) return from;
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, to - from));
      let pos = from;
      while (pos < to) {
        const r = fs.readSync(fd, buf, 0, Math.min(buf.length, to - pos), pos);
        if (r === 0) break;
        pos += r;
        const text = this.utf8.write(buf.subarray(0, r));
        if (text) this.onData(text);
      }
      return pos;
    } finally {
      fs.closeSync(fd);
    }
  }
}
