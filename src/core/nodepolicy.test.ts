import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateApp } from './manifest.js';
import { validateSnapshot } from './snapshot.js';
import { Cluster } from './cluster.js';
import { plan } from './planner.js';
import { decide } from './reconcile.js';
import { specHash } from './manifest.js';
import { OutpostError } from './errors.js';
import { deviceAllowed, isUnder, needsOf, refusals, runtimeRefusals } from './nodepolicy.js';
import { node, replica } from './testkit.js';
import { effectiveSpec, specDiff } from './overrides.js';

const mk = (name: string, over: object = {}) => ({ name, capacity: { cpu: 4, memoryMiB: 4096 }, ...over });
const open = { devices: ['/dev/ttyUSB*', '/dev/video?'], hostPaths: ['/data', '/srv/cams/'], privileged: true };
const planOf = (nodes: object[], app: object, images: object = {}) => plan(new Cluster(validateSnapshot({ nodes, images })), validateApp(app));
const why = (p: ReturnType<typeof plan>) => Object.fromEntries(p.filtered.map((f) => [f.node, f.reasons.join('; ')]));

test('globs stay within a path segment; host paths cover what is below them, segment by segment', () => {
  assert.ok(deviceAllowed(['/dev/ttyUSB*'], '/dev/ttyUSB0'));
  assert.ok(!deviceAllowed(['/dev/ttyUSB*'], '/dev/ttyUSB0/x'), '* does not cross /');
  assert.ok(!deviceAllowed(['/dev/tty*'], '/dev/serial/by-id/x'));
  assert.ok(deviceAllowed(['/dev/serial/by-id/*'], '/dev/serial/by-id/usb-FTDI_1'));
  assert.ok(deviceAllowed(['/dev/video?'], '/dev/video0') && !deviceAllowed(['/dev/video?'], '/dev/video10'));
  assert.ok(!deviceAllowed(['/dev/loop.'], '/dev/loop0'), 'a dot is a dot, not any character');
  assert.ok(isUnder('/data', '/data') && isUnder('/data/x/y', '/data/') && isUnder('/data//x', '/data'));
  assert.ok(!isUnder('/database', '/data'), 'a prefix of the name is not a parent');
  assert.ok(isUnder('/anything', '/'));
});

test('needs name the field that asks, in both shapes of an app', () => {
  const single = validateApp({ name: 'a', image: 'i:1', devices: ['/dev/ttyUSB0:/dev/serial:r'], volumes: [{ path: '/v', volume: 'v' }, { path: '/d', hostPath: '/data/a' }], networkMode: 'host' });
  assert.deepEqual(needsOf(single), [
    { kind: 'device', path: '/dev/ttyUSB0', field: 'devices[0]' },
    { kind: 'hostPath', path: '/data/a', field: 'volumes[1].hostPath' },
    { kind: 'privileged', what: 'the host\'s network', field: 'networkMode' },
  ]);
  const group = validateApp({ name: 'g', containers: [{ name: 'db', image: 'db:1' }, { name: 'cam', image: 'c:1', devices: ['/dev/video0'], capAdd: ['NET_ADMIN', 'ALL'], privileged: true }] });
  assert.deepEqual(needsOf(group).map((n) => n.field), ['containers[1].devices[0]', 'containers[1].privileged', 'containers[1].capAdd[1]']);
});

test('a node refuses what its policy does not allow, and a device it lacks is missing, not refused', () => {
  const app = validateApp({ name: 'a', image: 'i:1', devices: ['/dev/ttyUSB0'], volumes: [{ path: '/d', hostPath: '/database' }], privileged: true });
  const needs = needsOf(app);
  assert.deepEqual(refusals(needs, { runtime: 'docker' }), [
    'devices[0]: device /dev/ttyUSB0 is not allowed (outpost agent --allow-devices)',
    'volumes[0].hostPath: host path /database is not allowed (outpost agent --allow-host-paths)',
    'privileged: a privileged container is not allowed (outpost agent --allow-privileged)',
  ], 'no policy reported (an older agent): nothing allowed');
  assert.deepEqual(refusals(needs, { runtime: 'docker', policy: open, devices: [] }), [
    'devices[0]: device /dev/ttyUSB0 is missing on the node (allowed, not present)',
    'volumes[0].hostPath: host path /database is not allowed (outpost agent --allow-host-paths)',
  ]);
  assert.deepEqual(refusals(needs, { runtime: 'docker', policy: { ...open, hostPaths: ['/'] }, devices: ['/dev/ttyUSB0'] }), []);
});

