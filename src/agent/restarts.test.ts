// When a stopped replica is restarted: its policy, and restart.maxRetries
// counted in a row (the runner's own tests drive it through a driver).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STABLE_MS, nextRestart } from './restarts.js';

const crash = { exitCode: 3, upMs: 0 };

test('never and on-failure after exit 0 do not restart, whatever the count', () => {
  assert.deepEqual(nextRestart({ policy: 'never' }, crash, 0), { action: 'stop' });
  assert.deepEqual(nextRestart({ policy: 'on-failure', maxRetries: 2 }, { exitCode: 0, upMs: 0 }, 2), { action: 'stop' });
});

test('without maxRetries there is no limit', () => {
  assert.deepEqual(nextRestart({ policy: 'always' }, crash, 10_000), { action: 'restart', inARow: 10_001 });
  assert.deepEqual(nextRestart({ policy: 'on-failure' }, { exitCode: null, upMs: 0 }, 50), { action: 'restart', inARow: 51 });
});

test('maxRetries: N restarts in a row, then the limit', () => {
  const rule = { policy: 'on-failure', maxRetries: 3 } as const;
  let inARow = 0;
  const seen: string[] = [];
  for (let i = 0; i < 5; i++) {
    const d = nextRestart(rule, crash, inARow);
    seen.push(d.action);
    if (d.action !== 'restart') break;
    inARow = d.inARow;
  }
  assert.deepEqual(seen, ['restart', 'restart', 'restart', 'limit']);
  // always counts a clean exit as a stop to restart from, and is limited the same way
  assert.deepEqual(nextRestart({ policy: 'always', maxRetries: 1 }, { exitCode: 0, upMs: 10 }, 1), { action: 'limit', inARow: 1 });
});

test('a replica that stayed up STABLE_MS after it was ready starts counting afresh; one that stopped sooner does not', () => {
  const rule = { policy: 'always', maxRetries: 2 } as const;
  assert.deepEqual(nextRestart(rule, { exitCode: 1, upMs: STABLE_MS }, 2), { action: 'restart', inARow: 1 });
  assert.deepEqual(nextRestart(rule, { exitCode: 1, upMs: STABLE_MS - 1 }, 2), { action: 'limit', inARow: 2 });
});
