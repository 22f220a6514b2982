// Compressed request bodies at the hub: devices on thin links send gzip or
// deflate (`Content-Encoding`). The decompressed size counts against the body
// limit, and decompression stops as soon as it passes it: a small body that
// inflates to gigabytes (a zip bomb) costs the hub the limit, not the bomb.
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { OutpostError } from '../core/errors.js';

export type Coding = 'identity' | 'gzip' | 'deflate';

const CODINGS: Record<string, Coding> = { '': 'identity', identity: 'identity', gzip: 'gzip', 'x-gzip': 'gzip', deflate: 'deflate' };

/** The coding a `Content-Encoding` header names; throws (415) for any other, or for a list of them. */
export function codingOf(header: string | undefined): Coding {
  const c = CODINGS[(header ?? '').trim().toLowerCase()];
  if (c) return c;
  throw new OutpostError('E_INVALID', `send bodies uncompressed or with Content-Encoding gzip or deflate, not ${JSON.stringify(header)}`, { path: 'content-encoding' });
}

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const inflateRaw = promisify(zlib.inflateRaw);

/** A zlib stream's header (RFC 1950): HTTP's `deflate`; some clients send raw deflate (RFC 1951) under that name. */
const isZlib = (b: Buffer) => b.length >= 2 && (b[0]! & 0x0f) === 8 && ((b[0]! << 8) | b[1]!) % 31 === 0;

/**
 * Bodies up to this size (compressed) are decompressed on the event loop: a
 * device's batch takes tens of microseconds, less than the hop to zlib's
 * thread pool and back; at worst (a bomb this size) the limit stops it within
 * a few milliseconds. Larger bodies go to the thread pool.
 */
const SYNC_BELOW = 64 * 1024;

function inflateSync(raw: Buffer, coding: 'gzip' | 'deflate', opts: zlib.ZlibOptions): Buffer {
  return coding === 'gzip' ? zlib.gunzipSync(raw, opts) : isZlib(raw) ? zlib.inflateSync(raw, opts) : zlib.inflateRawSync(raw, opts);
}

function inflateAsync(raw: Buffer, coding: 'gzip' | 'deflate', opts: zlib.ZlibOptions): Promise<Buffer> {
  return coding === 'gzip' ? gunzip(raw, opts) : isZlib(raw) ? inflate(raw, opts) : inflateRaw(raw, opts);
}

/** The body as text: decompressed (at most `limit` bytes of it) when it came compressed. */
export async function decodeBody(raw: Buffer, coding: Coding, limit: number): Promise<string> {
  if (coding === 'identity') return raw.toString('utf8');
  const opts = { maxOutputLength: limit };
  try {
    const out = raw.length < SYNC_BELOW ? inflateSync(raw, coding, opts) : await inflateAsync(raw, coding, opts);
    return out.toString('utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new OutpostError('E_TOO_LARGE', `the body decompresses to more than ${limit} bytes (the limit counts the decompressed body)`, { path: 'body' });
    }
    throw new OutpostError('E_INVALID', `the body is not valid ${coding} data (Content-Encoding: ${coding}): ${(e as Error).message}`, { path: 'body' });
  }
}
