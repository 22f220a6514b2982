// Whether a real container engine and the example image are here. Container
// tests skip with a printed reason when not, unless OUTPOST_REQUIRE_ENGINE=1,
// which turns the missing engine into a failure (CI sets it).
import type Docker from 'dockerode';
import { detectEngine } from '../src/agent/drivers/docker.js';

export const EXAMPLE_IMAGE = 'localhost/sensor-stats:0.1';

export async function engineOrSkip(): Promise<{ docker: Docker | null; skip: string | false }> {
  const docker = await detectEngine();
  let reason: string | false = false;
  if (!docker) reason = 'no container engine answered (DOCKER_HOST, /var/run/docker.sock, /run/podman/podman.sock)';
  else {
    try {
      await docker.getImage(EXAMPLE_IMAGE).inspect();
    } catch {
      reason = `the example image ${EXAMPLE_IMAGE} is missing (run npm run build:images)`;
    }
  }
  if (reason && process.env.OUTPOST_REQUIRE_ENGINE === '1') {
    throw new Error(`OUTPOST_REQUIRE_ENGINE=1 but ${reason}`);
  }
  if (reason) console.log(`# container tests skipped: ${reason}`);
  return { docker, skip: reason };
}
