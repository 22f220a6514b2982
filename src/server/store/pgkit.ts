// For tests: a throwaway PostgreSQL 15 cluster (initdb + pg_ctl in a temp
// dir, on a free port of 127.0.0.1, trust auth), a fresh database on demand,
// and everything stopped and removed after. Not a mock: the real server
// Debian packages (.ci/run installs `postgresql`). Without its binaries
// startPostgres() says why, and the tests skip.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import pg from 'pg';

// Debian's PostgreSQL 15, as .ci/run installs it
const BIN = '/usr/lib/postgresql/15/bin';

export interface PgCluster {
  port: number;
  /** the cluster's files (data dir, WAL, log) */
  dir: string;
  /** a URL of a new, empty database */
  newDatabase(): Promise<string>;
  /** stops the server and removes its files */
  stop(): void;
  /** stops the server (fast: open connections are cut) and starts it again on the same port and files */
  restart(): void;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Why PostgreSQL tests cannot run here, or null when they can. */
export function pgSkipReason(): string | null {
  if (!fs.existsSync(path.join(BIN, 'initdb'))) return `no PostgreSQL 15 at ${BIN} (apt-get install postgresql)`;
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres']).status !== 0) return 'running as root, and there is no postgres user to run initdb as';
  return null;
}

export async function startPostgres(): Promise<PgCluster> {
  const why = pgSkipReason();
  if (why) throw new Error(why);
  const root = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-pg-'));
  // initdb and postgres refuse to run as root: as root, they run as the postgres user, in a dir it owns
  const as = (cmd: string, args: string[]) => (root ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]) as [string, string[]];
  if (root) {
    fs.chmodSync(dir, 0o700);
    spawnSync('chown', ['postgres:', dir]);
  }
  const run = (cmd: string, args: string[]) => {
    const [c, a] = as(path.join(BIN, cmd), args);
    const r = spawnSync(c, a, { encoding: 'utf8', cwd: dir });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  const data = path.join(dir, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  // the socket in the temp dir (not /var/run/postgresql, which may not exist);
  // fsync off: a throwaway cluster need not survive a power cut
  const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  run('pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']);
  let stopped = false;
  const restart = () => {
    run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
    run('pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']);
  };
  const stop = () => {
    if (stopped) return;
    stopped = true;
    const [c, a] = as(path.join(BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
    spawnSync(c, a, { cwd: dir });
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // a test process that ends without its after() hook still leaves no server behind
  process.once('exit', stop);
  const admin = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let n = 0;
  return {
    port,
    dir,
    async newDatabase() {
      const name = `t${process.pid}_${++n}`;
      const c = new pg.Client(admin);
      await c.connect();
      try { await c.query(`CREATE DATABASE ${name}`); } finally { await c.end(); }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop,
    restart,
  };
}

let shared: Promise<PgCluster> | null = null;
/** One cluster per test process, started on first use and stopped when the process exits. */
export function sharedPostgres(): Promise<PgCluster> {
  return (shared ??= startPostgres());
}

/** One statement on its own connection: tests look into the database as an operator would. */
export async function sql<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const c = new pg.Client(url);
  await c.connect();
  try { return (await c.query<T>(text)).rows; } finally { await c.end(); }
}
