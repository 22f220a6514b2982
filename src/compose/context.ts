// What the parts of a conversion share: the findings, the files beside the
// Compose file (read through an interface, so the converter does no I/O of its
// own), the variables, and the app-wide names handed out so far.
import type { Findings } from './findings.js';
import type { Lookup } from './interpolate.js';
import type { HostPorts } from './ports.js';

export type FileKind = 'file' | 'dir' | 'empty-dir' | 'missing' | 'other';

/** Files named relative to the Compose file's directory (`~` is not expanded). */
export interface FileSource {
  read(rel: string): { text: string } | { error: string };
  kind(rel: string): FileKind;
  /** where it is, absolute, for messages and build contexts */
  resolve(rel: string): string;
}

export interface BuildRequest {
  service: string;
  /** absolute */
  context: string;
  /** relative to the context */
  dockerfile: string;
  args: Record<string, string>;
  target?: string;
  labels: Record<string, string>;
  noCache: boolean;
  pull: boolean;
  /** the `image:` the service also gives: its repository names the build */
  image?: string;
}

export interface Ctx {
  f: Findings;
  files: FileSource;
  lookup: Lookup;
  app: string;
  /** top-level volumes by Compose name */
  volumes: Set<string>;
  /** top-level configs: those the services mount go to the manifest */
  declaredConfigs: Map<string, { content: string } | null>;
  /** the manifest's configs */
  configs: Record<string, { content: string }>;
  /** files beside the Compose file mounted as configs, by path: one config each */
  fileConfigs: Map<string, string>;
  /** directories beside the Compose file mounted as volumes, by path */
  dirVolumes: Map<string, string>;
  /** top-level secrets by Compose name: the Outpost secret's name (null: refused) */
  secrets: Map<string, string | null>;
  hostPorts: HostPorts;
  portNames: Set<string>;
  builds: BuildRequest[];
}

/** A name made of [a-z0-9_.-], starting with a letter or digit, at most 63: what volumes and configs take. */
export function volumeName(want: string, taken: (n: string) => boolean): string {
  let base = want.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 58) || 'v';
  base = base.replace(/[-_.]+$/, '') || 'v';
  let name = base;
  for (let n = 2; taken(name); n++) name = `${base}-${n}`;
  return name;
}
