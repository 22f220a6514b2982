// A swarm process. Under a benchmark (an IPC channel from its parent) it
// answers requests {id, cmd, args} with {id, ok, result | error}; run by hand
// it starts N agents against a control plane and prints its counters:
//
//   OUTPOST_JOIN_TOKEN=T node dist/src/swarm/main.js --server https://127.0.0.1:7070 --data-dir DIR --agents 1000
//   (DIR: the control plane's, for its ca.crt; --phase-ms 50-300, --ramp-ms 0, --prefix sw-)
//
// Thousands of sockets need file descriptors: `ulimit -n 65536` first.
import fs from 'node:fs';
import path from 'node:path';
import { Swarm, type SwarmOptions } from './swarm.js';

export type SwarmCommand =
  | { cmd: 'enrol'; args: SwarmOptions }
  | { cmd: 'start'; args: SwarmOptions }
  | { cmd: 'renew'; args?: { timeoutMs?: number } }
  | { cmd: 'stats'; args?: { since?: number } }
  | { cmd: 'drop' }
  | { cmd: 'lose'; args: { pct: number; mode: 'close' | 'silent' } }
  | { cmd: 'openWindow' }
  | { cmd: 'closeWindow' }
  | { cmd: 'starts'; args?: { ids?: string[] } }
  | { cmd: 'welcomeTimes'; args: { since: number } }
  | { cmd: 'exit' };

let swarm: Swarm | null = null;

function need(): Swarm {
  if (!swarm) throw new Error('the swarm has not been started');
  return swarm;
}

function handle(m: SwarmCommand): unknown {
  switch (m.cmd) {
    case 'enrol':
      if (swarm) throw new Error('already enrolled');
      swarm = new Swarm(m.args);
      return swarm.enrol().then(() => ({ agents: swarm!.agents.length }));
    case 'start':
      swarm ??= new Swarm(m.args);
      return swarm.enrol().then(() => { swarm!.start(); return { agents: swarm!.agents.length }; });
    case 'renew': return need().renewMeasured(m.args?.timeoutMs ?? 60_000);
    case 'stats': return need().stats(m.args?.since ?? 0);
    case 'drop': return need().dropAll();
    case 'lose': return need().lose(m.args.pct, m.args.mode);
    case 'openWindow': return need().openWindow();
    case 'closeWindow': return need().closeWindow();
    case 'starts': return need().starts(m.args?.ids);
    case 'welcomeTimes': return need().welcomeTimes(m.args.since);
    case 'exit':
      swarm?.close();
      setTimeout(() => process.exit(0), 50);
      return true;
  }
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function standalone(): void {
  const server = flag('--server') ?? 'http://127.0.0.1:7070';
  const dir = flag('--data-dir');
  const joinToken = process.env.OUTPOST_JOIN_TOKEN;
  if (!joinToken || !dir) {
    console.error('usage: OUTPOST_JOIN_TOKEN=T main.js --server URL --data-dir DIR (the control plane\'s, for ca.crt) --agents N [--phase-ms LO-HI] [--ramp-ms MS] [--prefix P]');
    process.exit(2);
  }
  const ca = server.startsWith('https:') ? fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8') : undefined;
  const phase = (flag('--phase-ms') ?? '50-300').split('-').map(Number) as [number, number];
  const s = new Swarm({ server, joinToken, ca, count: Number(flag('--agents') ?? 100), prefix: flag('--prefix'), phaseMs: phase, rampMs: Number(flag('--ramp-ms') ?? 0) });
  swarm = s;
  const t0 = Date.now();
  void s.enrol().then(() => s.start());
  let last = s.stats();
  setInterval(() => {
    const st = s.stats();
    const dt = 5;
    console.log(`${((Date.now() - t0) / 1000).toFixed(0)} s: ${st.welcomed}/${st.agents} welcomed, ${st.connecting} connecting, ${st.present} replicas (${st.running} running), `
      + `${(((st.bytesRead - last.bytesRead) * 8) / 1000 / st.agents / dt).toFixed(4)} kbit/s down and ${(((st.bytesWritten - last.bytesWritten) * 8) / 1000 / st.agents / dt).toFixed(4)} up per agent, `
      + `rejected ${JSON.stringify(st.rejected)}, started twice ${st.startedTwice}, rss ${(st.rssBytes / 1048576).toFixed(0)} MiB`);
    last = st;
  }, 5000);
  process.on('SIGINT', () => { s.close(); process.exit(0); });
  process.on('SIGTERM', () => { s.close(); process.exit(0); });
}

if (process.send) {
  process.on('message', (m: SwarmCommand & { id: number }) => {
    Promise.resolve().then(() => handle(m)).then(
      (result) => process.send!({ id: m.id, ok: true, result }),
      (e: Error) => process.send!({ id: m.id, ok: false, error: e.message }),
    );
  });
  // the parent went away: nothing is left to report to
  process.on('disconnect', () => { swarm?.close(); process.exit(0); });
  process.send({ id: 0, ok: true, result: 'ready' });
} else {
  standalone();
}
