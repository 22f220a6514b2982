// Small pieces every page uses: how figures are written, error boxes, state
// badges and the confirmation a destructive button asks for.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { ApiError } from '../api.js';

/** a latency through a site proxy, often under a millisecond: two decimals there */
export const lat = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : x < 10 ? `${x.toFixed(2)} ms` : `${Math.round(x)} ms`);

export const ms = (x: number | null | undefined): string =>
  x === null || x === undefined ? '-' : x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : x >= 100 ? `${Math.round(x)} ms` : `${x.toFixed(1)} ms`;

export const pct = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : `${x.toFixed(1)}%`);

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

export function ago(at: number | null | undefined, now = Date.now()): string {
  if (!at) return '-';
  const s = Math.max(0, Math.round((now - at) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.floor(s / 60)}m ago` : s < 86400 ? `${Math.floor(s / 3600)}h ago` : `${Math.floor(s / 86400)}d ago`;
}

export const time = (at: number): string => new Date(at).toLocaleTimeString(undefined, { hour12: false });

export function ErrorBox({ error }: { error: ApiError | null }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <b>{error.code}</b> {error.message}{error.path ? <span class="muted"> (at {error.path})</span> : null}
    </div>
  );
}

const GOOD = new Set(['ready', 'running', 'complete']);
const BAD = new Set(['failed', 'unreachable', 'revoked', 'rolled-back', 'lost']);

export function Badge({ state }: { state: string }) {
  const cls = GOOD.has(state) ? 'good' : BAD.has(state) ? 'bad' : 'warn';
  return <span class={`badge ${cls}`}>{state}</span>;
}

/** A button that asks before it acts; the action's error shows beside it. */
export function Confirm({ label, question, act, danger }: { label: string; question: string; act: () => Promise<unknown>; danger?: boolean }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<ApiError | null>(null);
  const go = async (): Promise<void> => {
    setBusy(true);
    setErr(null);
    try {
      await act();
      setAsking(false);
    } catch (e) {
      setErr(e as ApiError);
    }
    setBusy(false);
  };
  return (
    <span class="confirm">
      <button class={danger ? 'danger' : ''} onClick={() => setAsking(true)} disabled={busy}>{label}</button>
      {asking && (
        <div class="dialog" role="dialog" aria-label={label}>
          <p>{question}</p>
          <button class={danger ? 'danger' : 'primary'} onClick={go} disabled={busy}>{busy ? 'working ...' : `Yes, ${label.toLowerCase()}`}</button>
          <button onClick={() => setAsking(false)} disabled={busy}>Cancel</button>
          <ErrorBox error={err} />
        </div>
      )}
    </span>
  );
}

export function Section({ title, children, right }: { title: string; children: ComponentChildren; right?: ComponentChildren }) {
  return (
    <section class="card">
      <header><h2>{title}</h2>{right}</header>
      {children}
    </section>
  );
}
