// A node's policy (what its agent allows: devices by glob, host paths by
// prefix, privileged containers) and what an app's spec needs of a node, each
// need with the field that asks for it. The planner and the agent both judge
// a spec with these; the agent also resolves symlinks on its own disk
// (src/agent/policy.ts), which nothing pure can. Pure.
import { z } from 'zod';
import { containersOf, hostNeeds, parseDevice, type RunContainer } from './containers.js';

/** What an agent allows (`outpost agent --allow-devices/--allow-host-paths/--allow-privileged`); all off by default. */
export interface NodePolicy {
  /** globs of device paths (`/dev/ttyUSB*`): `*` and `?` match within one path segment */
  devices: string[];
  /** directories (or files) a bind mount may come from: each allows itself and what is below it */
  hostPaths: string[];
  /** privileged containers, `networkMode: host` and `capAdd: [ALL]` */
  privileged: boolean;
}

export const NO_POLICY: NodePolicy = { devices: [], hostPaths: [], privileged: false };

export const policySchema = z.object({
  devices: z.array(z.string().max(256)).max(64).describe('globs of the device paths the agent allows (`--allow-devices`)'),
  hostPaths: z.array(z.string().max(4096)).max(64).describe('the host paths bind mounts may come from, each with what is below it (`--allow-host-paths`)'),
  privileged: z.boolean().describe('privileged containers, `networkMode: host` and `capAdd: [ALL]` are allowed (`--allow-privileged`)'),
});

/** One thing a spec asks of its node beyond CPU and memory, with the manifest field that asks for it. */
export type Need =
  | { kind: 'device'; path: string; field: string }
  | { kind: 'hostPath'; path: string; field: string }
  | { kind: 'privileged'; what: string; field: string };

interface Spec { name: string; image?: string; containers?: { name: string }[]; [k: string]: unknown }

/** Where a container's fields are written: `containers[i].` for a group, the top level for the shorthand. */
const prefixOf = (spec: Spec, i: number) => (spec.containers?.length ? `containers[${i}].` : '');

export function needsOf(spec: Spec, cs: RunContainer[] = containersOf(spec as Parameters<typeof containersOf>[0])): Need[] {
  const out: Need[] = [];
  cs.forEach((c, i) => {
    const at = prefixOf(spec, i);
    c.devices.forEach((d, j) => out.push({ kind: 'device', path: parseDevice(d).host, field: `${at}devices[${j}]` }));
    c.volumes.forEach((v, j) => { if (v.hostPath) out.push({ kind: 'hostPath', path: v.hostPath, field: `${at}volumes[${j}].hostPath` }); });
    if (c.privileged) out.push({ kind: 'privileged', what: 'a privileged container', field: `${at}privileged` });
    if (c.networkMode === 'host') out.push({ kind: 'privileged', what: 'the host\'s network', field: `${at}networkMode` });
    c.capAdd.forEach((cap, j) => { if (cap === 'ALL') out.push({ kind: 'privileged', what: 'every capability', field: `${at}capAdd[${j}]` }); });
  });
  return out;
}

/** The flag that allows a need, as the agent takes it. */
export const FLAG_OF: Record<Need['kind'], string> = { device: '--allow-devices', hostPath: '--allow-host-paths', privileged: '--allow-privileged' };

const globCache = new Map<string, RegExp>();
function globRe(glob: string): RegExp {
  let re = globCache.get(glob);
  if (!re) {
    const body = glob.split('').map((ch) => (ch === '*' ? '[^/]*' : ch === '?' ? '[^/]' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
    // policies come from every node: a fleet of distinct globs must not grow this without end
    if (globCache.size >= 4096) globCache.clear();
    globCache.set(glob, (re = new RegExp(`^${body}$`)));
  }
  return re;
}

/** A device path matches one of the globs (`*` and `?` never cross a `/`). */
export function deviceAllowed(globs: string[], path: string): boolean {
  return globs.some((g) => globRe(g).test(path));
}

/** `/a//b/` as `/a/b`: paths compared by their segments. */
export function cleanPath(p: string): string {
  const s = p.split('/').filter((x) => x !== '' && x !== '.').join('/');
  return `/${s}`;
}

/** `path` is `prefix` or below it, segment by segment (`/data` covers `/data/x`, not `/database`). */
export function isUnder(path: string, prefix: string): boolean {
  const p = cleanPath(path);
  const q = cleanPath(prefix);
  return q === '/' || p === q || p.startsWith(`${q}/`);
}

/** What the planner knows of a node's side: its runtime, its policy (none reported: nothing allowed) and the allowed devices it has. */
export interface NodeAccess {
  runtime: 'docker' | 'process';
  policy?: NodePolicy | null;
  devices?: string[] | null;
}

/**
 * Why a node cannot take these needs, one reason per need refused, each
 * naming the field, what is refused, and the agent flag that would allow it.
 * A device the policy allows but the node lacks is "missing", not refused.
 */
export function refusals(needs: Need[], node: NodeAccess): string[] {
  const policy = node.policy ?? NO_POLICY;
  const out: string[] = [];
  for (const n of needs) {
    if (n.kind === 'device') {
      if (!deviceAllowed(policy.devices, n.path)) out.push(`${n.field}: device ${n.path} is not allowed (outpost agent ${FLAG_OF.device})`);
      else if (!(node.devices ?? []).includes(n.path)) out.push(`${n.field}: device ${n.path} is missing on the node (allowed, not present)`);
    } else if (n.kind === 'hostPath') {
      if (!policy.hostPaths.some((p) => isUnder(n.path, p))) out.push(`${n.field}: host path ${n.path} is not allowed (outpost agent ${FLAG_OF.hostPath})`);
    } else if (!policy.privileged && !(node.runtime === 'process' && n.field.endsWith('networkMode'))) {
      // (a process shares the host's network whatever it asks: no privilege there)
      out.push(`${n.field}: ${n.what} is not allowed (outpost agent ${FLAG_OF.privileged})`);
    }
  }
  return out;
}

/** Why a runtime cannot run the spec at all (container features on the process runtime, a container without an image on docker). */
export function runtimeRefusals(spec: Spec, runtime: 'docker' | 'process', cs: RunContainer[] = containersOf(spec as Parameters<typeof containersOf>[0])): string[] {
  if (runtime === 'docker') {
    const missing = cs.findIndex((c) => !c.image);
    if (missing < 0) return [];
    return [spec.containers?.length ? `containers[${missing}].image: runtime docker needs an image for every container` : 'runtime docker needs an image and the app has none'];
  }
  const only = hostNeeds(spec as Parameters<typeof hostNeeds>[0], cs).containerOnly;
  if (only.length > 0) return [`${only.join(', ')}: runtime process cannot give ${only.map((x) => (x === 'containers' ? 'several containers' : x)).join(', ')} (container runtimes only)`];
  if (!cs[0]?.command) return ['runtime process needs a command and the app has none'];
  return [];
}
