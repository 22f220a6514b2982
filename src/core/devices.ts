// Device credentials for the data hubs: what a device is called, the hash of
// its secret, and the streams it may publish to and read. The control plane
// makes them (`outpost device create`), pushes them to the agents, and the
// hub config file may list more; a hub keeps only the hash. Pure: the ACL
// decisions live here so the hub's two transports and the tests share them.
import crypto from 'node:crypto';
import { z } from 'zod';
import { newSecret } from './secret.js';
import { STREAM_RE } from './pipeline.js';

export interface DeviceCredential {
  /** the MQTT username, and the part of an HTTP bearer token before the last `.` */
  name: string;
  /** sha256 of the secret, 64 hex digits */
  secretHash: string;
  /** the streams it may publish to (and read) */
  streams: string[];
  /** a replica's identity token: when it expires (ms since the epoch); a device's credential has none */
  until?: number;
}

/** Device names are topic levels too: no `/`, `+`, `#` (nor `$`, which starts $SYS). */
export const DEVICE_NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

export const deviceSchema = z.object({
  name: z.string().regex(DEVICE_NAME_RE, 'device names are 1-128 of [A-Za-z0-9_.-], not starting with "."').describe('the device\'s name: its MQTT username'),
  secretHash: z.string().regex(/^[0-9a-f]{64}$/, 'the sha256 of the secret, 64 lower-case hex digits').describe('sha256 of the device\'s secret, in hex (`outpost device create` prints both)'),
  streams: z.array(z.string().regex(STREAM_RE, 'stream names are 1-128 of [A-Za-z0-9_.-]')).describe('the streams it may publish to and read'),
}).strict();

export const devicesSchema = z.array(deviceSchema).superRefine((list, ctx) => {
  const seen = new Set<string>();
  list.forEach((d, i) => {
    if (seen.has(d.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i, 'name'], message: `"${d.name}" is listed twice` });
    seen.add(d.name);
  });
});

export { hashSecret, secretMatches } from './secret.js';

/** A new device secret (32 random bytes, base64url) and the hash a hub keeps. */
export function newDeviceSecret(): { secret: string; secretHash: string } {
  return newSecret(32);
}

/**
 * `Authorization: Bearer NAME.SECRET` as name and secret (split at the last
 * `.`: secrets are base64url, without dots); null for anything else.
 */
export function parseBearer(header: string | undefined): { name: string; secret: string } | null {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  const token = m?.[1];
  const dot = token ? token.lastIndexOf('.') : -1;
  if (!token || dot <= 0 || dot === token.length - 1) return null;
  return { name: token.slice(0, dot), secret: token.slice(dot + 1) };
}

/** The token a device sends over HTTP. */
export const bearerToken = (name: string, secret: string): string => `${name}.${secret}`;

export const DATA_PREFIX = 'outpost/data/';

/**
 * The stream an MQTT topic carries: `outpost/data/STREAM`, or a device's own
 * subtopic `outpost/data/STREAM/DEVICE`; null for other topics.
 */
export function topicStream(topic: string): { stream: string; device: string | null } | null {
  if (!topic.startsWith(DATA_PREFIX)) return null;
  const rest = topic.slice(DATA_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return { stream: rest, device: null };
  const device = rest.slice(slash + 1);
  return device.includes('/') ? null : { stream: rest.slice(0, slash), device };
}

/** The stream a data topic feeds (for a bad one, the name that is then refused as an unknown stream); null for other topics. */
export function dataStream(topic: string): string | null {
  if (!topic.startsWith(DATA_PREFIX)) return null;
  return topicStream(topic)?.stream ?? topic.slice(DATA_PREFIX.length);
}

/** Who is asking: a device, or an anonymous client (where the hub allows them). */
export type Principal = DeviceCredential | 'anonymous';

export type Verdict = { ok: true; stream: string | null } | { ok: false; reason: string };

/**
 * May `who` publish to `topic`? A device: only to its streams' topics (the
 * shared one or its own subtopic). An anonymous client (a closed network):
 * anywhere but $SYS, as any broker allows. `stream` is the stream it feeds.
 */
export function mayPublish(who: Principal, topic: string): Verdict {
  if (topic.startsWith('$')) return { ok: false, reason: `${topic.split('/')[0]} topics are the broker's` };
  const t = topicStream(topic);
  if (who === 'anonymous') return { ok: true, stream: dataStream(topic) };
  if (!t) return { ok: false, reason: `${topic} is not one of its streams' topics` };
  if (t.device !== null && t.device !== who.name) return { ok: false, reason: `${topic} is another device's topic` };
  if (!who.streams.includes(t.stream)) return { ok: false, reason: `the stream "${t.stream}" is not one of its streams` };
  return { ok: true, stream: t.stream };
}

/**
 * May `who` publish to a topic that streams read through their sources
 * (`from:` in a stream spec)? A device: only when every one of them is among
 * its streams. Anonymous: yes.
 */
export function mayFeed(who: Principal, streams: string[]): Verdict {
  if (who === 'anonymous') return { ok: true, stream: null };
  const not = streams.find((s) => !who.streams.includes(s));
  return not === undefined ? { ok: true, stream: null } : { ok: false, reason: `the topic feeds the stream "${not}", not one of its streams` };
}

/**
 * May `who` subscribe to `filter`? A device: only its streams' shared topics
 * and its own subtopics, without wildcards (`#`, `outpost/#` and another
 * device's subtopic would read what others publish). Anonymous: anything.
 */
export function maySubscribe(who: Principal, filter: string): boolean {
  if (who === 'anonymous') return true;
  if (filter.includes('#') || filter.includes('+')) return false;
  const t = topicStream(filter);
  return !!t && (t.device === null || t.device === who.name) && who.streams.includes(t.stream);
}

/** May `who` post to, or read, `stream` over HTTP? */
export const mayUseStream = (who: Principal, stream: string): boolean => who === 'anonymous' || who.streams.includes(stream);
