// Whether the agent restarts a replica that stopped: its policy, and the
// limit on restarts in a row (`restart.maxRetries`). Docker's on-failure:N
// counts every restart since the container was last started by hand and
// never forgets one (only its back-off starts over, after 10 s up), so a
// container that fails once a month is given up on in N months. Here a
// replica that stayed up STABLE_MS after it was ready starts counting afresh:
// only a crash loop reaches the limit. The same span resets the back-off.
import type { AppSpec } from '../core/manifest.js';

/** a replica that stayed up this long after it was ready has its back-off and its restarts in a row reset */
export const STABLE_MS = 60_000;

export type RestartDecision =
  /** the policy does not restart it: it stays stopped or failed as it is */
  | { action: 'stop' }
  /** it would restart, but has restarted maxRetries times in a row already */
  | { action: 'limit'; inARow: number }
  | { action: 'restart'; inARow: number };

/**
 * `upMs`: how long the instance ran after it was ready (0: it never was);
 * `inARow`: the restarts in a row before this stop.
 */
export function nextRestart(rule: AppSpec['restart'], ended: { exitCode: number | null; upMs: number }, inARow: number): RestartDecision {
  if (rule.policy === 'never' || (rule.policy === 'on-failure' && ended.exitCode === 0)) return { action: 'stop' };
  const count = ended.upMs >= STABLE_MS ? 0 : inARow;
  if (rule.maxRetries !== undefined && count >= rule.maxRetries) return { action: 'limit', inARow: count };
  return { action: 'restart', inARow: count + 1 };
}
