import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CAPABILITIES, ROLES, ROLE_NAMES, ROUTE_RULES, globMatches, patternCovers, refuseRole, refuseScope, ruleFor, strongerThan, targetOf, validatePattern, type Principal } from './capabilities.js';
import { OutpostError } from './errors.js';

const who = (p: Partial<Principal>): Principal => ({ id: 'opt_x', name: 'x', role: 'admin', apps: null, sites: null, expiresAt: null, ...p });

test('every rule names a known capability, and every role only known ones', () => {
  for (const [route, r] of Object.entries(ROUTE_RULES)) assert.ok(r.cap === null || CAPABILITIES.includes(r.cap), route);
  for (const role of ROLE_NAMES) for (const c of ROLES[role]) assert.ok(CAPABILITIES.includes(c), `${role}: ${c}`);
});

test('a viewer reads apps, nodes, sites, streams and the cluster, and nothing sensitive', () => {
  const v = who({ role: 'viewer' });
  for (const r of ['GET /v1/apps', 'GET /v1/replicas', 'GET /v1/nodes', 'GET /v1/sites', 'GET /v1/streams', 'GET /v1/model', 'GET /v1/cluster', 'GET /v1/whoami']) {
    const [m, u] = r.split(' ') as [string, string];
    assert.equal(refuseRole(v, ruleFor(m, u), r), null, r);
  }
  for (const [r, cap] of [['POST /v1/apps', 'app:deploy'], ['GET /v1/apps/:name/logs', 'app:logs'], ['GET /v1/secrets', 'secret:read'], ['POST /v1/apitokens', 'token:write'],
    ['GET /v1/apitokens', 'token:read'], ['GET /v1/audit', 'audit:read'], ['GET /v1/backup', 'backup:read'], ['GET /v1/tokens', 'token:read']] as const) {
    const [m, u] = r.split(' ') as [string, string];
    const e = refuseRole(v, ruleFor(m, u), r);
    assert.ok(e instanceof OutpostError && e.code === 'E_FORBIDDEN', r);
    assert.ok(e.message.includes(cap), `${r}: ${e.message}`);
  }
});

test('an operator runs the fleet but holds no tokens or backups; a device-admin only devices', () => {
  const op = who({ role: 'operator' });
  for (const r of ['POST /v1/apps', 'DELETE /v1/apps/:name', 'POST /v1/nodes/:name/revoke', 'POST /v1/sites', 'GET /v1/secrets', 'GET /v1/audit']) assert.equal(refuseRole(op, ROUTE_RULES[r], r), null, r);
  for (const r of ['POST /v1/apitokens', 'GET /v1/backup', 'PUT /v1/secrets/:name', 'POST /v1/tokens']) assert.ok(refuseRole(op, ROUTE_RULES[r], r), r);
  const d = who({ role: 'device-admin' });
  assert.equal(refuseRole(d, ROUTE_RULES['POST /v1/devices'], 'x'), null);
  assert.ok(refuseRole(d, ROUTE_RULES['GET /v1/apps'], 'x'));
});

test('a route missing from the table is for an unscoped admin only', () => {
  assert.equal(refuseRole(who({}), undefined, 'POST /v1/new'), null);
  assert.match(refuseRole(who({ apps: 'shop-*' }), undefined, 'POST /v1/new')!.message, /not in the capability table/);
  assert.ok(refuseRole(who({ role: 'operator' }), undefined, 'POST /v1/new'));
  assert.equal(ruleFor('HEAD', '/v1/apps'), ROUTE_RULES['GET /v1/apps']);
});

