// What the agent reports about its machine.
import fs from 'node:fs';
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

export function machine(): { hostname: string; arch: string; cpus: number; memoryMiB: number; hostId: string } {
  return { hostname: os.hostname(), arch: nodeArch(), cpus: os.availableParallelism(), memoryMiB: Math.floor(os.totalmem() / 1048576), hostId: hostId() };
}

/**
 * The machine's identity: agents that report the same one share its cores
 * (several nodes on one machine, as in the edge lab, or agents in containers
 * on one host). The kernel's boot id first: every namespace and container on
 * one kernel shares it, and machines cloned from one golden image (which
 * often share a machine-id) do not. Then the machine-id, then the hostname.
 */
function hostId(): string {
  for (const f of ['/proc/sys/kernel/random/boot_id', '/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = fs.readFileSync(f, 'utf8').trim();
      if (id) return id;
    } catch { /* not on this system */ }
  }
  return `hostname:${os.hostname()}`;
}
