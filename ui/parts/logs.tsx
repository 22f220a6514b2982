// A replica's (or a whole app's) log, live: GET /v1/apps/NAME/logs?follow=true
// streamed as text through the agents' connections. Lines go straight into
// the DOM, a frame's worth at a time, and the oldest leave past MAX_LINES, so
// a chatty replica costs a bounded page. The view stays at the bottom unless
// the reader scrolled up; Pause holds new lines back (the stream goes on),
// and so does a reader scrolled up once the page is full (no line they may be
// reading is pushed out under them).
// When the stream ends (the replica restarted, the node dropped), it comes
// back after a pause with the last TAIL lines, and the lines it had already
// shown are dropped: only what is new is added.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, enc, stream } from '../api.js';
import { ErrorBox } from './common.js';

const MAX_LINES = 5000;
const TAIL = 200;
/** a line longer than this is cut (a megabyte of JSON on one line would stall the page) */
const MAX_LINE_CHARS = 10_000;
/** waits before reconnecting: doubling from the first to the last while the stream keeps ending at once */
const RETRY_MS = [1000, 2000, 5000, 10_000, 30_000];
/** a stream that lived this long was a good one: the next wait starts from the first again */
const GOOD_STREAM_MS = 10_000;
/** after a reconnect, the backlog (TAIL lines) arrives at once: this long after its first chunk it is taken as whole */
const BACKLOG_MS = 500;

// terminal colours and other control characters, which would show as noise (tabs stay)
const CONTROLS = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]/g;
const clean = (s: string): string => {
  const t = s.replace(CONTROLS, '');
  return t.length > MAX_LINE_CHARS ? `${t.slice(0, MAX_LINE_CHARS)} … (${t.length - MAX_LINE_CHARS} more characters)` : t;
};

/** How many of `fresh`'s first lines are the last lines of `seen` (the longest such overlap). */
export function overlap(seen: string[], fresh: string[]): number {
  for (let k = Math.min(seen.length, fresh.length); k > 0; k--) {
    let same = true;
    for (let i = 0; i < k && same; i++) same = seen[seen.length - k + i] === fresh[i];
    if (same) return k;
  }
  return 0;
}

type State = 'connecting' | 'live' | 'reconnecting' | 'stopped';

/** The DOM side: lines into a box, the oldest out, the view kept at the bottom while it was there. */
class LogView {
  /** the last TAIL complete lines, to tell the repeated ones after a reconnect */
  recent: string[] = [];
  /** lines waiting for the next frame (or for Resume) */
  private queue: { text: string; note?: boolean }[] = [];
  private partialText = '';
  private frame = 0;
  paused = false;
  stick = true;
  onQueue: (n: number) => void = () => {};

  constructor(private readonly box: HTMLElement, private readonly partial: HTMLElement) {}

  add(lines: string[], note = false): void {
    for (const text of lines) {
      this.queue.push({ text, note });
      if (!note) this.recent.push(text);
    }
    if (this.queue.length > MAX_LINES) this.queue.splice(0, this.queue.length - MAX_LINES);
    if (this.recent.length > TAIL) this.recent.splice(0, this.recent.length - TAIL);
    this.schedule();
  }

  /** the unfinished last line, shown as it is until its end comes */
  setPartial(text: string): void {
    this.partialText = text;
    this.schedule();
  }

