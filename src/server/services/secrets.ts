// Secrets: values kept encrypted with the envelope key (AES-256-GCM, the
// secret's name as associated data), listed without their values, opened
// only to build the assignments of the nodes whose replicas use them. A new
// value is a new version, and the apps that use it are deployed again: their
// revision hash includes the versions (apps.ts), so their replicas roll.
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import { OutpostError } from '../../core/errors.js';
import { NAME_RE } from '../../core/names.js';
import { KEY_BYTES, keyId, open, seal } from '../../core/secretbox.js';
import type { AppSpec } from '../../core/manifest.js';
import type { SecretRecord } from '../../core/types.js';
import type { SecretView } from '../../contract/api.js';
import type { Writer } from '../writer.js';
import type { State } from '../state.js';
import type { KeyFile } from '../trust/secretkey.js';

/** the most bytes one secret's value may hold */
export const SECRET_MAX_BYTES = 64 * 1024;

/** The apps whose current spec references the secret. */
export function appsUsing(s: State, name: string): string[] {
  return s.list('apps').filter((a) => (a.spec.secrets ?? []).some((r) => r.name === name)).map((a) => a.name);
}

/**
 * What a spec's secrets add to its revision hash: each one's version. A
 * missing one is E_INVALID with the path of its reference, so a deploy
 * cannot start replicas that would lack it.
 */
export function secretVersions(s: State, spec: AppSpec): string {
  return (spec.secrets ?? []).map((r, i) => {
    const rec = s.get('secrets', r.name);
    if (!rec) throw new OutpostError('E_INVALID', `invalid app manifest: secrets[${i}].name: no secret named "${r.name}" (outpost secret set ${r.name} ...)`, { path: `secrets[${i}].name` });
    return `${r.name}@${rec.version}`;
  }).join(',');
}

export class Secrets {
  private current: Buffer;
  private readonly keys: Map<string, Buffer>;
  private rotating: Promise<unknown> = Promise.resolve();
  private refreshing: Promise<void> | null = null;
  /** an app to deploy again with the secrets' new versions */
  redeploy: (spec: AppSpec, cause: string) => Promise<unknown> = async () => {};
  /** heard after another instance's key arrived: the assignments held back can go out */
  onKeys: () => void = () => {};

  constructor(private readonly w: Writer, private readonly file: KeyFile | null, private readonly log: Logger, private readonly now: () => number) {
    // without a key file (tests of the services alone) the key lives in memory only
    const k = file ? file.load() : { current: crypto.randomBytes(KEY_BYTES), all: new Map<string, Buffer>() };
    this.current = k.current;
    this.keys = k.all;
    this.keys.set(keyId(this.current), this.current);
  }

  get keyId(): string {
    return keyId(this.current);
  }

  view(): SecretView[] {
    const s = this.w.state;
    return s.list('secrets').map((r) => ({ name: r.name, version: r.version, createdAt: r.createdAt, updatedAt: r.updatedAt, apps: appsUsing(s, r.name) }));
  }

  /** A new value (a new version); the apps that use it roll. */
  async set(name: string, value: Buffer): Promise<{ secret: SecretView; redeployed: string[] }> {
    if (!NAME_RE.test(name)) throw new OutpostError('E_INVALID', 'a secret\'s name must be 1-63 characters of [a-z0-9-], starting and ending with a letter or digit', { path: 'name' });
    if (value.length > SECRET_MAX_BYTES) throw new OutpostError('E_TOO_LARGE', `a secret's value may hold at most ${SECRET_MAX_BYTES} bytes (this one: ${value.length})`, { path: 'value' });
    const rec = await this.w.run((s) => {
      const prev = s.get('secrets', name);
      const t = this.now();
      const doc: SecretRecord = { name, version: (prev?.version ?? 0) + 1, ...seal(this.current, value, name), createdAt: prev?.createdAt ?? t, updatedAt: t };
      return { changes: [{ kind: 'secrets', key: name, doc }], result: doc };
    });
    const apps = appsUsing(this.w.state, name);
    const redeployed: string[] = [];
    for (const a of apps) {
      const app = this.w.state.app(a);
      if (!app) continue;
      // a failed re-deploy (no room for the surge, say) leaves the app on its
      // old version; the answer names the apps that did roll, and their
      // deploy event the secret and version that rolled them (never the value)
      await this.redeploy(app.spec, `secret ${name} version ${rec.version}`).then(() => redeployed.push(a), (err: Error) => this.log.warn({ app: a, secret: name, code: (err as OutpostError).code }, 'rolling an app for its new secret failed'));
    }
    return { secret: { name, version: rec.version, createdAt: rec.createdAt, updatedAt: rec.updatedAt, apps }, redeployed };
  }

