// Fixtures for the control plane's unit tests: a control plane on an
// in-memory SQLite store with a clock the test moves.
import pino from 'pino';
import type { NodeInfo } from '../core/types.js';
import { openControlPlane, type ControlPlane } from './controlplane.js';
import { openSqliteStore } from './store/sqlite.js';

export const nodeInfo = (name: string): NodeInfo => ({ name, hostname: name, arch: 'x64', cpus: 4, memoryMiB: 8192, labels: {}, site: null, runtime: 'process', address: '127.0.0.1', images: [], layers: [], imageLayers: {}, agentVersion: 't' });

export async function memoryControlPlane(now: () => number): Promise<ControlPlane> {
  return openControlPlane({ store: openSqliteStore(':memory:'), log: pino({ level: 'silent' }), now });
}

/** a tick and the reconcile pass it starts, committed */
export async function settle(cp: ControlPlane): Promise<void> {
  cp.apps.tick();
  await new Promise((r) => setImmediate(r));
  await cp.writer.flush();
}

