// Builders for core unit tests (plain data, no I/O).
import type { NodeRecord, ReplicaRecord } from './types.js';

export function node(name: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    name, hostname: name, arch: 'amd64', cpus: 4, memoryMiB: 8192, labels: {}, site: null, runtime: 'docker',
    address: '127.0.0.1', images: [], layers: [], imageLayers: {}, declaredRttMs: {}, stageUs: {}, agentVersion: 'test', state: 'ready', lastSeen: 0,
    timings: { containerMs: null, engineMs: null, bandwidthMbps: null, samples: 0 }, rttMs: {}, hub: null,
    ...over,
  };
}

export function replica(id: string, app: string, nodeName: string, over: Partial<ReplicaRecord> = {}): ReplicaRecord {
  return {
    id, app, node: nodeName, specHash: 'h', state: 'running', endpoint: null, restarts: 0,
    measured: { imageMs: null, containerMs: null, engineMs: null },
    predicted: { imageMs: null, containerMs: null, engineMs: null, deployMs: null },
    progress: null, error: null, createdAt: 0, updatedAt: 0, ...over,
  };
}
