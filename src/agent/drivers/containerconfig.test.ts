// How one container of a replica becomes the engine's create options: mounts,
// devices, host access, the group's network and labels (the engine itself: test/groups.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateApp, specHash } from '../../core/manifest.js';
import { containersOf } from '../../core/containers.js';
import { CAP_DROP, containerOptions, hardening } from './containerconfig.js';
import { LABELS, type RunSpec } from './driver.js';

function runSpec(doc: object, configs?: Record<string, string>): RunSpec {
  const spec = validateApp(doc);
  return { replicaId: 'a-0-1', app: spec.name, specHash: specHash(spec), node: 'n1', spec, hostPorts: { http: 31000, db: 31001 }, bindHost: '127.0.0.1', env: { OUTPOST_APP: spec.name }, ...(configs ? { configs } : {}) };
}

const place = { image: 'img', hostNetwork: false, network: null, group: null, first: true, shorthand: true };

test('a single container keeps its name, publishes its ports and gets no network of its own; the shorthand command is the process runtime\'s', () => {
  const r = runSpec({ name: 'a', image: 'img', command: ['node', 'server.mjs'], workdir: 'examples', ports: [{ name: 'http', container: 5000 }] });
  const o = containerOptions(r, containersOf(r.spec)[0]!, place);
  assert.equal(o.name, 'outpost-a-0-1');
  assert.equal(o.Cmd, undefined, 'an app with image and command runs its image\'s command');
  assert.equal(o.WorkingDir, undefined, 'a relative workdir is the process runtime\'s');
  assert.deepEqual(o.HostConfig!.PortBindings, { '5000/tcp': [{ HostIp: '127.0.0.1', HostPort: '31000' }] });
  assert.equal(o.HostConfig!.NetworkMode, undefined);
  assert.equal(o.NetworkingConfig, undefined);
  assert.equal(o.Labels![LABELS.group], undefined);
  assert.equal(o.Labels![LABELS.container], undefined);
});

test('a group\'s container joins the replica network under its name; the first carries the start order', () => {
  const r = runSpec({ name: 'a', containers: [
    { name: 'web', image: 'w', command: ['serve'], entrypoint: ['/init'], workdir: 'rel', user: '1000:1000', ports: [{ name: 'http', container: 80 }], dependsOn: { db: 'started' } },
    { name: 'db', image: 'd', ports: [{ name: 'db', container: 5432 }] },
  ] });
  const [web, db] = containersOf(r.spec);
  const at = { ...place, network: 'outpost-a-0-1', group: ['db', 'web'], shorthand: false };
  const o = containerOptions(r, web!, at);
  assert.equal(o.name, 'outpost-a-0-1-web');
  assert.deepEqual([o.Cmd, o.Entrypoint, o.WorkingDir, o.User], [['serve'], ['/init'], 'rel', '1000:1000']);
  assert.equal(o.HostConfig!.NetworkMode, 'outpost-a-0-1');
  assert.deepEqual(o.NetworkingConfig, { EndpointsConfig: { 'outpost-a-0-1': { Aliases: ['web'] } } });
  assert.equal(o.Labels![LABELS.container], 'web');
  assert.equal(o.Labels![LABELS.group], '["db","web"]');
  const d = containerOptions(r, db!, { ...at, first: false });
  assert.equal(d.Labels![LABELS.group], undefined);
  assert.deepEqual(d.HostConfig!.PortBindings, { '5432/tcp': [{ HostIp: '127.0.0.1', HostPort: '31001' }] }, 'every container publishes its own ports');
});

test('volumes, host paths, tmpfs and configs become binds and tmpfs mounts; read-only where asked, configs always', () => {
  const r = runSpec({
    name: 'a', image: 'img', configs: { settings: { content: 'x' } },
    volumes: [
      { volume: 'data', path: '/data' }, { volume: 'seed', path: '/seed', readOnly: true }, { hostPath: '/srv/in', path: '/in', readOnly: true },
      { hostPath: '/srv/out', path: '/out' }, { tmpfs: 16, path: '/scratch' }, { config: 'settings', path: '/etc/app.conf' },
    ],
  }, { settings: '/var/lib/outpost/agent/configs/a-0-1/settings' });
  const h = containerOptions(r, containersOf(r.spec)[0]!, place).HostConfig!;
  assert.deepEqual(h.Binds, ['outpost-a-data:/data', 'outpost-a-seed:/seed:ro', '/srv/in:/in:ro', '/srv/out:/out', '/var/lib/outpost/agent/configs/a-0-1/settings:/etc/app.conf:ro']);
  assert.deepEqual(h.Tmpfs, { '/scratch': 'size=16m' });
});