test('scopes limit app- and site-targeted calls; a refusal names the capability and the target', () => {
  const d = who({ role: 'deployer', apps: 'shop-*' });
  const deploy = ROUTE_RULES['POST /v1/apps'];
  assert.equal(targetOf(deploy, { body: { name: 'shop-a', image: 'x' } }), 'shop-a');
  assert.equal(refuseScope(d, deploy, 'shop-a'), null);
  const e = refuseScope(d, deploy, 'factory-app')!;
  assert.equal(e.code, 'E_FORBIDDEN');
  assert.match(e.message, /app:deploy.*factory-app/);
  assert.ok(refuseScope(d, deploy, null), 'a scoped token is refused when the target cannot be told');
  // lists are not filtered; targets of other kinds are not scoped by apps
  assert.equal(refuseScope(d, ROUTE_RULES['GET /v1/apps'], null), null);
  assert.equal(refuseScope(who({ apps: 'shop-*' }), ROUTE_RULES['POST /v1/nodes/:name/revoke'], 'edge-1'), null);
  assert.ok(refuseScope(who({ sites: 'north-*' }), ROUTE_RULES['DELETE /v1/sites/:name'], 'south-1'));
  assert.equal(targetOf(ROUTE_RULES['DELETE /v1/apps/:name'], { params: { name: 'a' } }), 'a');
  assert.equal(targetOf(deploy, { body: 'not an object' }), null);
});

test('patterns: validated with their path; globs match whole names', () => {
  assert.equal(validatePattern('shop-*, edge-a', 'apps'), 'shop-*,edge-a');
  for (const bad of ['', 'Shop', 'a b', 'x?', '../x', 'a,', 5, null]) {
    assert.throws(() => validatePattern(bad, 'apps'), (e: OutpostError) => e.code === 'E_INVALID' && e.path === 'apps', String(bad));
  }
  assert.ok(globMatches('shop-*', 'shop-a'));
  assert.ok(globMatches('shop-*', 'shop-'));
  assert.ok(!globMatches('shop-*', 'xshop-a'));
  assert.ok(!globMatches('shop-*', 'factory-app'));
  assert.ok(globMatches('a,b-*', 'b-1') && globMatches('a,b-*', 'a') && !globMatches('a,b-*', 'ab'));
  assert.ok(globMatches('*-edge', 'x-edge') && !globMatches('*-edge', 'x-edge2'));
});

test('patternCovers: every name the inner pattern matches, the outer one does (checked on random globs)', () => {
  assert.ok(patternCovers(null, 'x'));
  assert.ok(!patternCovers('x', null));
  assert.ok(patternCovers('shop-*', 'shop-a*,shop-b'));
  assert.ok(!patternCovers('shop-*', '*'));
  assert.ok(!patternCovers('shop-a*', 'shop-*'));
  let seed = 7;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  const glob = () => Array.from({ length: 1 + rnd(4) }, () => 'ab*'[rnd(3)]).join('');
  const name = () => Array.from({ length: rnd(6) }, () => 'ab'[rnd(2)]).join('');
  for (let i = 0; i < 2000; i++) {
    const outer = glob();
    const inner = glob();
    if (!patternCovers(outer, inner)) continue;
    for (let j = 0; j < 30; j++) {
      const n = name();
      if (globMatches(inner, n)) assert.ok(globMatches(outer, n), `${outer} covers ${inner} but not ${n}`);
    }
  }
});

test('a token cannot make one stronger than itself: role, scopes or lifetime', () => {
  const scopedAdmin = who({ apps: 'shop-*' });
  assert.match(strongerThan({ role: 'admin', apps: null, sites: null, expiresAt: null }, scopedAdmin)!, /apps/);
  assert.equal(strongerThan({ role: 'deployer', apps: 'shop-x*', sites: null, expiresAt: null }, scopedAdmin), null);
  assert.match(strongerThan({ role: 'operator', apps: null, sites: null, expiresAt: null }, who({ role: 'deployer' }))!, /app:remove/);
  assert.equal(strongerThan({ role: 'viewer', apps: null, sites: null, expiresAt: null }, who({ role: 'operator' })), null);
  assert.match(strongerThan({ role: 'viewer', apps: null, sites: null, expiresAt: null }, who({ expiresAt: 1000 }))!, /outlive/);
  assert.equal(strongerThan({ role: 'viewer', apps: null, sites: null, expiresAt: 900 }, who({ expiresAt: 1000 })), null);
});
