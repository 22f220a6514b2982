// The replicas' identity tokens on the node. The agent asks the control plane
// for a replica's token as the replica starts, and again at half the token's
// life; each is written to <secrets dir>/<replica>/identity/token (a tmpfs,
// like the secret files: the directory 0700 and the file 0400, owned by the
// workload's user), replaced by a rename so a reader never sees half a token.
// A container gets that directory bind-mounted read-only at
// /run/outpost/identity, a process its path; both get the first token in
// OUTPOST_IDENTITY_TOKEN too, which cannot change in a running process: the
// file is the one that is rotated.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AgentToServer } from '../contract/protocol.js';
import type { SecretOwner } from './secrets.js';

/** where a container finds its identity directory */
export const IDENTITY_MOUNT = '/run/outpost/identity';
export const TOKEN_FILE = 'token';
/** how long a replica's start waits for its first token, asked of a connected control plane (an offline node starts it at once without one; the file comes on reconnect) */
const WAIT_MS = 5000;
/** how often replicas without a token ask again */
const RETRY_MS = 30_000;

const ROOT = process.getuid?.() === 0;

interface Held { owner: SecretOwner; refreshAt: number | null }

export class IdentityTokens {
  private readonly held = new Map<string, Held>();
  private readonly waiting = new Map<string, ((token: string | null) => void)[]>();
  private timer: NodeJS.Timeout | null = null;
  private warned = false;

  constructor(private readonly base: string, private readonly send: (m: AgentToServer) => boolean, private readonly log: Logger, private readonly waitMs = WAIT_MS) {}

  /** The replica's identity directory (on the node). */
  dir(id: string): string {
    return path.join(this.base, id, 'identity');
  }

  /**
   * A replica is starting: its directory made, its first token asked for
   * (token null when none came in time). Null when the directory cannot be
   * made (an agent that is not root, where the tmpfs area is root's): the
   * replica starts without an identity, as workloads matter more.
   */
  async issue(id: string, owner: SecretOwner): Promise<{ dir: string; token: string | null } | null> {
    try {
      this.makeDir(id, owner);
    } catch (err) {
      if (!this.warned) this.log.warn({ err: (err as Error).message, dir: this.base }, 'replicas get no identity token: their token directory cannot be made');
      this.warned = true;
      return null;
    }
    this.held.set(id, { owner, refreshAt: null });
    const got = new Promise<string | null>((resolve) => {
      const t = setTimeout(() => resolve(null), this.waitMs);
      const list = this.waiting.get(id) ?? [];
      list.push((tok) => { clearTimeout(t); resolve(tok); });
      this.waiting.set(id, list);
    });
    // not connected (or a control plane without identity tokens): no wait, asked again later
    if (!this.send({ type: 'identity', replicas: [id] })) {
      for (const w of this.waiting.get(id) ?? []) w(null);
      this.waiting.delete(id);
    }
    const token = await got;
    if (!token) this.schedule();
    return { dir: this.dir(id), token };
  }

  /** A replica adopted after the agent restarted: its token rotated from now on, for the owner of its directory. */
  adopt(id: string): void {
    let st: fs.Stats;
    try { st = fs.statSync(this.dir(id)); } catch { return; }
    this.held.set(id, { owner: { uid: st.uid, gid: st.gid }, refreshAt: null });
    this.send({ type: 'identity', replicas: [id] });
  }

  forget(id: string): void {
    this.held.delete(id);
  }

  /** Tokens from the control plane: each written, its waiters answered, its next refresh at half its life; replicas it no longer has start without one at once. */
  onTokens(tokens: Record<string, string>, gone: string[] = []): void {
    for (const id of gone) {
      for (const w of this.waiting.get(id) ?? []) w(null);
      this.waiting.delete(id);
      this.held.delete(id);
    }
    for (const [id, token] of Object.entries(tokens)) {
      const h = this.held.get(id);
      if (!h) continue;
      try {
        this.write(id, token, h.owner);
        const { iat, exp } = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { iat: number; exp: number };
        h.refreshAt = (iat + (exp - iat) / 2) * 1000;
      } catch (err) {
        this.log.warn({ err, replica: id }, 'identity token not written');
        continue;
      }
      for (const w of this.waiting.get(id) ?? []) w(token);
      this.waiting.delete(id);
    }
    this.schedule();
  }

  /** Asks again for every token due (half its life gone) or missing (started offline). */
  refresh(now = Date.now()): void {
    const due = [...this.held].filter(([, h]) => h.refreshAt === null || h.refreshAt <= now).map(([id]) => id);
    if (due.length) this.send({ type: 'identity', replicas: due });
    this.schedule(now);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(now = Date.now()): void {
    this.close();
    let next = Infinity;
    for (const h of this.held.values()) next = Math.min(next, h.refreshAt ?? now + RETRY_MS);
    if (next === Infinity) return;
    this.timer = setTimeout(() => this.refresh(), Math.max(1000, next - now));
    this.timer.unref();
  }

  private makeDir(id: string, owner: SecretOwner): void {
    fs.mkdirSync(this.base, { recursive: true, mode: 0o711 });
    const replicaDir = path.join(this.base, id);
    if (!fs.existsSync(replicaDir)) {
      fs.mkdirSync(replicaDir, { mode: 0o700 });
      if (ROOT) fs.chownSync(replicaDir, owner.uid, owner.gid);
    }
    // a user known only by name (shared) reaches the mounted directory through its mode; the replica's directory above keeps others out
    fs.mkdirSync(this.dir(id), { recursive: true, mode: owner.shared ? 0o755 : 0o700 });
    if (ROOT) fs.chownSync(this.dir(id), owner.uid, owner.gid);
  }

  private write(id: string, token: string, owner: SecretOwner): void {
    if (!fs.existsSync(this.dir(id))) this.makeDir(id, owner);
    const file = path.join(this.dir(id), TOKEN_FILE);
    const tmp = `${file}.tmp`;
    fs.rmSync(tmp, { force: true });
    fs.writeFileSync(tmp, token, { mode: owner.shared ? 0o444 : 0o400, flag: 'wx' });
    if (ROOT) fs.chownSync(tmp, owner.uid, owner.gid);
    fs.renameSync(tmp, file);
  }
}