  schedule(): void {
    if (this.held()) return this.onQueue(this.queue.length);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  /** lines wait while paused, and while the reader is scrolled up and adding them would push out lines they may be reading */
  private held(): boolean {
    return this.paused || (!this.stick && this.box.childElementCount - 1 + this.queue.length > MAX_LINES);
  }

  private flush(): void {
    this.frame = 0;
    if (this.held()) return this.onQueue(this.queue.length);
    if (this.partial.textContent !== this.partialText) this.partial.textContent = this.partialText;
    const frag = document.createDocumentFragment();
    for (const l of this.queue) {
      const div = document.createElement('div');
      div.className = l.note ? 'ln note' : 'ln';
      div.textContent = l.text;
      frag.appendChild(div);
    }
    if (this.queue.length) this.onQueue(0);
    this.queue = [];
    this.box.insertBefore(frag, this.partial);
    // the oldest go (only at the bottom: a reader scrolled up holds new lines back instead)
    for (let extra = this.box.childElementCount - 1 - MAX_LINES; extra > 0; extra--) this.box.firstElementChild!.remove();
    if (this.stick) this.box.scrollTop = this.box.scrollHeight;
  }

  clear(): void {
    while (this.box.firstElementChild !== this.partial) this.box.firstElementChild!.remove();
    this.queue = [];
    this.onQueue(0);
  }

  stop(): void {
    cancelAnimationFrame(this.frame);
  }
}

export function Logs({ app, replica, container }: { app: string; replica?: string; container?: string }) {
  const box = useRef<HTMLDivElement>(null);
  const partial = useRef<HTMLDivElement>(null);
  const view = useRef<LogView | null>(null);
  const [state, setState] = useState<State>('connecting');
  const [error, setError] = useState<ApiError | null>(null);
  const [waiting, setWaiting] = useState(0);
  const [paused, setPaused] = useState(false);
  const [stick, setStick] = useState(true);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    const v = new LogView(box.current!, partial.current!);
    v.onQueue = setWaiting;
    view.current = v;
    // another log (or Try again): it starts unpaused, at the bottom
    setPaused(false);
    setStick(true);
    const ctl = new AbortController();
    const q = new URLSearchParams({ follow: 'true', tail: String(TAIL), ...(replica ? { replica } : {}), ...(container ? { container } : {}) });
    const path = `/v1/apps/${enc(app)}/logs?${q}`;
    let retry = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async (again: boolean): Promise<void> => {
      let held = '';
      /** after a reconnect: the backlog's lines, until it is whole and the repeats can be dropped */
      let backlog: string[] | null = again ? [] : null;
      let backlogTimer: ReturnType<typeof setTimeout> | undefined;
      const settle = (): void => {
        if (!backlog) return;
        const k = overlap(v.recent, backlog);
        if (k === 0 && v.recent.length) v.add(['(reconnected: what the replica wrote meanwhile may be missing or shown again)'], true);
        v.add(backlog.slice(k));
        backlog = null;
        clearTimeout(backlogTimer);
      };
      const began = Date.now();
      setState(again ? 'reconnecting' : 'connecting');
      try {
        await stream(path, (chunk) => {
          const parts = (held + chunk).split('\n');
          held = parts.pop()!;
          const lines = parts.map(clean);
          if (backlog) {
            backlog.push(...lines);
            if (backlog.length >= TAIL) settle();
            else backlogTimer ??= setTimeout(settle, BACKLOG_MS);
          } else v.add(lines);
          v.setPartial(backlog ? '' : clean(held));
        }, ctl.signal, {}, () => setState('live'));
        settle();
        if (held) v.add([clean(held)]);
        v.setPartial('');
      } catch (e) {
        clearTimeout(backlogTimer);
        if (ctl.signal.aborted) return;
        // the app or replica is gone, or the token may not read logs: trying again will not help
        if (e instanceof ApiError) {
          setError(e);
          return setState('stopped');
        }
      }
      if (ctl.signal.aborted) return;
      retry = Date.now() - began > GOOD_STREAM_MS ? 0 : Math.min(retry + 1, RETRY_MS.length - 1);
      setState('reconnecting');
      timer = setTimeout(() => void run(true), RETRY_MS[retry]);
    };
    setError(null);
    void run(false);
    return () => {
      ctl.abort();
      clearTimeout(timer);
      v.stop();
      v.clear();
    };
  }, [app, replica, container, attempt]);

  const togglePause = (): void => {
    const v = view.current!;
    v.paused = !v.paused;
    setPaused(v.paused);
    v.schedule();
  };
  const onScroll = (): void => {
    const el = box.current!;
    const at = el.scrollHeight - el.scrollTop - el.clientHeight < 8;
    const v = view.current;
    if (v && v.stick !== at) {
      v.stick = at;
      // back at the bottom: what waited comes in
      if (at) v.schedule();
    }
    if (at !== stick) setStick(at);
  };
  const toBottom = (): void => {
    const el = box.current!;
    el.scrollTop = el.scrollHeight;
    onScroll();
  };
  return (
    <div class="logs" data-testid="logs" data-state={state}>
      <div class="logs-bar">
        <span class={`live ${state}`} data-testid="logs-state">{state}</span>
        <span class="muted">{replica ?? `every replica of ${app}`}{container ? ` / ${container}` : ''}, the last {TAIL} lines, then as written</span>
        <span class="spacer" />
        {!stick && <button onClick={toBottom} title="back to the newest lines">↓ newest{waiting && !paused ? ` (${waiting} waiting)` : ''}</button>}
        <button onClick={togglePause} data-testid="logs-pause" aria-pressed={paused}>{paused ? `Resume${waiting ? ` (${waiting} new)` : ''}` : 'Pause'}</button>
        <button onClick={() => view.current?.clear()}>Clear</button>
      </div>
      <div class="logview" ref={box} onScroll={onScroll} role="log" aria-live="off" aria-label={`log of ${replica ?? app}`}>
        <div class="ln partial" ref={partial} />
      </div>
      {error && (
        <div class="row">
          <ErrorBox error={error} />
          <button onClick={() => setAttempt((n) => n + 1)}>Try again</button>
        </div>
      )}
    </div>
  );
}
