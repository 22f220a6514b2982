// `build:` at deploy time, as `balena push` does it: the context goes to this
// machine's engine (Docker or Podman, through its build API), the image is
// tagged for the registry and pushed, and the app names it there. The tag is
// the image ID's first 12 hex digits: the same build gives the same tag (the
// app is unchanged), a changed one a new tag (the app rolls).
import fs from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { OutpostError, errorMessage } from '../core/errors.js';
import { parseImageRef } from '../core/imageref.js';
import { detectEngine } from '../agent/drivers/docker.js';
import { readRegistryAuth } from '../registry/auth.js';
import type { BuildRequest } from './context.js';

export interface BuildOptions {
  app: string;
  /** host[:port] of the registry the nodes pull from */
  registry: string | undefined;
  registryAuth?: string;
  say: (line: string) => void;
  /** for tests; found like the agent finds it otherwise */
  docker?: Docker | null;
}

/** Builds and pushes every service's image; the reference each is pushed as, by service. */
export async function buildAndPush(builds: BuildRequest[], o: BuildOptions): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (builds.length === 0) return out;
  const services = builds.map((b) => b.service).join(', ');
  if (!o.registry) {
    throw new OutpostError('E_USAGE', `services.${builds[0]!.service}.build: ${services} ${builds.length > 1 ? 'are' : 'is'} built here and pulled by the nodes from a registry: give it with --registry HOST[:PORT] or OUTPOST_REGISTRY`, { path: `services.${builds[0]!.service}.build` });
  }
  const docker = o.docker === undefined ? await detectEngine() : o.docker;
  if (!docker) {
    throw new OutpostError('E_USAGE', `services.${builds[0]!.service}.build: building ${services} needs a container engine on this machine, and none answered (DOCKER_HOST, /var/run/docker.sock, /run/podman/podman.sock); build and push the image${builds.length > 1 ? 's' : ''} elsewhere and give image: instead`, { path: `services.${builds[0]!.service}.build` });
  }
  const auth = o.registryAuth ? readRegistryAuth(o.registryAuth).forRegistry(o.registry) : null;
  for (const b of builds) {
    const repo = `${o.registry}/${b.image ? parseImageRef(b.image).path : `${o.app}-${b.service}`}`;
    o.say(`building ${b.service} from ${b.context}`);
    const id = await build(docker, b, `${repo}:latest`);
    const tag = id.replace(/^sha256:/, '').slice(0, 12);
    const ref = `${repo}:${tag}`;
    await docker.getImage(`${repo}:latest`).tag({ repo, tag });
    o.say(`pushing ${ref}`);
    await push(docker, b.service, repo, tag, auth ? { ...auth, serveraddress: o.registry } : {});
    out.set(b.service, ref);
  }
  return out;
}

/** Every file under the context, relative to it (the engine's .dockerignore rules are applied by dockerode). */
function contextFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...contextFiles(dir, p));
    else out.push(p);
  }
  return out;
}

interface Progress { stream?: string; error?: string; errorDetail?: { message?: string }; aux?: { ID?: string } }

function follow(docker: Docker, stream: NodeJS.ReadableStream, onEvent: (e: Progress) => void): Promise<void> {
  return new Promise((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve()), onEvent));
}

async function build(docker: Docker, b: BuildRequest, tag: string): Promise<string> {
  const fail = (why: string) => new OutpostError('E_BUILD_FAILED', `services.${b.service}.build: building ${b.context} failed: ${why}`, { path: `services.${b.service}.build` });
  let tail: string[] = [];
  let failed: string | null = null;
  try {
    const stream = await docker.buildImage({ context: b.context, src: contextFiles(b.context) }, {
      t: tag, dockerfile: b.dockerfile, buildargs: b.args, labels: b.labels, ...(b.target ? { target: b.target } : {}),
      nocache: b.noCache, pull: b.pull, rm: true,
    });
    await follow(docker, stream, (e) => {
      if (e.stream) tail = [...tail, ...e.stream.split('\n').filter((l) => l.trim())].slice(-5);
      if (e.error || e.errorDetail) failed = e.errorDetail?.message ?? e.error ?? 'unknown error';
    });
  } catch (e) {
    throw fail(errorMessage(e));
  }
  if (failed) throw fail(`${failed}${tail.length ? ` (last output: ${tail.join(' | ')})` : ''}`);
  try {
    return (await docker.getImage(tag).inspect()).Id;
  } catch (e) {
    throw fail(`the engine reported success but has no image ${tag}: ${errorMessage(e)}`);
  }
}

async function push(docker: Docker, service: string, repo: string, tag: string, authconfig: object): Promise<void> {
  const ref = `${repo}:${tag}`;
  const fail = (why: string) => new OutpostError('E_BUILD_FAILED', `services.${service}.build: pushing ${ref} failed: ${why}`, { path: `services.${service}.build` });
  let failed: string | null = null;
  try {
    // an auth header, even an empty one: Docker refuses a push without it
    const stream = await docker.getImage(repo).push({ tag, authconfig }) as NodeJS.ReadableStream;
    await follow(docker, stream, (e) => {
      if (e.error || e.errorDetail) failed = e.errorDetail?.message ?? e.error ?? 'unknown error';
    });
  } catch (e) {
    throw fail(errorMessage(e));
  }
  if (failed) throw fail(failed);
}
