// One live connection per tab: the event log (GET /v1/events/stream), read
// with fetch because EventSource cannot send the token header. Pages subscribe
// to it and refetch what an event touches. After a cut it reconnects with the
// last seq it saw (Last-Event-ID), so nothing in between is missed.
import type { OutpostEvent } from '../src/contract/api.js';
import { ApiError, stream } from './api.js';

type Listener = (e: OutpostEvent) => void;
type StateListener = (s: LiveState) => void;
/** off: this token may not read the event log (no event:read): pages poll instead */
export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'off';

const listeners = new Set<Listener>();
const stateListeners = new Set<StateListener>();
let state: LiveState = 'connecting';
let lastSeq: string | null = null;
let abort: AbortController | null = null;

function setState(s: LiveState): void {
  state = s;
  for (const l of stateListeners) l(s);
}

/** SSE frames out of text chunks: `id:` and `data:` lines, a blank line ends a frame. */
function parser(onFrame: (id: string | null, data: string) => void): (chunk: string) => void {
  let buf = '';
  return (chunk) => {
    buf += chunk;
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let id: string | null = null;
      const data: string[] = [];
      for (const line of frame.split('\n')) {
        if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      onFrame(id, data.join('\n'));
    }
  };
}

async function run(signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      const onChunk = parser((id, data) => {
        if (id) lastSeq = id;
        if (!data) return;
        const e = JSON.parse(data) as OutpostEvent & { code?: string };
        if (typeof e.seq !== 'number') return; // an `event: error` frame: the stream ends and we resume
        for (const l of listeners) l(e);
      });
      // live once the stream has answered, not when it is asked for
      await stream('/v1/events/stream', onChunk, signal, lastSeq ? { 'last-event-id': lastSeq } : {}, () => setState('live'));
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof ApiError && (e.code === 'E_UNAUTHORIZED' || e.code === 'E_FORBIDDEN')) return setState('off');
    }
    if (signal.aborted) return;
    setState('reconnecting');
    await new Promise((r) => setTimeout(r, 2000));
  }
}

export const live = {
  /** follow the event log; a token without event:read gets no stream, and pages poll */
  start(canRead: boolean): void {
    if (!canRead) return setState('off');
    if (abort) return;
    abort = new AbortController();
    void run(abort.signal);
  },
  stop(): void {
    abort?.abort();
    abort = null;
    lastSeq = null;
    setState('connecting');
  },
  /** false when no events will come: pages must poll */
  streaming(): boolean {
    return state !== 'off';
  },
  on(l: Listener): () => void {
    listeners.add(l);
    return () => listeners.delete(l);
  },
  onState(l: StateListener): () => void {
    stateListeners.add(l);
    l(state);
    return () => stateListeners.delete(l);
  },
};
