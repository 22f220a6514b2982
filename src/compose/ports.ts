// A service's `ports` (short `[IP:][HOST:]CONTAINER[/PROTO]` strings, ranges,
// and the long form) as Outpost ports. Outpost publishes each container port
// on a host port it chooses, so a fixed host port is noted, and two services
// asking for one host port are refused as Compose would fail at start. Pure.
import { NAME_RE } from '../core/names.js';
import type { Findings } from './findings.js';
import type { Path } from './tree.js';

export interface PortOut {
  name: string;
  container: number;
  protocol: 'tcp' | 'udp';
}

interface Spec {
  hostIp?: string;
  host?: [number, number];
  container: [number, number];
  protocol: string;
  name?: string;
}

/** Host ports taken so far in the app: `port/proto` to the service that took it. */
export type HostPorts = Map<string, string>;

export function convertPorts(f: Findings, path: Path, service: string, raw: unknown, hostNetwork: boolean, taken: HostPorts, usedNames: Set<string>): PortOut[] {
  if (!Array.isArray(raw)) {
    f.invalid(path, 'ports is a list');
    return [];
  }
  const out: PortOut[] = [];
  raw.forEach((item, i) => {
    const at = [...path, i];
    const spec = parseSpec(f, at, item);
    if (!spec) return;
    if (!['tcp', 'udp'].includes(spec.protocol)) return f.unsupported(at, `protocol ${spec.protocol}: Outpost publishes tcp and udp only`);
    if (spec.hostIp !== undefined && /^(127\.|::1$|localhost$)/.test(spec.hostIp)) {
      // published for the host alone: not publishing keeps it off the network, and the app's containers reach it by name
      return f.note(at, 'changed', `published on ${spec.hostIp} only: Outpost does not publish it, so it stays off the network; the app's containers reach it by name, processes of the node do not`);
    }
    if (spec.hostIp !== undefined && !['0.0.0.0', '::', ''].includes(spec.hostIp)) {
      f.note(at, 'changed', `published on the node's address (the agent's), not on ${spec.hostIp}`);
    }
    const [c0, c1] = spec.container;
    const count = c1 - c0 + 1;
    if (spec.host && spec.host[1] - spec.host[0] + 1 !== count) return f.invalid(at, `the host range has ${spec.host[1] - spec.host[0] + 1} ports and the container range ${count}`);
    for (let k = 0; k < count; k++) {
      const container = c0 + k;
      const protocol = spec.protocol as 'tcp' | 'udp';
      if (out.some((p) => p.container === container && p.protocol === protocol)) {
        f.note(at, 'changed', `container port ${container}/${protocol} is listed twice: Outpost publishes it once`);
        continue;
      }
      if (spec.host) {
        const hostPort = spec.host[0] + k;
        const key = `${hostPort}/${protocol}`;
        const other = taken.get(key);
        if (other !== undefined) {
          f.invalid(at, `host port ${key} is also published by service "${other}"`);
          continue;
        }
        taken.set(key, service);
        if (hostNetwork) f.note(at, 'ignored', `with network_mode: host the container listens on the node's port ${container} itself; the published port ${hostPort} is ignored, as Compose ignores it`);
        else f.note(at, 'changed', `host port ${hostPort}: Outpost publishes container port ${container}/${protocol} on a host port of its choosing (\`outpost replicas\` shows it); for the node's own port ${container}, use network_mode: host`);
      }
      const name = portName(spec.name && count === 1 ? spec.name : `${service}-${container}${protocol === 'udp' ? '-udp' : ''}`, usedNames);
      out.push({ name, container, protocol });
    }
  });
  return out;
}

/** A valid, unused port name: the wanted one when it is, else made so. */
function portName(want: string, used: Set<string>): string {
  let base = want.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 55).replace(/-+$/, '') || 'port';
  if (!NAME_RE.test(base)) base = `p-${base}`.slice(0, 55);
  let name = base;
  for (let n = 2; used.has(name); n++) name = `${base}-${n}`;
  used.add(name);
  return name;
}