test('devices, capAdd, privileged, read-only root and the host network', () => {
  const r = runSpec({ name: 'a', image: 'img', devices: ['/dev/ttyUSB0', '/dev/video0:/dev/cam:r'], capAdd: ['NET_RAW', 'SYS_TIME'], readOnlyRootfs: true, networkMode: 'host', ports: [{ name: 'http', container: 8080 }] });
  const o = containerOptions(r, containersOf(r.spec)[0]!, place);
  const h = o.HostConfig!;
  assert.deepEqual(h.Devices, [
    { PathOnHost: '/dev/ttyUSB0', PathInContainer: '/dev/ttyUSB0', CgroupPermissions: 'rwm' },
    { PathOnHost: '/dev/video0', PathInContainer: '/dev/cam', CgroupPermissions: 'r' },
  ]);
  assert.deepEqual(h.CapAdd, ['NET_RAW', 'SYS_TIME']);
  assert.ok(!h.CapDrop!.includes('NET_RAW'), 'an added capability is not dropped');
  assert.ok(h.CapDrop!.includes('MKNOD'));
  assert.equal(h.ReadonlyRootfs, true);
  assert.equal(h.NetworkMode, 'host');
  assert.equal(h.PortBindings, undefined, 'nothing is published on the host network');
  assert.deepEqual(o.ExposedPorts, {});
  assert.deepEqual(hardening(r.spec.resources, { capAdd: ['ALL'] }).CapDrop, []);
  const p = hardening(r.spec.resources, { privileged: true });
  assert.deepEqual([p.Privileged, p.CapDrop, p.SecurityOpt], [true, [], []]);
  assert.deepEqual(hardening(r.spec.resources).CapDrop, CAP_DROP);
});

test('a container\'s memoryMiB wins over the app\'s; containers of a group on the host network reach each other by name on localhost', () => {
  const r = runSpec({ name: 'a', resources: { memoryMiB: 256 }, containers: [
    { name: 'web', image: 'w', memoryMiB: 64 }, { name: 'db', image: 'd' },
  ] });
  const [web, db] = containersOf(r.spec);
  const at = { ...place, hostNetwork: true, group: ['db', 'web'], shorthand: false };
  const o = containerOptions(r, web!, at);
  assert.equal(o.HostConfig!.Memory, 64 * 1024 * 1024);
  assert.equal(containerOptions(r, db!, at).HostConfig!.Memory, 256 * 1024 * 1024);
  assert.deepEqual(o.HostConfig!.ExtraHosts, ['db:127.0.0.1']);
  assert.equal(o.NetworkingConfig, undefined);
  // on the engine's bridge, only the containers that share the node's network are on its localhost
  const mixed = runSpec({ name: 'a', containers: [
    { name: 'probe', image: 'p', networkMode: 'host' }, { name: 'agent', image: 'g', networkMode: 'host' }, { name: 'db', image: 'd' },
  ] });
  const [probe] = containersOf(mixed.spec);
  assert.deepEqual(containerOptions(mixed, probe!, { ...at, hostNetwork: false, network: 'outpost-a-0-1', group: ['probe', 'agent', 'db'] }).HostConfig!.ExtraHosts, ['agent:127.0.0.1']);
});

test('aliases are more DNS names on the replica network; on the host network they are the other containers\' localhost names; hostname is the container\'s', () => {
  const r = runSpec({ name: 'a', containers: [
    { name: 'web', image: 'w', hostname: 'edgex-web' }, { name: 'db', image: 'd', aliases: ['edgex-redis', 'redis'] },
  ] });
  const [web, db] = containersOf(r.spec);
  const at = { ...place, network: 'outpost-a-0-1', group: ['db', 'web'], shorthand: false };
  assert.deepEqual(containerOptions(r, db!, at).NetworkingConfig, { EndpointsConfig: { 'outpost-a-0-1': { Aliases: ['db', 'edgex-redis', 'redis'] } } });
  const o = containerOptions(r, web!, at);
  assert.equal(o.Hostname, 'edgex-web');
  assert.equal(containerOptions(r, db!, at).Hostname, undefined, 'the engine\'s own host name by default');
  const host = { ...at, hostNetwork: true, network: null };
  assert.deepEqual(containerOptions(r, web!, host).HostConfig!.ExtraHosts, ['db:127.0.0.1', 'edgex-redis:127.0.0.1', 'redis:127.0.0.1']);
  assert.deepEqual(containerOptions(r, db!, host).HostConfig!.ExtraHosts, ['web:127.0.0.1'], 'not its own names');
});