test('runtimes: process refuses container features by name; docker needs an image', () => {
  assert.deepEqual(runtimeRefusals(validateApp({ name: 'a', command: ['x'] }), 'process'), []);
  assert.deepEqual(runtimeRefusals(validateApp({ name: 'a', command: ['x'], volumes: [{ path: '/v', tmpfs: 8 }], user: '1000' }), 'process'),
    ['volumes, user: runtime process cannot give volumes, user (container runtimes only)']);
  assert.deepEqual(runtimeRefusals(validateApp({ name: 'g', containers: [{ name: 'a', image: 'a:1' }, { name: 'b', image: 'b:1' }] }), 'process'),
    ['containers: runtime process cannot give several containers (container runtimes only)']);
  assert.deepEqual(runtimeRefusals(validateApp({ name: 'a', command: ['x'] }), 'docker'), ['runtime docker needs an image and the app has none']);
  // the host's network is what every process has: no privilege on the process runtime
  assert.deepEqual(refusals(needsOf(validateApp({ name: 'a', command: ['x'], networkMode: 'host' })), { runtime: 'process' }), []);
});

test('placement: a replica goes only where every device is present and allowed, its host paths and privileges allowed', () => {
  const nodes = [
    mk('closed'),
    mk('lacks', { policy: open, devices: ['/dev/ttyUSB1'] }),
    mk('has', { policy: open, devices: ['/dev/ttyUSB0', '/dev/ttyUSB1'] }),
    mk('proc', { runtime: 'process', policy: open }),
  ];
  const app = { name: 'modbus', image: 'i:1', devices: ['/dev/ttyUSB0'], volumes: [{ path: '/d', hostPath: '/data/modbus' }] };
  const p = planOf(nodes, app);
  assert.deepEqual(p.placements.map((x) => x.node), ['has']);
  const w = why(p);
  assert.match(w.closed!, /devices\[0\]: device \/dev\/ttyUSB0 is not allowed \(outpost agent --allow-devices\); volumes\[0\]\.hostPath: host path \/data\/modbus is not allowed/);
  assert.match(w.lacks!, /devices\[0\]: device \/dev\/ttyUSB0 is missing on the node/);
  assert.match(w.proc!, /^volumes, devices: runtime process cannot give volumes, devices/);
  assert.throws(() => planOf(nodes, { ...app, replicas: 2 }), (e: unknown) => e instanceof OutpostError && e.code === 'E_UNSCHEDULABLE' && /lacks: devices\[0\]: device \/dev\/ttyUSB0 is missing/.test(e.message));
  // privileges: networkMode host and capAdd ALL ask for them too
  const q = planOf([mk('plain', { policy: { ...open, privileged: false } }), mk('priv', { policy: open })], { name: 'net', image: 'i:1', networkMode: 'host' });
  assert.deepEqual(q.placements.map((x) => x.node), ['priv']);
  assert.match(why(q).plain!, /networkMode: the host's network is not allowed \(outpost agent --allow-privileged\)/);
});

test('T_image is the layers of all the group\'s images that the node lacks, a shared layer once', () => {
  const images = {
    'base-app:1': { layers: [{ digest: 'B', bytes: 12_500_000 }, { digest: 'A', bytes: 12_500_000 }] },
    'base-db:1': { layers: [{ digest: 'B', bytes: 12_500_000 }, { digest: 'D', bytes: 25_000_000 }] },
  };
  const nodes = [mk('empty', { bandwidthMbps: 100 }), mk('has-b', { bandwidthMbps: 100, layers: ['B'] }), mk('has-all', { bandwidthMbps: 100, layers: ['A', 'B', 'D'] })];
  const app = { name: 'g', replicas: 3, containers: [{ name: 'app', image: 'base-app:1' }, { name: 'db', image: 'base-db:1' }] };
  const p = planOf(nodes, app, images);
  const ms = Object.fromEntries(p.placements.map((x) => [x.node, x.predicted.imageMs]));
  // 100 Mbps: 12.5 MB is 1000 ms
  assert.deepEqual(ms, { 'empty': 4000, 'has-b': 3000, 'has-all': 0 });
});

test('overrides: each node is judged by its effective spec (arm64 image), plan shows the diff, a selector matching nothing warns', () => {
  const images = {
    'cam:1-amd64': { layers: [{ digest: 'X', bytes: 12_500_000 }] },
    'cam:1-arm64': { layers: [{ digest: 'Y', bytes: 25_000_000 }] },
  };
  const nodes = [
    mk('x86', { arch: 'amd64', site: 'a', bandwidthMbps: 100, labels: { site: 'a' } }),
    mk('pi', { arch: 'arm64', site: 'b', bandwidthMbps: 100, layers: ['X'], labels: { site: 'b' } }),
  ];
  const app = {
    name: 'cam', image: 'cam:1-amd64', replicas: 2, env: { MODE: 'base' }, resources: { memoryMiB: 64 },
    overrides: [
      { match: { arch: ['arm64'] }, set: { image: 'cam:1-arm64', resources: { memoryMiB: 128 } } },
      { match: { sites: ['b'] }, set: { env: { MODE: 'site-b' } } },
      { match: { sites: ['nowhere-*'] }, set: { env: { MODE: 'never' } } },
    ],
  };
  const p = planOf(nodes, app, images);
  const ms = Object.fromEntries(p.placements.map((x) => [x.node, x.predicted.imageMs]));
  assert.deepEqual(ms, { x86: 1000, pi: 2000 }, 'the arm64 node pulls the arm64 image, whatever amd64 layers it holds');
  assert.deepEqual(p.overrides, [{ node: 'pi', applied: [0, 1], diff: ['env.MODE: "base" -> "site-b"', 'image: "cam:1-amd64" -> "cam:1-arm64"', 'resources.memoryMiB: 64 -> 128'] }]);
  assert.deepEqual(p.warnings, ['overrides[2]: its match selects no node ({"sites":["nowhere-*"]})']);
  // an override's resources decide whether its node fits
  const small = planOf([nodes[0]!, { ...nodes[1]!, capacity: { cpu: 4, memoryMiB: 100 } }], { ...app, replicas: 1 }, images);
  assert.match(why(small).pi!, /not enough memory: 100 MiB free, 128 asked/);
  // an override's devices decide where a replica may go
  const dev = planOf([mk('n1', { policy: open, devices: ['/dev/video0'] }), mk('n2', { policy: open, devices: ['/dev/video1'] })],
    { name: 'v', image: 'v:1', devices: ['/dev/video0'], overrides: [{ match: { nodes: ['n2'] }, set: { devices: ['/dev/video1'] } }], replicas: 2 });
  assert.deepEqual(dev.placements.map((x) => x.node).sort(), ['n1', 'n2']);
});

test('a replica that moves to a node its app did not run on is told it starts with an empty volume', () => {
  const spec = validateApp({ name: 'db', image: 'db:1', volumes: [{ path: '/var/lib/db', volume: 'data' }], replicas: 1 });
  const hash = specHash(spec);
  const nodes = [node('n1', { state: 'unreachable' }), node('n2')];
  const lost = decide(spec, hash, { nodes, replicas: [replica('db-0-0', 'db', 'n1', { specHash: hash })], specs: new Map(), sites: [], lost: new Set(['n1']) });
  assert.deepEqual(lost.plan.placements.map((x) => x.node), ['n2']);
  assert.deepEqual(lost.plan.warnings, ['replica 0 goes to n2, where db did not run (it ran on n1): it starts with an empty volume data']);
  const first = decide(spec, hash, { nodes, replicas: [], specs: new Map(), sites: [] });
  assert.deepEqual(first.plan.warnings, [], 'a first deploy has no volume to lose');
});

test('a diff names a container\'s changed field by the container\'s name, not the whole list', () => {
  const app = validateApp({
    name: 'm', containers: [{ name: 'db', image: 'db:1' }, { name: 'adapter', image: 'ad:1', env: { A: '1' } }],
    overrides: [{ match: { arch: ['arm64'] }, set: { containers: { adapter: { image: 'ad:1-arm64', env: { B: '2' } } } } }],
  });
  const eff = effectiveSpec(app, { name: 'n', site: null, labels: {}, arch: 'arm64' });
  assert.deepEqual(eff.applied, [0]);
  assert.deepEqual(specDiff(app, eff.spec), ['containers.adapter.env.B: undefined -> "2"', 'containers.adapter.image: "ad:1" -> "ad:1-arm64"']);
  assert.deepEqual(effectiveSpec(app, { name: 'n', site: null, labels: {}, arch: 'amd64' }).applied, []);
});
