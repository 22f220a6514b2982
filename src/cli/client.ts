// The CLI's HTTP client: the CLI only ever talks to the control plane's API.
// It uses node:http rather than fetch: the first fetch of a Node 20 process
// loads undici (~35 ms), a third of a short command's time.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { OutpostError, type ErrorCode } from '../core/errors.js';
import { readEnv } from '../env.js';

export function dataDir(flag?: string): string {
  return path.resolve(flag ?? readEnv('OUTPOST_DATA_DIR') ?? path.join(os.homedir(), '.outpost'));
}

export interface RequestOptions {
  contentType?: string;
  /** give up when the connection is silent this long (0: never) */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

// one keep-alive connection reused by a command's successive requests (deploy --wait polls)
const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 4 }), https: new https.Agent({ keepAlive: true, maxSockets: 4 }) };

export class Client {
  constructor(readonly server: string, private readonly token: string) {}

  static fromEnv(): Client {
    const server = (readEnv('OUTPOST_SERVER') ?? 'http://127.0.0.1:7070').replace(/\/+$/, '');
    let token = readEnv('OUTPOST_TOKEN');
    if (!token) {
      const file = path.join(dataDir(), 'admin.token');
      try {
        token = fs.readFileSync(file, 'utf8').trim();
      } catch {
        throw new OutpostError('E_UNAUTHORIZED', `no API token: set OUTPOST_TOKEN, or OUTPOST_DATA_DIR to the control plane's data dir (looked for ${file})`);
      }
    }
    return new Client(server, token);
  }

  /**
   * `body` goes as JSON; a string with a `contentType` goes as it is. Gives
   * up (E_NO_SERVER) when the connection is silent for `timeoutMs` (default
   * 60 s): a control plane that vanished must not hang a command for ever.
   */
  async request<T>(method: string, p: string, body?: unknown, o: RequestOptions = {}): Promise<T> {
    const res = await this.raw(method, p, body, { timeoutMs: DEFAULT_TIMEOUT_MS, ...o });
    let text: string;
    try {
      text = await readAll(res);
    } catch (e) {
      throw e instanceof OutpostError ? e : new OutpostError('E_NO_SERVER', `the control plane at ${this.server} broke off its answer (${(e as Error).message})`);
    }
    const status = res.statusCode ?? 0;
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      throw new OutpostError('E_INTERNAL', `the control plane answered ${status} with a body that is not JSON`);
    }
    if (status < 200 || status >= 300) {
      const e = (json as { error?: { code: ErrorCode; message: string; path?: string; details?: unknown } } | null)?.error;
      throw new OutpostError(e?.code ?? 'E_INTERNAL', e?.message ?? `HTTP ${status}`, { path: e?.path, details: e?.details });
    }
    return json as T;
  }

  /** The response itself, its body unread: for streams (logs --follow, which sets no timeout). */
  raw(method: string, p: string, body?: unknown, o: RequestOptions = {}): Promise<http.IncomingMessage> {
    const contentType = o.contentType ?? 'application/json';
    const url = new URL(this.server + p);
    const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' && contentType !== 'application/json' ? body : JSON.stringify(body));
    const secure = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(url, {
        method,
        agent: secure ? agents.https : agents.http,
        headers: { authorization: `Bearer ${this.token}`, ...(data ? { 'content-type': contentType, 'content-length': data.length } : {}) },
      }, resolve);
      req.on('error', (e) => reject(e instanceof OutpostError ? e : new OutpostError('E_NO_SERVER', `cannot reach the control plane at ${this.server} (${e.message}); is \`outpost server\` or \`outpost up\` running? Set OUTPOST_SERVER to its URL.`)));
      if (o.timeoutMs) {
        req.setTimeout(o.timeoutMs, () => req.destroy(new OutpostError('E_NO_SERVER', `the control plane at ${this.server} did not answer within ${o.timeoutMs! / 1000} s`)));
      }
      req.end(data);
    });
  }
}

export async function readAll(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
