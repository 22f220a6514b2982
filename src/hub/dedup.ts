// Exactly once for MQTT re-sends. A QoS 1 or 2 PUBLISH carries a packet id;
// a sender that got no PUBACK/PUBREC (a dropped connection, a hub killed
// after storing but before answering) sends it again with DUP=1 and the same
// id. The hub keeps, per (client id, packet id), a digest of the last message
// it took with that id, written in the same transaction as its points: a
// DUP=1 PUBLISH whose (client, id) holds the same topic and payload was
// already stored and is only acknowledged again.
//
// Why the digest and not the id alone: once acknowledged, an id may carry a
// new message (MQTT 3.1.1 §4.3.2/§4.3.3). A new message's first send has
// DUP=0 and replaces the key; but if that first send was lost, its re-send
// (DUP=1) would meet the old message's key: the digest tells them apart.
// What stays possible: a re-used id carrying the very same topic and payload
// whose first send was lost is taken for the old one (QoS 1 is at-least-once
// by the spec; this is the price of suppressing re-sends).
//
// A PUBREL ends a QoS 2 exchange and frees its id; a clean session's keys
// end with it (its client discards its state too). The keys a client can
// still need are those of its messages in flight, so each persistent client
// keeps its newest KEYS_PER_CLIENT keys (far over the 10-20 in flight of
// libmosquitto, Paho and the AWS SDKs), and none older than the raw retention.
import type { HubStore } from './store.js';

/** A QoS 1/2 message's identity for de-duplication. */
export interface MessageKey {
  /** the MQTT client id (the hub's own at an external broker) */
  client: string;
  /** its packet id */
  mid: number;
  /** the DUP flag: a re-send */
  dup: boolean;
  topic: string;
  /**
   * false for a clean session: its keys are never read after its connection
   * (a clean reconnect forgets them first), so they stay in memory and cost
   * no row per message; true (the default) for a persistent session
   */
  durable?: boolean;
}

/** The newest keys a client keeps (see above). */
export const KEYS_PER_CLIENT = 4096;

/**
 * 52 bits of two 32-bit hashes (FNV-1a and a multiply-xorshift) over topic
 * and payload, exact in a double: computed for every QoS 1/2 message, so
 * cheap (sha1 cost the hub about 2 µs a message); a collision would have to
 * fall on one (client, packet id) pair, with DUP set, to matter. Not a
 * defence against a device crafting collisions: it could only drop its own
 * messages.
 */
export function digestOf(topic: string, payload: Buffer): number {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  const mix = (x: number) => {
    a = Math.imul(a ^ x, 0x01000193);
    b = Math.imul(b ^ x, 0x5bd1e995);
    b ^= b >>> 15;
  };
  for (let i = 0; i < topic.length; i++) mix(topic.charCodeAt(i));
  mix(0x100); // between topic and payload: no byte has this value
  for (let i = 0; i < payload.length; i++) mix(payload[i]!);
  return (a >>> 0) * 0x100000 + (b >>> 12);
}

/** A change to the keys, applied in order at the next commit: a digest to keep, null to drop one id, or every id of a client. */
type Op = { client: string; mid: number; digest: number | null; durable: boolean } | { client: string; all: true };

const slot = (client: string, mid: number) => `${mid}\n${client}`;

export class Redeliveries {
  private staged: Op[] = [];
  /** what the staged ops make of each (client, id), for look-ups before they are written */
  private pending = new Map<string, number | null>();
  /** clients whose every key is staged for deletion (a look-up must not reach the table) */
  private cleared = new Set<string>();
  /** clean sessions' keys: client -> packet id -> digest (at most 65,535 ids a client), gone with the session */
  private volatile = new Map<string, Map<number, number>>();

  constructor(private readonly store: HubStore) {}

  /** Was this re-send's message taken already (stored, or in the commit under way)? */
  seen(k: MessageKey, digest: number): boolean {
    const p = this.pending.get(slot(k.client, k.mid));
    if (p !== undefined) return p === digest;
    if (this.cleared.has(k.client)) return false;
    const mem = this.volatile.get(k.client)?.get(k.mid);
    if (mem !== undefined) return mem === digest;
    if (k.durable === false) return false;
    const kept = this.store.messageKey(k.client, k.mid);
    return kept === digest;
  }

  /** The message is taken: its key is written with its points. */
  take(k: MessageKey, digest: number): void {
    this.stage({ client: k.client, mid: k.mid, digest, durable: k.durable !== false });
  }

  /** A PUBREL: the QoS 2 exchange is over and the id free for a new message. */
  release(client: string, mid: number): void {
    this.stage({ client, mid, digest: null, durable: !this.volatile.has(client) });
  }

  /** A clean session began or ended: its client keeps no state, nor does the hub. */
  forget(client: string): void {
    for (const key of this.pending.keys()) if (key.slice(key.indexOf('\n') + 1) === client) this.pending.delete(key);
    this.cleared.add(client);
    this.staged.push({ client, all: true });
  }

  get dirty(): boolean {
    return this.staged.length > 0;
  }

  /** Writes the staged keys (inside the commit's transaction). */
  write(now: number): void {
    for (const op of this.staged) {
      if ('all' in op) this.store.dropMessageKeys(op.client);
      else if (!op.durable) continue;
      else if (op.digest !== null) this.store.putMessageKey(op.client, op.mid, op.digest, now);
      else this.store.dropMessageKey(op.client, op.mid);
    }
  }

  /** After the commit: written (`ok`; clean sessions' keys kept in memory now), or (failed) gone with the points they came with. */
  settle(ok = true): void {
    if (ok) {
      for (const op of this.staged) {
        if ('all' in op) { this.volatile.delete(op.client); continue; }
        if (op.durable) continue;
        let m = this.volatile.get(op.client);
        if (op.digest === null) { m?.delete(op.mid); continue; }
        if (!m) this.volatile.set(op.client, (m = new Map()));
        m.set(op.mid, op.digest);
      }
    }
    this.staged = [];
    this.pending.clear();
    this.cleared.clear();
  }

  private stage(op: { client: string; mid: number; digest: number | null; durable: boolean }): void {
    this.staged.push(op);
    this.pending.set(slot(op.client, op.mid), op.digest);
  }
}