  async remove(name: string): Promise<void> {
    await this.w.run((s) => {
      if (!s.get('secrets', name)) throw new OutpostError('E_NOT_FOUND', `no secret named "${name}"`, { path: 'name' });
      const apps = appsUsing(s, name);
      if (apps.length > 0) throw new OutpostError('E_CONFLICT', `secret "${name}" is used by ${apps.join(', ')}: deploy them without it first`, { path: 'name' });
      return { changes: [{ kind: 'secrets', key: name, doc: null }], result: undefined };
    });
  }

  /**
   * The value, for a node's assignment; null when this instance lacks the
   * key it is sealed with (another instance rotated it: fetched from the
   * shared copy now, and onKeys() says when it is here).
   */
  value(rec: SecretRecord): Buffer | null {
    const key = this.keys.get(rec.keyId);
    if (!key) {
      this.refresh();
      return null;
    }
    return open(key, rec, rec.name);
  }

  /**
   * A new envelope key: every secret re-encrypted in one commit. The key file
   * is replaced first, the old key kept as .old and in memory; the commit
   * failing puts the old key back; succeeding, the old one is forgotten.
   */
  rotateKey(): Promise<{ keyId: string; secrets: number }> {
    const r = this.rotating.then(() => this.rotate());
    this.rotating = r.catch(() => {});
    return r;
  }

  private async rotate(): Promise<{ keyId: string; secrets: number }> {
    const old = this.current;
    const next = crypto.randomBytes(KEY_BYTES);
    // every secret must open before anything changes
    for (const r of this.w.state.list('secrets')) this.must(r);
    await this.file?.replace(next);
    this.keys.set(keyId(next), next);
    this.current = next;
    let n: number;
    try {
      n = await this.w.run((s) => {
        const recs = s.list('secrets');
        return { changes: recs.map((r) => ({ kind: 'secrets' as const, key: r.name, doc: { ...r, ...seal(next, this.must(r), r.name) } })), result: recs.length };
      });
    } catch (e) {
      this.current = old;
      this.keys.delete(keyId(next));
      await this.file?.restore();
      throw e;
    }
    this.file?.forgetOld();
    this.keys.delete(keyId(old));
    this.log.info({ keyId: keyId(next), secrets: n }, 'envelope key rotated');
    return { keyId: keyId(next), secrets: n };
  }

  private must(r: SecretRecord): Buffer {
    const v = this.value(r);
    if (!v) throw new OutpostError('E_CONFLICT', `secret "${r.name}" is sealed with envelope key ${r.keyId}, which this instance does not hold yet; try again`, { path: 'name' });
    return v;
  }

  private refresh(): void {
    if (this.refreshing || !this.file?.shared) return;
    this.refreshing = this.file.refresh().then((k) => {
      if (!k) return;
      this.keys.set(keyId(k), k);
      this.current = k;
      this.log.info({ keyId: keyId(k) }, 'took the envelope key another instance rotated to');
      this.onKeys();
    }).catch((err: Error) => this.log.error({ err: err.message }, 'reading the shared envelope key failed')).finally(() => { this.refreshing = null; });
  }
}
