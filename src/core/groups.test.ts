// The rules across an app's containers: names and aliases mean one container each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateApp } from './manifest.js';
import { containersOf } from './containers.js';
import { OutpostError } from './errors.js';

function problem(doc: object): { path?: string; message: string } {
  try {
    validateApp(doc);
  } catch (e) {
    assert.ok(e instanceof OutpostError);
    assert.equal(e.code, 'E_INVALID');
    return { path: e.path, message: e.message };
  }
  assert.fail('accepted');
}

const app = (db: object, web: object = {}) => ({ name: 'a', containers: [{ name: 'web', image: 'w', ...web }, { name: 'db', image: 'd', ...db }] });

test('aliases: more names for a container; the normalised view gives every container a list', () => {
  const cs = containersOf(validateApp(app({ aliases: ['edgex-redis', 'redis'], hostname: 'edgex-redis' })));
  assert.deepEqual(cs.map((c) => c.aliases), [[], ['edgex-redis', 'redis']]);
  assert.equal(cs[1]!.hostname, 'edgex-redis');
  assert.deepEqual(containersOf(validateApp({ name: 'one', image: 'x' }))[0]!.aliases, []);
});

test('an alias that is another container\'s name, another\'s alias, its own name or listed twice is refused at its path', () => {
  let p = problem(app({ aliases: ['cache', 'web'] }));
  assert.equal(p.path, 'containers[1].aliases[1]');
  assert.match(p.message, /"web" is the name of another container \(containers\[0\]\)/);
  p = problem(app({ aliases: ['cache'] }, { aliases: ['cache'] }));
  assert.equal(p.path, 'containers[1].aliases[0]');
  assert.match(p.message, /already an alias of "web"/);
  assert.equal(problem(app({ aliases: ['db'] })).path, 'containers[1].aliases[0]');
  assert.match(problem(app({ aliases: ['x', 'x'] })).message, /listed twice/);
  assert.equal(problem(app({ aliases: ['Not_A_Label'] })).path, 'containers[1].aliases[0]');
  assert.equal(problem(app({ hostname: 'bad_host' })).path, 'containers[1].hostname');
  assert.equal(problem(app({ hostname: 'x'.repeat(64) })).path, 'containers[1].hostname');
});
