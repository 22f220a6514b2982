// outpost deploy --pin: the manifest's image tag becomes the digest its
// registry holds now (`name:tag@sha256:...`), so every node runs the same
// bytes however the tag moves later; each agent verifies the digest. Loaded
// only with --pin (it brings the YAML parser and the schema).
import YAML from 'yaml';
import { OutpostError } from '../../core/errors.js';
import { parseManifestText, validateApp } from '../../core/manifest.js';
import { parseImageRef, type ImageRef } from '../../core/imageref.js';
import { readRegistryAuth } from '../../registry/auth.js';
import { resolveDigest } from '../../registry/resolve.js';
import { readEnv } from '../../env.js';

export interface Pinned {
  /** the manifest text to send */
  text: string;
  from: string;
  to: string;
}

/** The manifest with its image pinned to the registry's current digest; an image already pinned is kept. */
export async function pinManifest(text: string, o: { registryAuth?: string }): Promise<Pinned> {
  // the control plane validates again; here the image must at least be readable
  const app = validateApp(parseManifestText(text));
  if (!app.image) throw new OutpostError('E_INVALID', 'deploy --pin: the app has no image to pin (a process-runtime app runs a command)', { path: 'image' });
  const ref = parseImageRef(app.image);
  if (ref.digest) return { text, from: app.image, to: app.image };
  if (ref.registry === 'localhost') {
    throw new OutpostError('E_INVALID', `deploy --pin: ${app.image} is a local image (localhost/...) that no registry holds, so there is no digest every node could pull; push it to a registry, or pin it by hand as name@sha256:...`, { path: 'image' });
  }
  const authFile = o.registryAuth ?? readEnv('OUTPOST_REGISTRY_AUTH');
  const insecure = (readEnv('OUTPOST_INSECURE_REGISTRIES') ?? '').split(',').map((h) => h.trim()).filter(Boolean);
  const digest = await resolveDigest(ref, { auth: authFile ? readRegistryAuth(authFile) : null, insecure });
  const to = pinnedName(ref, digest);
  return { text: withImage(text, to), from: app.image, to };
}

/** The tag stays for people to read; engines and agents go by the digest. */
function pinnedName(ref: ImageRef, digest: string): string {
  return `${ref.name}:${ref.tag ?? 'latest'}@${digest}`;
}

/** The same manifest with another image: YAML keeps its comments and layout, JSON is written anew. */
function withImage(text: string, image: string): string {
  if (text.trimStart().startsWith('{')) return JSON.stringify({ ...(JSON.parse(text) as object), image }, null, 2);
  const doc = YAML.parseDocument(text, { uniqueKeys: true });
  doc.set('image', image);
  return doc.toString();
}
