// `configs.<name>.file` in an Outpost manifest: read at deploy time, relative
// to the manifest's directory, and sent as `content` (the API takes only
// content). Loaded only when the manifest has configs with a file.
import fs from 'node:fs';
import path from 'node:path';
import { OutpostError } from '../../core/errors.js';
import { parseManifestText } from '../../core/manifest.js';

/** The manifest with each config's file read into its content, or null when none has a file. */
export function withConfigFiles(text: string, manifestFile: string): object | null {
  const doc = parseManifestText(text) as { configs?: unknown } | null;
  const configs = doc?.configs;
  if (!configs || typeof configs !== 'object' || Array.isArray(configs)) return null;
  const dir = path.dirname(path.resolve(manifestFile));
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [name, c] of Object.entries(configs as Record<string, unknown>)) {
    const file = (c as { file?: unknown } | null)?.file;
    // both given, or a file that is no string: the control plane says what is wrong
    if (typeof file !== 'string' || (c as { content?: unknown }).content !== undefined) {
      out[name] = c;
      continue;
    }
    const full = path.resolve(dir, file);
    let content: string;
    try {
      content = fs.readFileSync(full, 'utf8');
    } catch (e) {
      throw new OutpostError('E_INVALID', `invalid app manifest: configs.${name}.file: cannot read ${file} (${full}): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { path: `configs.${name}.file` });
    }
    const { file: _f, ...rest } = c as Record<string, unknown>;
    out[name] = { ...rest, content };
    changed = true;
  }
  return changed ? { ...(doc as object), configs: out } : null;
}
