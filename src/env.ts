// Reading the environment: only names in the documented table
// (src/core/environment.ts) compile, so no variable goes undocumented. Apart
// from the table because src/core stays free of I/O and process state.
import type { EnvName } from './core/environment.js';

export function readEnv(name: EnvName): string | undefined {
  return process.env[name];
}