function parseSpec(f: Findings, at: Path, item: unknown): Spec | null {
  if (typeof item === 'number') return validPort(f, at, item) ? { container: [item, item], protocol: 'tcp' } : null;
  if (typeof item === 'string') return parseShort(f, at, item);
  if (item && typeof item === 'object') return parseLong(f, at, item as Record<string, unknown>);
  f.invalid(at, `${JSON.stringify(item)} is not a port`);
  return null;
}

function validPort(f: Findings, at: Path, n: number): boolean {
  if (Number.isInteger(n) && n >= 1 && n <= 65535) return true;
  f.invalid(at, `${n} is not a port number (1-65535)`);
  return false;
}

function range(f: Findings, at: Path, s: string): [number, number] | null {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) {
    f.invalid(at, `"${s}" is not a port or a range of ports`);
    return null;
  }
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (!validPort(f, at, a) || !validPort(f, at, b)) return null;
  if (b < a) {
    f.invalid(at, `"${s}": the range ends before it starts`);
    return null;
  }
  if (b - a >= 32) {
    f.unsupported(at, `"${s}": a range of ${b - a + 1} ports; Outpost publishes at most 32 per container`);
    return null;
  }
  return [a, b];
}

function parseShort(f: Findings, at: Path, s: string): Spec | null {
  let rest = s.trim();
  let protocol = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    protocol = rest.slice(slash + 1).toLowerCase();
    rest = rest.slice(0, slash);
  }
  let hostIp: string | undefined;
  // [::1]:8080:80: an IPv6 address in brackets
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(rest);
  if (v6) {
    hostIp = v6[1];
    rest = v6[2]!;
  }
  const parts = rest.split(':');
  if (!v6 && parts.length === 3) hostIp = parts.shift();
  if (parts.length > 2 || parts.length === 0) {
    f.invalid(at, `"${s}" is not [IP:][HOST:]CONTAINER[/PROTOCOL]`);
    return null;
  }
  const container = range(f, at, parts[parts.length - 1]!);
  if (!container) return null;
  let host: [number, number] | undefined;
  if (parts.length === 2 && parts[0] !== '') {
    const h = range(f, at, parts[0]!);
    if (!h) return null;
    host = h;
  }
  return { hostIp, host, container, protocol };
}

const LONG_KEYS = ['target', 'published', 'host_ip', 'protocol', 'mode', 'name', 'app_protocol'];

function parseLong(f: Findings, at: Path, o: Record<string, unknown>): Spec | null {
  for (const k of Object.keys(o)) {
    if (!LONG_KEYS.includes(k) && !k.startsWith('x-')) {
      f.invalid([...at, k], `unknown field "${k}" of a port`);
      return null;
    }
  }
  if (o.mode !== undefined && o.mode !== 'host' && o.mode !== 'ingress') f.invalid([...at, 'mode'], 'mode is host or ingress');
  if (o.mode === 'ingress' && o.published !== undefined) f.note([...at, 'mode'], 'ignored', 'mode: ingress (Swarm\'s routing mesh) is ignored: each replica publishes its own port');
  if (o.app_protocol !== undefined) f.note([...at, 'app_protocol'], 'ignored', '`app_protocol` is ignored');
  const target = o.target === undefined ? null : range(f, [...at, 'target'], String(o.target));
  if (o.target === undefined) f.invalid([...at, 'target'], 'a port needs its target (the container port)');
  if (!target) return null;
  let host: [number, number] | undefined;
  if (o.published !== undefined && o.published !== null && o.published !== '') {
    const h = range(f, [...at, 'published'], String(o.published));
    if (!h) return null;
    host = h;
  }
  const name = typeof o.name === 'string' && NAME_RE.test(o.name) ? o.name : undefined;
  if (o.name !== undefined && !name) f.note([...at, 'name'], 'changed', `port name "${String(o.name)}" is not an Outpost name ([a-z0-9-]): the port is named after the service`);
  return { hostIp: typeof o.host_ip === 'string' ? o.host_ip : undefined, host, container: target, protocol: String(o.protocol ?? 'tcp').toLowerCase(), name };
}
