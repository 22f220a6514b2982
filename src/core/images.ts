// Image references and the image catalog the nodes report.
import type { Layer, NodeRecord } from './types.js';

/** Docker and Podman name the same image differently (docker.io/ and localhost/ prefixes, :latest). */
export function normalizeRef(ref: string): string {
  // a digest wins over a tag (as engines pull it): name:tag@sha256:... is name@sha256:...
  let r = ref.replace(/:[^/@]*@/, '@');
  if (!/:[^/]+$/.test(r) && !r.includes('@')) r += ':latest';
  const first = r.split('/')[0]!;
  const hasRegistry = r.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasRegistry) r = `docker.io/${r.includes('/') ? r : `library/${r}`}`;
  return r;
}

export function hasImage(images: string[], ref: string): boolean {
  const want = normalizeRef(ref);
  return images.some((i) => normalizeRef(i) === want);
}

/** Bytes of `ref`'s layers that `have` lacks, or null when no node has reported the image. */
export function missingImageBytes(catalog: Record<string, { layers: Layer[] }>, ref: string | undefined, have: Layer[]): number | null {
  const img = ref ? catalog[normalizeRef(ref)] : undefined;
  if (!img) return null;
  const held = new Set(have.map((l) => l.digest));
  return img.layers.filter((l) => !held.has(l.digest)).reduce((s, l) => s + l.bytes, 0);
}

/** Bytes of the layers of all of `refs` that `have` lacks, each layer once; null when no node has reported one of them. */
export function missingImagesBytes(catalog: Record<string, { layers: Layer[] }>, refs: string[], have: Layer[]): number | null {
  if (refs.length === 0) return null;
  const held = new Set(have.map((l) => l.digest));
  let bytes = 0;
  for (const ref of refs) {
    const img = catalog[normalizeRef(ref)];
    if (!img) return null;
    for (const l of img.layers) {
      if (held.has(l.digest)) continue;
      held.add(l.digest);
      bytes += l.bytes;
    }
  }
  return bytes;
}

/** Every image some node holds, with the layers it reported. */
export function imageCatalog(nodes: NodeRecord[]): Record<string, { layers: Layer[] }> {
  const out: Record<string, { layers: Layer[] }> = {};
  for (const n of nodes) {
    for (const [ref, layers] of Object.entries(n.imageLayers ?? {})) out[normalizeRef(ref)] = { layers };
  }
  return out;
}
