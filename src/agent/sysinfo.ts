// What the agent reports about its machine.
import os from 'node:os';

export function nodeArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[process.arch] ?? process.arch;
}

/** A hostname made into a valid node name: [a-z0-9-], at most 63 characters. */
export function defaultNodeName(): string {
  const n = os.hostname().toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return n || 'node';
}

export function machine(): { hostname: string; arch: string; cpus: number; memoryMiB: number } {
  return { hostname: os.hostname(), arch: nodeArch(), cpus: os.availableParallelism(), memoryMiB: Math.floor(os.totalmem() / 1048576) };
}
