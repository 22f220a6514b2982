// /v1/events: the event log, a page at a time, and followed live as
// server-sent events. SSE rather than a long poll: one response carries every
// event as it is committed, with its seq as the SSE `id`, so a client that
// reconnects sends `Last-Event-ID` (a browser's EventSource does by itself;
// the CLI and the dashboard, which must send a token header EventSource cannot,
// read the stream with a plain request) and gets what it missed from the store.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OutpostError } from '../../core/errors.js';
import { capabilitiesOf, globMatches } from '../../core/capabilities.js';
import { NAME_RE } from '../../core/names.js';
import { parseSince, withoutCommandLine, type OutpostEvent, type Since } from '../../core/events.js';
import type { EventsAnswer } from '../../contract/api.js';
import { caller, type RouteDeps } from '../http.js';

export const MAX_EVENT_PAGE = 10_000;
/** a comment (and the cursor) this often keeps proxies from closing a quiet stream and lets a filtered follower resume past what it skipped */
const HEARTBEAT_MS = 15_000;
/** a client this far behind (bytes not yet taken by its connection) is cut off; it reconnects with its last seq and reads the rest from the store */
const MAX_UNSENT_BYTES = 8 * 1024 * 1024;

interface EventsQuery { since?: string; app?: string; node?: string; limit?: string; newest?: string }

export function eventRoutes(app: FastifyInstance, { cp }: RouteDeps): void {
  app.get<{ Querystring: EventsQuery }>('/v1/events', async (req): Promise<EventsAnswer> => {
    const f = filters(req.query);
    const limit = limitOf(req.query.limit);
    const since = req.query.since === undefined ? { after: 0 } : parseSince(req.query.since, Date.now());
    const newest = flag(req.query.newest, 'newest');
    const page = await cp.events.list({ ...since, app: f.app, node: f.node, limit, newest });
    const visible = scope(req);
    // a scoped token's page may hold fewer events than the log's page did: `more` is the log's
    const shown = visible ? page.events.filter(visible) : page.events;
    return { events: shown.map(viewFor(req)), last: page.last, more: !newest && limit > 0 && page.events.length === limit };
  });

  app.get<{ Querystring: EventsQuery }>('/v1/events/stream', async (req, reply) => {
    const f = filters(req.query);
    const since = await start(req, cp);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    res.write(`retry: 2000\n: events after ${'after' in since ? since.after : `time ${since.from}`}\n\n`);
    let beat: NodeJS.Timeout | undefined;
    const view = viewFor(req);
    const following = cp.events.follow({
      since, app: f.app, node: f.node, visible: scope(req),
      send: (e) => {
        res.write(`id: ${e.seq}\ndata: ${JSON.stringify(view(e))}\n\n`);
        if (res.writableLength > MAX_UNSENT_BYTES) end();
      },
      end: (err) => {
        if (err) res.write(`event: error\ndata: ${JSON.stringify({ code: 'E_STORE', message: `the event log could not be read (${(err as Error).message}); reconnect with your last seq` })}\n\n`);
        end();
      },
    });
    // the cursor covers events the filter skipped: a reconnect need not read them again
    beat = setInterval(() => res.write(`: keep-alive\nid: ${following.cursor()}\n\n`), HEARTBEAT_MS);
    function end(): void {
      clearInterval(beat);
      following?.stop();
      res.end();
    }
    req.raw.on('close', end);
  });
}

/** The app and node filters, checked: names as the manifest has them. */
function filters(q: EventsQuery): { app?: string; node?: string } {
  for (const k of ['app', 'node'] as const) {
    const v = q[k];
    if (v !== undefined && !NAME_RE.test(v)) throw new OutpostError('E_INVALID', `${k} must be a name of [a-z0-9-] (1-63 characters)`, { path: k });
  }
  return { app: q.app, node: q.node };
}

function flag(s: string | undefined, path: string): boolean {
  if (s === undefined || s === 'false' || s === '0') return false;
  if (s === 'true' || s === '1') return true;
  throw new OutpostError('E_INVALID', `${path} must be true or false`, { path });
}

function limitOf(s: string | undefined): number {
  if (s === undefined) return 1000;
  const n = Number(s);
  if (!(Number.isInteger(n) && n >= 0 && n <= MAX_EVENT_PAGE)) throw new OutpostError('E_INVALID', `limit must be an integer from 0 to ${MAX_EVENT_PAGE}`, { path: 'limit' });
  return n;
}

/**
 * Where a stream starts: after the `Last-Event-ID` a reconnecting client sends,
 * else `since`, else now (the newest seq: only what is committed from here on).
 */
async function start(req: FastifyRequest<{ Querystring: EventsQuery }>, cp: RouteDeps['cp']): Promise<Since> {
  const last = req.headers['last-event-id'];
  if (typeof last === 'string' && last !== '') {
    if (!/^\d{1,15}$/.test(last)) throw new OutpostError('E_INVALID', 'Last-Event-ID must be the seq of an event (a whole number)', { path: 'Last-Event-ID' });
    return { after: Number(last) };
  }
  if (req.query.since !== undefined) return parseSince(req.query.since, Date.now());
  return { after: (await cp.events.list({ limit: 0 })).last };
}

/** Events as this caller may read them: exec command lines whole only with `audit:read`. */
function viewFor(req: FastifyRequest): (e: OutpostEvent) => OutpostEvent {
  return capabilitiesOf(caller(req).role).has('audit:read') ? (e) => e : withoutCommandLine;
}

/** What a token scoped to some apps may not see: the events of other apps (node events have no app, and stay). */
function scope(req: FastifyRequest): ((e: OutpostEvent) => boolean) | undefined {
  const p = caller(req);
  if (p.apps === null) return undefined;
  const pattern = p.apps;
  return (e) => e.app === null || globMatches(pattern, e.app);
}
