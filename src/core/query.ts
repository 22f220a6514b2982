// Query-string parameters shared by the control plane's API and the hub's.
import { OutpostError } from './errors.js';

/** A numeric parameter (epoch ms, a limit): undefined when absent, E_INVALID naming it when not a number. */
export function numberParam(x: string | undefined, path: string): number | undefined {
  if (x === undefined || x === '') return undefined;
  const n = Number(x);
  if (!Number.isFinite(n)) throw new OutpostError('E_INVALID', `${path} must be a number`, { path });
  return n;
}
