// Replicas publish to their app's streams with their identity token
// (`Authorization: Bearer <JWT>` over HTTP, the MQTT password over MQTT, with
// any username): the hub checks it with the public
// key the agent got from the control plane, that it is in date and names this
// node, and lets it reach the streams its app declares, no others. A token
// stays good until it expires (an hour at most) even if its replica is gone.
import { OutpostError } from '../core/errors.js';
import type { DeviceCredential } from '../core/devices.js';
import { verifyIdentity, type IdentityJwk } from '../core/jwt.js';

export class WorkloadTokens {
  private keys: IdentityJwk[] = [];
  private streams = new Map<string, string[]>();
  private node = '';

  /** The control plane's public key (the latest first; the one before kept for tokens it signed), and the node this hub serves. */
  setKey(jwk: IdentityJwk, node: string): void {
    this.node = node;
    if (this.keys[0]?.kid === jwk.kid) return;
    this.keys = [jwk, ...this.keys.slice(0, 1)];
  }

  /** The streams each app on this node declares. */
  setAppStreams(byApp: Map<string, string[]>): void {
    this.streams = byApp;
  }

  /** The replica the token names, as a principal whose streams are its app's; E_UNAUTHORIZED saying why not. */
  authenticate(token: string, nowMs = Date.now()): DeviceCredential {
    if (this.keys.length === 0) throw new OutpostError('E_UNAUTHORIZED', 'identity token refused: this hub has no identity key yet (its agent gets it from the control plane)');
    const c = verifyIdentity(token, this.keys, Math.floor(nowMs / 1000));
    if (c.node !== this.node) throw new OutpostError('E_UNAUTHORIZED', `identity token refused: it is for node ${c.node}, not ${this.node}`);
    return { name: c.replica, secretHash: '', streams: this.streams.get(c.app) ?? [], until: c.exp * 1000 };
  }
}
