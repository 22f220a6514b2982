// The CLI's HTTP client: the CLI only ever talks to the control plane's API.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OutpostError, type ErrorCode } from '../core/errors.js';

export function dataDir(flag?: string): string {
  return path.resolve(flag ?? process.env.OUTPOST_DATA_DIR ?? path.join(os.homedir(), '.outpost'));
}

export class Client {
  constructor(readonly server: string, private readonly token: string) {}

  static fromEnv(): Client {
    const server = (process.env.OUTPOST_SERVER ?? 'http://127.0.0.1:7070').replace(/\/+$/, '');
    let token = process.env.OUTPOST_TOKEN;
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

  async request<T>(method: string, p: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, p, body);
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      throw new OutpostError('E_INTERNAL', `the control plane answered ${res.status} with a body that is not JSON`);
    }
    if (!res.ok) {
      const e = (json as { error?: { code: ErrorCode; message: string; path?: string; details?: unknown } } | null)?.error;
      throw new OutpostError(e?.code ?? 'E_INTERNAL', e?.message ?? `HTTP ${res.status}`, { path: e?.path, details: e?.details });
    }
    return json as T;
  }

  async raw(method: string, p: string, body?: unknown): Promise<Response> {
    try {
      return await fetch(this.server + p, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new OutpostError('E_NO_SERVER', `cannot reach the control plane at ${this.server} (${(e as Error).cause ? String((e as { cause: Error }).cause.message) : (e as Error).message}); is \`outpost server\` or \`outpost up\` running? Set OUTPOST_SERVER to its URL.`);
    }
  }
}
