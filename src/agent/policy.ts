// The agent's side of trust: what this node lets replicas reach (devices,
// host paths, privileges), the devices it has that its policy allows, and
// the check of every assignment before anything is created. The control
// plane places nothing a node refuses; this is defence in depth against a
// control plane that is older, wrong or not ours, and against symlinks, which
// only the node can resolve.
import fs from 'node:fs';
import path from 'node:path';
import { OutpostError } from '../core/errors.js';
import { deviceAllowed, FLAG_OF, isUnder, needsOf, NO_POLICY, type Need, type NodePolicy } from '../core/nodepolicy.js';
import type { AppSpec } from '../core/manifest.js';

export { NO_POLICY, type NodePolicy };

/** the most device paths one report lists (a glob such as /dev/* could match thousands) */
const MAX_DEVICES = 1000;

/**
 * The devices present that the globs allow: each glob expanded against the
 * file system one segment at a time, kept when it is a character or block
 * device (after its symlinks: /dev/serial/by-id/... are links to the device).
 */
export function allowedDevices(globs: string[]): string[] {
  const found = new Set<string>();
  for (const g of globs) {
    for (const p of expand('/', g.split('/').filter(Boolean))) {
      if (found.size >= MAX_DEVICES) break;
      if (isDevice(p)) found.add(p);
    }
  }
  return [...found].sort();
}

function expand(dir: string, segs: string[]): string[] {
  if (segs.length === 0) return [dir];
  const [seg, ...rest] = segs as [string, ...string[]];
  if (!/[*?]/.test(seg)) return expand(path.join(dir, seg), rest);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => deviceAllowed([seg], n)).sort().flatMap((n) => expand(path.join(dir, n), rest));
}

function isDevice(p: string): boolean {
  try {
    const st = fs.statSync(p);
    return st.isCharacterDevice() || st.isBlockDevice();
  } catch {
    return false;
  }
}

/** The path with its symlinks resolved; for one that does not exist yet, its deepest existing ancestor's, with the rest appended. */
export function resolvedPath(p: string): string {
  const rest: string[] = [];
  let cur = path.resolve(p);
  for (;;) {
    try {
      return path.join(fs.realpathSync(cur), ...rest.reverse());
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return path.join(cur, ...rest.reverse());
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}

/**
 * Why this node refuses a spec, or null when it takes it. A host path must
 * be under an allowed one both as written and once both are resolved on this
 * disk (a link inside /data that points at /etc is refused); a device must
 * match a glob as written and, when it exists, be a device.
 */
export function policyRefusal(spec: AppSpec, policy: NodePolicy, runtime: 'docker' | 'process', node: string): OutpostError | null {
  const bad = needsOf(spec).map((n) => ({ n, why: refused(n, policy, runtime) })).filter((x) => x.why.length > 0);
  if (bad.length === 0) return null;
  return new OutpostError('E_POLICY', `node ${node} refuses this replica: ${bad.flatMap((x) => x.why).join('; ')}`, { path: bad[0]!.n.field });
}

function refused(n: Need, policy: NodePolicy, runtime: 'docker' | 'process'): string[] {
  const flag = FLAG_OF[n.kind];
  if (n.kind === 'device') {
    if (!deviceAllowed(policy.devices, n.path)) return [`${n.field}: device ${n.path} is not allowed (outpost agent ${flag} would allow it)`];
    if (fs.existsSync(n.path) && !isDevice(n.path)) return [`${n.field}: ${n.path} is not a device on this node (it resolves to ${resolvedPath(n.path)})`];
    return [];
  }
  if (n.kind === 'hostPath') {
    const real = resolvedPath(n.path);
    if (policy.hostPaths.some((p) => isUnder(n.path, p) && isUnder(real, resolvedPath(p)))) return [];
    const note = real !== path.resolve(n.path) ? `, which resolves to ${real},` : '';
    return [`${n.field}: host path ${n.path}${note} is not allowed (outpost agent ${flag} would allow it)`];
  }
  // a process shares the host's network whatever it asks for
  if (policy.privileged || (runtime === 'process' && n.field.endsWith('networkMode'))) return [];
  return [`${n.field}: ${n.what} is not allowed (outpost agent ${flag} would allow it)`];
}
