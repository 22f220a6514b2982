// Picks the runtime driver: Docker/Podman when an engine answers, plain
// processes otherwise (or as asked).
import { OutpostError } from '../core/errors.js';
import type { RuntimeDriver } from './drivers/driver.js';
import { DockerDriver, detectEngine } from './drivers/docker.js';
import { ProcessDriver, type ProcessOptions } from './drivers/process.js';

export type RuntimeChoice = 'auto' | 'docker' | 'process';

export interface DriverOptions extends ProcessOptions {
  /** process runtime: the directory commands (and `workdir`s) are taken from; the agent's working directory by default */
  baseDir?: string;
  /** containers share the engine's network namespace */
  hostNetwork?: boolean;
}

export async function selectDriver(choice: RuntimeChoice, node: string, dataDir: string, o: DriverOptions = {}): Promise<RuntimeDriver> {
  const { baseDir, hostNetwork = false, ...processOptions } = o;
  if (choice !== 'process') {
    const engine = await detectEngine();
    if (engine) return new DockerDriver(engine, node, hostNetwork);
    if (choice === 'docker') {
      throw new OutpostError('E_USAGE', 'no container engine answered (tried DOCKER_HOST, /var/run/docker.sock, /run/podman/podman.sock); start Docker or `podman system service`, or use --runtime process');
    }
  }
  return new ProcessDriver(dataDir, node, baseDir, processOptions);
}
