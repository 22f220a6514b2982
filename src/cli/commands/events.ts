// outpost events [--follow]: the event log, in the store's order. --follow
// reads the server-sent event stream and, when the connection drops (a
// control plane restarting, another instance taking over), comes back with
// the last seq it saw: nothing is missed, nothing printed twice. The control
// plane checks `--since` (a bad one is E_INVALID at `since`).
import type { IncomingMessage } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { OutpostError } from '../../core/errors.js';
import { neutraliseControls } from '../../core/text.js';
import type { ApiClient } from '../../contract/client.js';
import type { EventsQuery, OutpostEvent } from '../../contract/api.js';
import { printPages } from '../output.js';

export interface EventsOptions {
  follow?: boolean;
  app?: string;
  node?: string;
  since?: string;
  limit?: string;
  json?: boolean;
}

const HEADERS = ['TIME', 'SEQ', 'TYPE', 'APP', 'NODE', 'MESSAGE'];
/** a dropped stream is opened again after this, doubling up to the most */
const RETRY_MS = 500;
const RETRY_MAX_MS = 5000;
/** codes that another try cannot fix */
const FINAL = new Set(['E_UNAUTHORIZED', 'E_FORBIDDEN', 'E_INVALID', 'E_NOT_FOUND', 'E_TLS', 'E_USAGE']);

const row = (e: OutpostEvent) => [new Date(e.at).toISOString(), e.seq, e.type, e.app, e.node, neutraliseControls(e.message)];

export async function events(client: ApiClient, o: EventsOptions): Promise<void> {
  const q: EventsQuery = { app: o.app, node: o.node };
  if (o.follow) return follow(client, { ...q, since: o.since }, !!o.json);
  const max = o.limit === undefined ? 1000 : Number(o.limit);
  if (!(Number.isInteger(max) && max >= 1)) throw new OutpostError('E_USAGE', `--limit must be a whole number of at least 1, got "${o.limit}"`, { path: 'limit' });
  await printPages(pages(client, { ...q, since: o.since ?? '1h' }, max), !!o.json, HEADERS, row);
}

/** Pages of the log from `since`, at most `max` events in all. */
async function* pages(client: ApiClient, q: EventsQuery, max: number): AsyncGenerator<OutpostEvent[]> {
  let left = max;
  let since = q.since;
  for (;;) {
    const page = await client.events({ ...q, since, limit: Math.min(left, 1000) });
    yield page.events;
    left -= page.events.length;
    if (left <= 0 || !page.more) return;
    since = String(page.last);
  }
}

async function follow(client: ApiClient, q: EventsQuery, json: boolean): Promise<void> {
  let since = q.since;
  let wait = RETRY_MS;
  for (;;) {
    let res: IncomingMessage;
    try {
      res = await client.eventStream({ ...q, since });
    } catch (e) {
      if (e instanceof OutpostError && FINAL.has(e.code)) throw e;
      await retry(e, wait);
      wait = Math.min(wait * 2, RETRY_MAX_MS);
      continue;
    }
    wait = RETRY_MS;
    const ended = await read(res, (seq) => { since = String(seq); }, (e) => print(e, json));
    await retry(ended, wait);
  }
}

/** Prints one event: a line of JSON, or a row whose columns stay put. */
function print(e: OutpostEvent, json: boolean): void {
  if (json) { process.stdout.write(JSON.stringify(e) + '\n'); return; }
  const [at, seq, type, app, node, message] = row(e).map((c) => (c === null || c === undefined ? '-' : String(c)));
  process.stdout.write(`${at}  ${seq!.padEnd(7)}  ${type!.padEnd(18)}  ${app!.padEnd(16)}  ${node!.padEnd(16)}  ${message}\n`);
}

async function retry(why: unknown, ms: number): Promise<void> {
  process.stderr.write(`(the event stream ended: ${why instanceof Error ? why.message : String(why ?? 'closed')}; reconnecting)\n`);
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * Reads server-sent events until the stream ends: `seq` hears every `id`
 * (events' and the heartbeats' cursor), `event` every event. Resolves with
 * why it ended.
 */
async function read(res: IncomingMessage, seq: (n: number) => void, event: (e: OutpostEvent) => void): Promise<unknown> {
  const utf8 = new StringDecoder('utf8');
  let buf = '';
  try {
    for await (const chunk of res) {
      buf += utf8.write(chunk as Buffer);
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const f = fields(block);
        if (f.event === 'error') return new Error(f.data ? (JSON.parse(f.data) as { message: string }).message : 'error');
        if (f.data) event(JSON.parse(f.data) as OutpostEvent);
        if (f.id !== undefined && /^\d+$/.test(f.id)) seq(Number(f.id));
      }
    }
    return 'the control plane closed it';
  } catch (e) {
    return e;
  }
}

/** One SSE block's fields (comments dropped; several data lines joined). */
function fields(block: string): { id?: string; event?: string; data?: string } {
  const out: { id?: string; event?: string; data?: string } = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const k = i < 0 ? line : line.slice(0, i);
    const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (k === 'data') out.data = out.data === undefined ? v : `${out.data}\n${v}`;
    else if (k === 'id' || k === 'event') out[k] = v;
  }
  return out;
}
