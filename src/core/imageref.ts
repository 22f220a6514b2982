// Image references as engines and registries read them
// ([registry/]path[:tag][@sha256:hex], the grammar of Docker's
// distribution/reference), and digest pins: which repository and digest a
// reference pins, and whether an image's RepoDigests carry that pin.

/** A parsed image reference. */
export interface ImageRef {
  /** the name as written, without tag or digest: `127.0.0.1:5000/app`, `nginx` */
  name: string;
  /** the registry: host[:port]; `docker.io` when the name gives none */
  registry: string;
  /** the repository in the registry: `app`, `library/nginx` */
  path: string;
  tag?: string;
  /** `sha256:<64 hex>` */
  digest?: string;
}

const DOMAIN_PART = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_PART}(?:\\.${DOMAIN_PART})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?$`);
const PATH_PART_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
/** Docker's limit on a name (registry and path) */
const NAME_MAX = 255;

/** What is wrong with `s` as an image reference, or null when nothing is. */
export function imageRefProblem(s: string): string | null {
  const r = splitRef(s);
  return typeof r === 'string' ? r : null;
}

/** The parsed reference; throws on a malformed one (imageRefProblem says why). */
export function parseImageRef(s: string): ImageRef {
  const r = splitRef(s);
  if (typeof r === 'string') throw new Error(`${s}: ${r}`);
  return r;
}

function splitRef(s: string): ImageRef | string {
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) return `the digest after @ must be sha256: and 64 lower-case hex digits (got "${digest}")`;
  }
  // a tag is after the last colon that comes after the last slash (a colon before it is a registry's port)
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) return `the tag "${tag}" must be 1-128 of [A-Za-z0-9_.-], not starting with . or -`;
  }
  if (rest === '') return 'the image name is empty';
  if (rest.length > NAME_MAX) return `the image name is longer than ${NAME_MAX} characters`;
  const parts = rest.split('/');
  const first = parts[0]!;
  // as Docker decides: a first component with a dot or a port, or localhost, names a registry
  const hasRegistry = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase());
  if (hasRegistry && !DOMAIN_RE.test(first)) return `"${first}" is not a registry host[:port]`;
  const pathParts = hasRegistry ? parts.slice(1) : parts;
  for (const p of pathParts) {
    if (!PATH_PART_RE.test(p)) return `"${p}" is not a repository name component (lower-case letters and digits, separated by . _ __ or -)`;
  }
  const registry = hasRegistry ? first : 'docker.io';
  let path = pathParts.join('/');
  if (registry === 'docker.io' && pathParts.length === 1) path = `library/${path}`;
  return { name: rest, registry, path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** The repository a reference names, spelt one way however it was written: `docker.io/library/nginx`. */
export function repository(r: ImageRef): string {
  return `${r.registry}/${r.path}`;
}

/** The reference an engine pulls a pin by: the name and digest, no tag (engines differ on tag+digest). */
export function pullRef(r: ImageRef): string {
  return r.digest ? `${r.name}@${r.digest}` : r.tag ? `${r.name}:${r.tag}` : r.name;
}

/**
 * Whether an image's RepoDigests (`repo@sha256:...`, as the engine recorded
 * them) hold the pin's digest for the pin's repository. Podman finds an image
 * by its digest whatever repository it came from, so the repository matters.
 */
export function carriesPin(repoDigests: readonly string[], pin: ImageRef): boolean {
  if (!pin.digest) return false;
  const want = repository(pin);
  return repoDigests.some((d) => {
    const p = splitRef(d);
    return typeof p !== 'string' && p.digest === pin.digest && repository(p) === want;
  });
}
