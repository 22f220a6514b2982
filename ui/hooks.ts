// How a page keeps its data live: load once, then again when an event that
// touches it arrives (and, for figures no event announces, such as RTTs and hub
// queues, every few seconds). Reloads are at most one a second, the first at
// once: a burst of 1,000 replica events costs one request, and a lone event is
// on screen within a second.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { OutpostEvent } from '../src/contract/api.js';
import { ApiError } from './api.js';
import { live } from './live.js';

/** timed reloads: never more often than this */
export const MIN_RELOAD_MS = 1000;
/** reloads an event asks for: at most one per this */
export const EVENT_RELOAD_MS = 400;
/** how often a page that follows events reloads when there are none to follow */
export const POLL_MS = 3000;

export interface Loaded<T> {
  data: T | null;
  error: ApiError | null;
  /** epoch ms of the data shown */
  at: number;
  reload(): void;
}

export interface LoadOptions {
  /** reload when an event passes this test */
  on?: (e: OutpostEvent) => boolean;
  /** and at least this often, ms (never under MIN_RELOAD_MS) */
  everyMs?: number;
}

export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[], o: LoadOptions = {}): Loaded<T> {
  const [s, set] = useState<{ data: T | null; error: ApiError | null; at: number }>({ data: null, error: null, at: 0 });
  const kick = useRef<() => void>(() => {});
  useEffect(() => {
    const ctl = new AbortController();
    let last = 0;
    let inFlight = false;
    let again = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const fetchNow = async (): Promise<void> => {
      inFlight = true;
      last = Date.now();
      try {
        const data = await load(ctl.signal);
        if (!ctl.signal.aborted) set({ data, error: null, at: Date.now() });
      } catch (e) {
        if (!ctl.signal.aborted) set((p) => ({ ...p, error: e instanceof ApiError ? e : new ApiError(0, 'E_NETWORK', (e as Error).message) }));
      }
      inFlight = false;
      if (again && !ctl.signal.aborted) {
        again = false;
        request();
      }
    };
    const request = (): void => {
      if (inFlight) {
        again = true;
        return;
      }
      if (timer) return;
      const wait = Math.max(0, last + EVENT_RELOAD_MS - Date.now());
      timer = setTimeout(() => {
        timer = undefined;
        void fetchNow();
      }, wait);
    };
    kick.current = request;
    void fetchNow();
    const off = o.on ? live.on((e) => o.on!(e) && request()) : () => {};
    const everyMs = o.on && !live.streaming() ? Math.min(o.everyMs ?? POLL_MS, POLL_MS) : o.everyMs;
    const every = everyMs ? setInterval(request, Math.max(MIN_RELOAD_MS, everyMs)) : undefined;
    return () => {
      ctl.abort();
      off();
      clearTimeout(timer);
      clearInterval(every);
    };
  }, deps);
  return { ...s, reload: () => kick.current() };
}

/** The page the hash names: `#/apps/shop-a/logs` is ['apps', 'shop-a', 'logs']. */
export function useRoute(): string[] {
  // a hand-typed hash may not decode (`%E0`): its text as it is, not a blank page
  const part = (p: string): string => { try { return decodeURIComponent(p); } catch { return p; } };
  const read = (): string[] => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(part);
  const [r, set] = useState(read);
  useEffect(() => {
    const on = (): void => set(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return r;
}

export const href = (...parts: string[]): string => `#/${parts.map(encodeURIComponent).join('/')}`;
