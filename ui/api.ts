// The dashboard's client of the control plane's API: the same routes and types
// as the CLI's (src/contract/api.ts), called with fetch from the page's origin.
// The token lives in sessionStorage (this tab, until it closes or signs out) and
// travels only in the Authorization header, never in a URL.
import type { ApiErrorAnswer, ListPath, ListRoutes } from '../src/contract/api.js';

const KEY = 'outpost.token';

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly path?: string) {
    super(message);
  }
}

export const token = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (t: string): void => sessionStorage.setItem(KEY, t),
  clear: (): void => sessionStorage.removeItem(KEY),
};

export function authHeaders(): Record<string, string> {
  const t = token.get();
  return t ? { authorization: `Bearer ${t}` } : {};
}

/** A failed answer as an ApiError with the API's code; an E_UNAUTHORIZED signs the tab out. */
async function failure(res: Response): Promise<ApiError> {
  let body: Partial<ApiErrorAnswer> = {};
  try {
    body = (await res.json()) as ApiErrorAnswer;
  } catch {
    // not JSON: a proxy's page or a cut connection; the status says enough
  }
  const e = body.error;
  const err = new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? res.statusText, e?.path);
  if (err.code === 'E_UNAUTHORIZED') window.dispatchEvent(new CustomEvent('outpost:signed-out', { detail: err.message }));
  return err;
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  /** the body is manifest text (YAML or JSON), sent as the CLI sends a file */
  yaml?: boolean;
  signal?: AbortSignal;
}

export async function api<T>(path: string, o: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...authHeaders() };
  let body: string | undefined;
  if (o.body !== undefined) {
    headers['content-type'] = o.yaml ? 'application/yaml' : 'application/json';
    body = o.yaml ? String(o.body) : JSON.stringify(o.body);
  }
  const res = await fetch(path, { method: o.method ?? 'GET', headers, body, signal: o.signal });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

/** A whole list route, read a page at a time (the pages are big: a 1,000-node fleet is one or two requests). */
export async function list<P extends ListPath>(path: P, query: Record<string, string> = {}, signal?: AbortSignal): Promise<ListRoutes[P]['item'][]> {
  const items: ListRoutes[P]['item'][] = [];
  let after: string | null = null;
  do {
    const q: URLSearchParams = new URLSearchParams({ ...query, limit: '5000', ...(after ? { after } : {}) });
    const res: Response = await fetch(`${path}?${q}`, { headers: { accept: 'application/json', ...authHeaders() }, signal });
    if (!res.ok) throw await failure(res);
    items.push(...((await res.json()) as ListRoutes[P]['item'][]));
    after = res.headers.get('x-next-after');
  } while (after);
  return items;
}

/**
 * A streamed text answer (logs), handed over a chunk at a time until it ends or
 * the signal aborts; `onOpen` hears that it was answered (a quiet stream may
 * send nothing for a long time).
 */
export async function stream(path: string, onText: (s: string) => void, signal: AbortSignal, headers: Record<string, string> = {}, onOpen?: () => void): Promise<void> {
  const res = await fetch(path, { headers: { ...authHeaders(), ...headers }, signal });
  if (!res.ok) throw await failure(res);
  onOpen?.();
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    onText(value);
  }
}

export const enc = encodeURIComponent;
