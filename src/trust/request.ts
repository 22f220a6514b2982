// One JSON request to the control plane for enrolment and its CA, over
// node:https with a given CA (or, for the CA's own fetch, unverified: the
// caller checks what it got against the join token's fingerprint).
import https from 'node:https';
import http from 'node:http';
import { OutpostError, type ErrorCode } from '../core/errors.js';

const MAX_ANSWER_BYTES = 1024 * 1024;

/** One JSON request to the control plane; errors come back as OutpostErrors with the server's code. */
export function request<T>(url: string, method: string, body: unknown, o: { ca?: string | null; token?: string; verify?: boolean }): Promise<{ status: number; body: T; text: string }> {
  const u = new URL(url);
  const data = body === undefined ? undefined : JSON.stringify(body);
  const lib = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(u, {
      method,
      headers: { ...(data ? { 'content-type': 'application/json' } : {}), ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
      ...(u.protocol === 'https:' ? { ca: o.ca ?? undefined, rejectUnauthorized: o.verify !== false } : {}),
      timeout: 15_000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; if (text.length > MAX_ANSWER_BYTES) req.destroy(new Error('answer too large')); });
      res.on('end', () => {
        let parsed: unknown = text;
        try { parsed = JSON.parse(text); } catch { /* text */ }
        resolve({ status: res.statusCode ?? 0, body: parsed as T, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 15 s')));
    req.on('error', (e: Error & { code?: string }) => {
      const tls = e.code && /CERT|SELF_SIGNED|ALTNAME|SSL|TLS|UNABLE_TO_VERIFY/.test(e.code);
      reject(tls ? new OutpostError('E_TLS', `${u.host}: ${e.message} (${e.code})`) : e);
    });
    req.end(data);
  });
}

export function errorOf(status: number, body: unknown, fallback: string): OutpostError {
  const e = (body as { error?: { code?: string; message?: string } } | null)?.error;
  return new OutpostError((e?.code ?? (status === 401 ? 'E_UNAUTHORIZED' : 'E_INTERNAL')) as ErrorCode, e?.message ?? fallback);
}

