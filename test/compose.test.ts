// Compose files into Outpost apps: every fixture of test/compose (the shapes of
// real edge stacks) converts, or names exactly what it cannot map with its
// path and line; bad input is refused with a stable code; the CLI's convert
// and deploy -f read them; configs' file: is read at deploy time; build:
// builds through the real engine and pushes to the real registry.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { OutpostError } from '../src/core/errors.js';
import { validateApp } from '../src/core/manifest.js';
import { loadCompose } from '../src/compose/load.js';
import type { Conversion } from '../src/compose/convert.js';
import { interpolate } from '../src/compose/interpolate.js';
import { parseDotenv } from '../src/compose/dotenv.js';
import { parseBytes, parseDuration, splitWords } from '../src/compose/values.js';
import { isComposeText } from '../src/compose/detect.js';
import { withConfigFiles } from '../src/cli/commands/configfiles.js';
import { buildAndPush } from '../src/compose/build.js';
import { engineOrSkip } from './engine.js';
import { ROOT, cli, cliEnv, controlPlane, tmpDir } from './helpers.js';

const FIXTURES = path.join(ROOT, 'test/compose');
const fixture = (name: string) => path.join(FIXTURES, name, 'docker-compose.yml');
/** converted with no shell variables, so what the machine's environment holds does not matter */
const convert = (file: string, o: { env?: Record<string, string>; name?: string; envFile?: string } = {}) => loadCompose({ file, env: o.env ?? {}, name: o.name, envFile: o.envFile });

type Container = { name: string; image: string; env?: Record<string, string>; volumes?: Record<string, unknown>[]; ports?: { name: string; container: number; protocol?: string }[]; [k: string]: unknown };
const containers = (c: Conversion) => c.app.containers as Container[];
const byName = (c: Conversion, n: string) => containers(c).find((x) => x.name === n)!;

function refusal(fn: () => unknown): OutpostError {
  try {
    fn();
  } catch (e) {
    if (e instanceof OutpostError) return e;
    throw e;
  }
  assert.fail('expected an OutpostError');
}

const details = (e: OutpostError) => e.details as { path: string; line: number | null; code: string; message: string }[];

/** A Compose file written to a fresh directory (with files beside it). */
function composeFile(text: string, files: Record<string, string> = {}, dirName = 'stack'): string {
  const dir = path.join(tmpDir('outpost-compose-'), dirName);
  fs.mkdirSync(dir, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  fs.writeFileSync(path.join(dir, 'docker-compose.yml'), text);
  return path.join(dir, 'docker-compose.yml');
}

describe('the fixtures', () => {
  test('there are at least 10, each a Compose file', () => {
    const names = fs.readdirSync(FIXTURES).filter((d) => fs.existsSync(fixture(d)));
    assert.ok(names.length >= 10, names.join(', '));
    for (const n of names) assert.ok(isComposeText(fs.readFileSync(fixture(n), 'utf8')), n);
    assert.ok(isComposeText('{"services": {"a": {"image": "x"}}}'), 'JSON is YAML too');
    assert.ok(!isComposeText('name: web\nimage: x:1\nenv:\n  services: "a"\n') && !isComposeText('{"name": "web", "env": {"services": "a"}}'), 'an Outpost manifest');
  });

  test('every fixture converts to a valid manifest, or names exactly what it cannot map', () => {
    const refused: Record<string, string[]> = {
      'balena-kiosk': ['services.browser.labels.io.balena.features.supervisor-api', 'services.browser.labels.io.balena.features.balena-api'],
    };
    for (const name of fs.readdirSync(FIXTURES).filter((d) => fs.existsSync(fixture(d)))) {
      if (refused[name]) {
        const e = refusal(() => convert(fixture(name)));
        assert.equal(e.code, 'E_COMPOSE_UNSUPPORTED', name);
        assert.deepEqual(details(e).map((d) => d.path), refused[name], name);
        assert.ok(details(e).every((d) => typeof d.line === 'number'), `${name}: every problem has its line`);
        continue;
      }
      const c = convert(fixture(name));
      const spec = validateApp(c.app);
      const services = Object.keys((YAML.parse(fs.readFileSync(fixture(name), 'utf8')) as { services: object }).services);
      assert.deepEqual(spec.containers!.map((x) => x.name), services, `${name}: one container per service, in order`);
      for (const n of c.notes) assert.equal(typeof n.line, 'number', `${name}: ${n.path} has a line`);
    }
  });

  test('EdgeX: one network is the app\'s; loopback-only ports are not published; container_name is an alias, hostname the container\'s', () => {
    const c = convert(fixture('edgex'));
    assert.equal(c.app.name, 'edgex');
    assert.equal(containers(c).length, 9);
    const ports = containers(c).flatMap((x) => x.ports ?? []);
    assert.deepEqual(ports, [{ name: 'ui-4000', container: 4000 }], 'only the UI is published beyond the host');
    assert.deepEqual(c.notes.filter((n) => n.kind === 'dropped'), [], 'every field maps');
    assert.deepEqual([byName(c, 'database').aliases, byName(c, 'database').hostname], [['edgex-redis'], 'edgex-redis']);
    assert.deepEqual(byName(c, 'core-data').aliases, ['edgex-core-data']);
    const named = c.notes.find((n) => n.path === 'services.database.container_name')!;
    assert.equal(named.kind, 'changed');
    assert.match(named.message, /reach this one as "edgex-redis" .* and as "database"/);
    assert.equal(byName(c, 'core-common-config-bootstrapper').env!.ALL_SERVICES_DATABASE_HOST, 'edgex-redis', 'the name its environment uses is an alias');
    assert.equal(byName(c, 'core-data').readOnlyRootfs, true);
    assert.equal(byName(c, 'core-data').user, '2002:2001');
    assert.deepEqual(byName(c, 'database').volumes, [{ path: '/data', volume: 'db-data' }, { path: '/run', tmpfs: 64 }]);
    assert.ok(c.notes.some((n) => n.path === 'networks' && /edgex-network/.test(n.message)));
    const db = c.notes.find((n) => n.path === 'services.database.ports[0]')!;
    assert.equal(db.line, 41);
  });

  test('IOTstack: a file beside the Compose file becomes a config; directories become named volumes', () => {
    const c = convert(fixture('iotstack'));
    const mq = byName(c, 'mosquitto');
    assert.deepEqual(mq.volumes![0], { path: '/mosquitto/config/mosquitto.conf', config: 'mosquitto.conf', readOnly: true });
    assert.match((c.app.configs as Record<string, { content: string }>)['mosquitto.conf']!.content, /^listener 1883$/m);
    assert.deepEqual(mq.volumes![1], { path: '/mosquitto/data', volume: 'volumes-mosquitto-data' });
    assert.deepEqual(mq.env, { TZ: 'Etc/UTC' });
    assert.deepEqual(byName(c, 'nodered').devices, ['/dev/ttyAMA0:/dev/ttyAMA0', '/dev/gpiomem:/dev/gpiomem']);
    assert.equal(byName(c, 'nodered').user, '0');
    assert.deepEqual(c.app.restart, { policy: 'always' });
    const h = byName(c, 'influxdb').health as Record<string, unknown>;
    assert.deepEqual(h, { exec: ['curl', 'http://localhost:8086'], intervalMs: 30_000, timeoutMs: 10_000, startPeriodMs: 30_000, startTimeoutMs: 130_000 });
    assert.ok(c.notes.some((n) => n.path === 'networks.nextcloud' && n.kind === 'ignored'), 'an unused network is named, not refused');
  });

  test('balena: feature labels become host mounts; build: services are listed for deploy to build', () => {
    const c = convert(fixture('balena'));
    assert.deepEqual(c.builds.map((b) => [b.service, path.relative(FIXTURES, b.context), b.dockerfile, b.args]), [
      ['sensor', 'balena/sensor', 'Dockerfile', {}],
      ['dashboard', 'balena/dashboard', 'Dockerfile', { NODE_VERSION: '20' }],
    ]);
    assert.equal(byName(c, 'sensor').image, 'localhost/balena-sensor:latest', 'a placeholder until deploy builds it');
    assert.deepEqual(byName(c, 'sensor').volumes, [
      { path: '/data', volume: 'sensor-data' },
      { path: '/lib/modules', hostPath: '/lib/modules', readOnly: true },
      { path: '/lib/firmware', hostPath: '/lib/firmware' },
    ]);
    assert.equal(byName(c, 'sensor').privileged, true);
    assert.deepEqual(byName(c, 'sensor').capAdd, ['SYS_RAWIO']);
    assert.deepEqual(byName(c, 'connectivity').volumes, [{ path: '/host/run/dbus', hostPath: '/run/dbus' }]);
    assert.equal(byName(c, 'connectivity').networkMode, 'host');
    assert.equal(byName(c, 'sensor').env!.READ_INTERVAL_MS, '1000');
  });

  test('Node-RED + InfluxDB + Grafana + Mosquitto: configs from files, secrets by name, start order by health', () => {
    const c = convert(fixture('nodered-influx-grafana'));
    assert.deepEqual(Object.keys(c.app.configs as object), ['mosquitto-conf', 'grafana-datasources']);
    assert.deepEqual(c.app.secrets, [
      { name: 'influxdb-admin-password', file: '/run/secrets/influxdb-admin-password' },
      { name: 'influxdb-admin-token', file: '/run/secrets/influxdb-admin-token' },
    ]);
    assert.deepEqual(byName(c, 'nodered').dependsOn, { mosquitto: 'healthy', influxdb: 'healthy' });
    assert.deepEqual((byName(c, 'mosquitto').health as { exec: string[] }).exec, ['/bin/sh', '-c', 'mosquitto_sub -t \'$SYS/#\' -C 1 -i healthcheck -W 3'], '$$ is a literal $');
    assert.equal(byName(c, 'influxdb').memoryMiB, 512);
    assert.deepEqual(c.app.resources, { cpu: 0.4, memoryMiB: 512 + 3 * 256 });
    assert.ok(c.notes.some((n) => n.path === 'secrets.influxdb-admin-token' && /outpost secret set influxdb-admin-token --from-file .*influxdb-admin-token\.txt/.test(n.message)));
  });

  test('camera: devices, shm_size as a tmpfs at /dev/shm, a tmpfs size in bytes, and CPU caps summed', () => {
    const c = convert(fixture('camera'));
    const nvr = byName(c, 'nvr');
    assert.deepEqual(nvr.devices, ['/dev/video0:/dev/video0', '/dev/bus/usb:/dev/bus/usb', '/dev/dri/renderD128']);
    assert.deepEqual(nvr.volumes!.filter((v) => v.tmpfs), [{ path: '/tmp/cache', tmpfs: 954 }, { path: '/dev/shm', tmpfs: 128 }]);
    assert.deepEqual(nvr.ports!.map((p) => `${p.container}/${p.protocol ?? 'tcp'}`), ['5000/tcp', '8554/tcp', '8555/tcp', '8555/udp']);
    assert.equal(nvr.memoryMiB, 2048);
    assert.deepEqual(c.app.resources, { cpu: 2.25, memoryMiB: 2048 + 64, cpuLimit: 2.25 });
    assert.equal(nvr.env!.FRIGATE_RTSP_PASSWORD, 'change-me');
    assert.equal(byName(convert(fixture('camera'), { env: { FRIGATE_RTSP_PASSWORD: 's3cret' } }), 'nvr').env!.FRIGATE_RTSP_PASSWORD, 's3cret');
  });

  test('Home Assistant: every service on the host network, privileged where asked', () => {
    const c = convert(fixture('homeassistant'));
    assert.ok(containers(c).every((x) => x.networkMode === 'host'));
    assert.equal(byName(c, 'homeassistant').privileged, true);
    assert.deepEqual(byName(c, 'zigbee2mqtt').devices, ['/dev/ttyUSB0:/dev/ttyACM0']);
    assert.deepEqual(byName(c, 'mosquitto').command, ['mosquitto', '-c', '/mosquitto-no-auth.conf']);
  });

  test('build: context, Dockerfile, target and args are kept for deploy; the image: names the build', () => {
    const c = convert(fixture('build'));
    assert.equal(c.builds.length, 1);
    const b = c.builds[0]!;
    assert.deepEqual({ ...b, context: path.relative(FIXTURES, b.context) }, {
      service: 'collector', context: 'build/collector', dockerfile: 'Dockerfile', args: { MODBUS_LIB_VERSION: '3.1.10' },
      labels: { 'org.opencontainers.image.source': 'https://example.com/plant/collector' }, target: 'runtime', noCache: false, pull: false, image: 'plant/collector:1.4',
    });
    assert.equal(byName(c, 'collector').image, 'localhost/plant/collector:latest');
    assert.deepEqual(c.app.restart, { policy: 'always', maxRetries: 5 }, 'on-failure:5 and always: the app takes always, and the limit for the whole replica');
    const limit = c.notes.find((n) => n.path === 'services.collector.restart' && /at most 5 restarts in a row/.test(n.message))!;
    assert.equal(limit.kind, 'changed');
    assert.match(limit.message, /starts over once the replica has stayed up 60 s/);
    assert.ok(c.notes.some((n) => n.path === 'services.buffer.restart' && n.kind === 'changed' && /the app's, 5 restarts in a row \(from collector\)/.test(n.message)));
    assert.deepEqual(byName(c, 'buffer').command, ['redis-server', '--appendonly', 'yes', '--maxmemory', '64mb'], 'a command string split into words');
  });

  test('anchors, aliases, merge keys and x- keys', () => {
    const c = convert(fixture('anchors'));
    assert.deepEqual(byName(c, 'gateway').env, { TZ: 'UTC', LOG_LEVEL: 'info', SITE_ID: 'site-0', UPSTREAM: 'http://aggregator:9000' });
    assert.deepEqual(byName(c, 'aggregator').env, { TZ: 'UTC', LOG_LEVEL: 'debug', SITE_ID: 'site-0' }, 'an explicit key wins over the merged one');
    assert.equal(byName(c, 'aggregator').memoryMiB, 256);
    assert.equal(byName(c, 'exporter').memoryMiB, 128);
    assert.deepEqual(byName(c, 'gateway').health, { exec: ['wget', '-q', '-O-', 'http://localhost:8443/healthz'], intervalMs: 15_000, timeoutMs: 3000, startTimeoutMs: 63_000, failureThreshold: 4 });
    // a note about a merged field names the line where it is written
    const logging = c.notes.find((n) => n.path === 'services.exporter.logging')!;
    assert.equal(logging.line, 15);
  });

  test('substitution: the shell, then .env; defaults, $$, env_file; a shell variable wins over .env', () => {
    const c = convert(fixture('envsubst'));
    assert.equal(c.app.name, 'plant-telemetry');
    const ingest = byName(c, 'ingest');
    assert.equal(ingest.image, 'registry.example.com/plant/ingest:1.7.2');
    assert.deepEqual(ingest.env, {
      INGEST_WORKERS: '4', INGEST_LABEL: 'line 3 ingest', INGEST_RETRY: 'yes',
      MQTT_URL: 'mqtt://broker:1884', DB_HOST: 'db', SITE: 'line-3', PRICE_FORMAT: '$0.00', EMPTY_DEFAULT: 'fallback', EMPTY_KEPT: '',
    });
    assert.deepEqual(ingest.command, ['ingest', '--batch', '100']);
    const shell = convert(fixture('envsubst'), { env: { SITE: 'line-9', STACK_NAME: 'other' } });
    assert.equal(byName(shell, 'ingest').env!.SITE, 'line-9');
    assert.equal(shell.app.name, 'other');
    assert.equal(convert(fixture('envsubst'), { name: 'given' }).app.name, 'given', '--name wins');
    // --env-file replaces the .env beside the file: then SITE is missing
    const other = path.join(tmpDir(), 'other.env');
    fs.writeFileSync(other, 'REGISTRY=r.example\n');
    const e = refusal(() => convert(fixture('envsubst'), { envFile: other }));
    assert.equal(e.code, 'E_INVALID');
    assert.deepEqual(details(e).map((d) => [d.path, d.line]), [['services.ingest.environment.SITE', 11]]);
    assert.match(e.message, /envsubst\/docker-compose\.yml:11: services\.ingest\.environment\.SITE: required variable SITE is not set: set SITE in \.env or the shell/);
  });

  test('healthchecks: CMD, CMD-SHELL, NONE, durations; start order by condition', () => {
    const c = convert(fixture('healthchecks'));
    assert.deepEqual((byName(c, 'db').health as { exec: string[] }).exec, ['/bin/sh', '-c', 'pg_isready -U postgres -d plant']);
    assert.equal((byName(c, 'api').health as { intervalMs: number }).intervalMs, 90_000);
    assert.equal(byName(c, 'worker').health, undefined, 'test: [NONE] disables it');
    assert.deepEqual(byName(c, 'worker').dependsOn, { api: 'healthy', db: 'healthy' });
    assert.deepEqual(byName(c, 'migrate').dependsOn, { db: 'started' });
    assert.deepEqual(c.app.restart, { policy: 'on-failure' });
    const restart = c.notes.find((n) => n.path === 'services.api.depends_on.db.restart')!;
    assert.equal(restart.kind, 'changed');
    assert.match(restart.message, /honoured, as always in Outpost: when db stops or is updated, the whole replica/);
  });
});

describe('bad input: a stable code, the Compose path and line, nothing converted', () => {
  const refused = (text: string, files: Record<string, string> = {}) => refusal(() => convert(composeFile(text, files)));

  test('unknown keys, at the top, in a service and in a port', () => {
    const e = refused('services:\n  web:\n    image: nginx\n    imagee: nginx\n    ports:\n      - target: 80\n        publishd: 8080\nvolume:\n  x: {}\n');
    assert.equal(e.code, 'E_INVALID');
    assert.deepEqual(details(e).map((d) => [d.path, d.line]), [['services.web.imagee', 4], ['services.web.ports[0].publishd', 7], ['volume', 8]]);
    assert.match(e.message, /docker-compose\.yml:4: services\.web\.imagee: unknown field "imagee"/);
  });

  test('unsupported features, each with its path and line, every one listed', () => {
    const e = refused([
      'services:', '  a:', '    image: x', '    ipc: host', '    pid: host', '  b:', '    extends: { service: a }', '    image: y',
      '    network_mode: "service:a"', '    profiles: [debug]', '    depends_on:', '      a: { condition: service_completed_successfully }', '',
    ].join('\n'));
    assert.equal(e.code, 'E_COMPOSE_UNSUPPORTED');
    assert.deepEqual(details(e).map((d) => [d.path, d.line]), [
      ['services.a.ipc', 4], ['services.a.pid', 5], ['services.b.extends', 7], ['services.b.network_mode', 9], ['services.b.profiles', 10], ['services.b.depends_on.a.condition', 12],
    ]);
    assert.equal(e.path, 'services.a.ipc');
    assert.match(e.message, /^6 fields of .*docker-compose\.yml cannot be deployed:\n {2}.*docker-compose\.yml:4: services\.a\.ipc: `ipc` is not supported/);
  });

  test('services on two networks, and a network Outpost cannot give', () => {
    const e = refused('services:\n  a:\n    image: x\n    networks: [front]\n  b:\n    image: y\n    networks: [back]\nnetworks:\n  front: {}\n  back:\n    driver: macvlan\n');
    assert.equal(e.code, 'E_COMPOSE_UNSUPPORTED');
    assert.deepEqual(details(e).map((d) => [d.path, d.line]), [['networks', 8], ['networks.back.driver', 11]]);
  });

  test('a cycle in depends_on', () => {
    const e = refused('services:\n  a:\n    image: x\n    depends_on: [c]\n  b:\n    image: x\n    depends_on: [a]\n  c:\n    image: x\n    depends_on:\n      b: { condition: service_started }\n');
    assert.equal(e.code, 'E_INVALID');
    assert.deepEqual(details(e).map((d) => [d.path, d.line]), [['services.a.depends_on', 4]]);
    assert.match(e.message, /depends_on has a cycle: a -> c -> b -> a/);
  });

  test('depends_on a missing service, or on health a service does not check', () => {
    const e = refused('services:\n  a:\n    image: x\n    depends_on:\n      b: { condition: service_healthy }\n      ghost: { condition: service_started }\n  b:\n    image: x\n');
    assert.deepEqual(details(e).map((d) => [d.path, d.line]), [['services.a.depends_on.b', 5], ['services.a.depends_on.ghost', 6]]);
    assert.match(details(e)[0]!.message, /"b" has no healthcheck test/);
  });

  test('two services publishing the same host port', () => {
    const e = refused('services:\n  a:\n    image: x\n    ports: ["8080:80"]\n  b:\n    image: y\n    ports:\n      - "9000:9000"\n      - published: 8080\n        target: 81\n');
    assert.equal(e.code, 'E_INVALID');
    assert.deepEqual(details(e).map((d) => [d.path, d.line, d.message]), [['services.b.ports[1]', 9, 'host port 8080/tcp is also published by service "a"']]);
  });

  test('invalid names: a volume, a config, a service, an undeclared volume', () => {
    const e = refused('services:\n  my_api:\n    image: x\n  web:\n    image: x\n    volumes: [ "cache:/cache" ]\nvolumes:\n  Data Vol: {}\nconfigs:\n  App_Conf:\n    content: x\n');
    assert.equal(e.code, 'E_INVALID');
    assert.deepEqual(details(e).map((d) => [d.path, d.line]), [['services.my_api', 2], ['services.web.volumes[0]', 6], ['volumes.Data Vol', 8], ['configs.App_Conf', 10]]);
    assert.match(details(e)[2]!.message, /"Data Vol" is not a valid volume name/);
  });

  test('${VAR:?error} and ${VAR?error}, and a bad ${...}', () => {
    const e = refused('services:\n  a:\n    image: ${IMG:?give IMG}\n    environment:\n      X: ${X?}\n      Y: ${Y:x}\n');
    assert.equal(e.code, 'E_INVALID');
    assert.deepEqual(details(e).map((d) => [d.path, d.line]), [['services.a.image', 3], ['services.a.environment.X', 5], ['services.a.environment.Y', 6]]);
    assert.match(details(e)[0]!.message, /required variable IMG is not set: give IMG/);
  });

  test('bad values: a duration, a size, a port, a device, a restart policy, a config too large', () => {
    const e = refused([
      'services:', '  a:', '    image: x', '    mem_limit: lots', '    ports: ["70000:80"]', '    devices: ["/srv/ttyUSB0"]', '    restart: sometimes',
      '    healthcheck:', '      test: ["CMD", "true"]', '      interval: 10', '    configs: [big]', 'configs:', '  big:', '    file: ./big.txt', '',
    ].join('\n'), { 'big.txt': 'x'.repeat(70_000) });
    assert.equal(e.code, 'E_INVALID');
    assert.deepEqual(details(e).map((d) => d.path), [
      'services.a.mem_limit', 'services.a.ports[0]', 'services.a.devices[0]', 'services.a.restart', 'services.a.healthcheck.interval', 'configs.big',
    ]);
  });

  test('aliases: one name reaches one service; an alias that is another service\'s name, or not a DNS label, is refused where it is written', () => {
    const e = refused([
      'services:', '  a:', '    image: x', '    container_name: b', '  b:', '    image: y', '    networks:', '      default:', '        aliases: [shared, Bad_Name]',
      '  c:', '    image: z', '    links: ["a:shared"]', '',
    ].join('\n'));
    assert.deepEqual(details(e).map((d) => [d.path, d.line, d.code]), [
      ['services.a.container_name', 4, 'E_INVALID'], ['services.b.networks.default.aliases[1]', 9, 'E_COMPOSE_UNSUPPORTED'], ['services.c.links[0]', 12, 'E_COMPOSE_UNSUPPORTED'],
    ]);
    assert.match(details(e)[0]!.message, /"b" is the name of the service b: it cannot also reach a/);
    assert.match(details(e)[2]!.message, /"shared" reaches b elsewhere in the file/);
  });

  test('a YAML error names its line; a file without services is refused', () => {
    const e = refused('services:\n  a:\n    image: [x\n');
    assert.equal(e.code, 'E_BAD_YAML');
    assert.match(e.message, /not valid YAML \(line \d+, column \d+\)/);
    const none = refused('services: {}\n');
    assert.equal(none.path, 'services');
  });

  test('a bind mount of a node path is the node\'s to allow; a home-relative one is refused', () => {
    const c = convert(composeFile('services:\n  a:\n    image: x\n    volumes: ["/srv/data:/data:ro"]\n'));
    assert.deepEqual(byName(c, 'a').volumes, [{ path: '/data', hostPath: '/srv/data', readOnly: true }]);
    const e = refused('services:\n  a:\n    image: x\n    volumes: ["~/data:/data"]\n');
    assert.equal(e.code, 'E_COMPOSE_UNSUPPORTED');
    assert.equal(e.path, 'services.a.volumes[0]');
  });

  test('x-outpost: Outpost\'s own fields over the conversion, and nothing else', () => {
    const c = convert(composeFile('services:\n  a:\n    image: x\nx-outpost:\n  replicas: 3\n  placement: { constraints: { zone: north } }\n  resources: { cpu: 1 }\n  update: { maxSurge: 0, maxUnavailable: 1 }\n'));
    assert.equal(c.app.replicas, 3);
    assert.deepEqual(c.app.placement, { constraints: { zone: 'north' } });
    assert.deepEqual(c.app.resources, { cpu: 1, memoryMiB: 256 }, 'resources merge key by key');
    const e = refused('services:\n  a:\n    image: x\nx-outpost:\n  image: y\n');
    assert.deepEqual(details(e).map((d) => [d.path, d.line]), [['x-outpost.image', 5]]);
    const bad = refusal(() => convert(composeFile('services:\n  a:\n    image: x\nx-outpost:\n  replicas: -1\n')));
    assert.equal(bad.code, 'E_INVALID');
    assert.match(bad.message, /docker-compose\.yml:5: x-outpost\.replicas: the converted manifest is not valid: replicas/);
  });

  test('container_name, network aliases and link aliases are aliases of the service they name; hostname is the container\'s', () => {
    const c = convert(composeFile([
      'services:', '  broker:', '    image: x', '    container_name: mqtt', '    hostname: broker.plant.local', '    networks:', '      plant:', '        aliases: [mosquitto, broker]',
      '  db:', '    image: y', '    container_name: db', '    networks: [plant]', '  app:', '    image: z', '    networks: [plant]', '    links: ["db:database", "broker"]',
      'networks:', '  plant: {}', '',
    ].join('\n')));
    assert.deepEqual(byName(c, 'broker').aliases, ['mosquitto', 'mqtt'], 'its own service name is no alias');
    assert.equal(byName(c, 'broker').hostname, 'broker.plant.local');
    assert.deepEqual(byName(c, 'db').aliases, ['database'], 'a link alias is the linked service\'s');
    assert.equal(byName(c, 'app').aliases, undefined);
    assert.deepEqual(byName(c, 'app').dependsOn, { db: 'started', broker: 'started' });
    assert.equal(c.notes.find((n) => n.path === 'services.db.container_name')!.kind, 'ignored');
    assert.match(c.notes.find((n) => n.path === 'services.app.links[0]')!.message, /"database" reaches db from every container of the app/);
    validateApp(c.app);
  });

  test('restart limits: on-failure:N and max_attempts, the smallest for the app; 0 is none; nothing to limit under none', () => {
    const c = convert(composeFile([
      'services:', '  a:', '    image: x', '    restart: on-failure:7', '  b:', '    image: y', '    deploy:', '      restart_policy: { condition: on-failure, max_attempts: 3, window: 2m }',
      '  c:', '    image: z', '    restart: on-failure:0', '',
    ].join('\n')));
    assert.deepEqual(c.app.restart, { policy: 'on-failure', maxRetries: 3 });
    assert.match(c.notes.find((n) => n.path === 'services.a.restart')!.message, /the app's limit is 3 restarts in a row, the smallest a service gives \(b\)/);
    assert.equal(c.notes.find((n) => n.path === 'services.b.deploy.restart_policy.window')!.kind, 'dropped');
    assert.match(c.notes.find((n) => n.path === 'services.c.restart')!.message, /no restart limit here: the app's, 3 restarts in a row \(from b\)/);
    const none = convert(composeFile('services:\n  a:\n    image: x\n    deploy:\n      restart_policy: { condition: none, max_attempts: 2 }\n'));
    assert.deepEqual(none.app.restart, { policy: 'never' });
    assert.equal(none.notes.find((n) => n.path === 'services.a.deploy.restart_policy.max_attempts')!.kind, 'ignored');
    assert.deepEqual(convert(composeFile('services:\n  a:\n    image: x\n    restart: on-failure:0\n')).app.restart, { policy: 'on-failure' });
    assert.equal(refused('services:\n  a:\n    image: x\n    restart: on-failure:5000\n').path, 'services.a.restart');
  });

  test('restart: no unquoted (YAML 1.1 false) and quoted both read as never; the app name comes from the directory', () => {
    for (const v of ['no', '"no"', 'false']) {
      const c = convert(composeFile(`services:\n  a:\n    image: x\n    restart: ${v}\n`, {}, 'My_Edge Stack'));
      assert.deepEqual(c.app.restart, { policy: 'never' }, v);
      assert.equal(c.app.name, 'my-edge-stack');
    }
  });
});

describe('the parts', () => {
  test('substitution', () => {
    const env: Record<string, string> = { A: 'a', EMPTY: '' };
    const s = (x: string) => interpolate(x, (n) => env[n]).value;
    assert.equal(s('$A ${A} $$A $$ $1 ${A}b'), 'a a $A $ $1 ab');
    assert.equal(s('${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET:-${A}-x}'), 'd  d a-x');
    assert.equal(s('${A:+alt} ${EMPTY:+alt} ${EMPTY+alt} ${UNSET+alt}'), 'alt  alt ');
    assert.deepEqual(interpolate('${UNSET} $UNSET2', () => undefined).unset, ['UNSET', 'UNSET2']);
    assert.throws(() => s('${EMPTY:?must be set}'), /required variable EMPTY is empty: must be set/);
    assert.equal(s('${EMPTY?must be set}'), '', '? refuses only an unset one');
    assert.throws(() => s('${A'), /without its closing/);
  });

  test('.env files', () => {
    const env = parseDotenv('# c\nA=1\nexport B = two words # comment\nC="x\\ny ${A}"\nD=\'${A} raw\'\nE="multi\nline"\nF=${A}${NOPE:-z}\n', (n) => (n === 'NOPE' ? undefined : undefined));
    assert.deepEqual(env, { A: '1', B: 'two words', C: 'x\ny 1', D: '${A} raw', E: 'multi\nline', F: '1z' });
    assert.throws(() => parseDotenv('A=1\nnot a line\n'), (e: Error & { line?: number }) => e.line === 2);
  });

  test('command words, durations and sizes as Compose reads them', () => {
    assert.deepEqual(splitWords(`sh -c 'echo "hi there"' a\\ b "c d" ''`), { ok: true, value: ['sh', '-c', 'echo "hi there"', 'a b', 'c d', ''] });
    assert.equal(splitWords('unclosed "x').ok, false);
    assert.deepEqual([parseDuration('1m30s'), parseDuration('1.5s'), parseDuration('250ms'), parseDuration('1h')].map((r) => r.ok && r.value), [90_000, 1500, 250, 3_600_000]);
    assert.equal(parseDuration('10').ok, false);
    assert.deepEqual([parseBytes('512m'), parseBytes('1g'), parseBytes('1.5GB'), parseBytes(1048576), parseBytes('64k')].map((r) => r.ok && r.value), [512 * 1048576, 1073741824, 1610612736, 1048576, 65536]);
  });

  test('port forms: ranges, udp, an IP, the long form', () => {
    const c = convert(composeFile('services:\n  a:\n    image: x\n    ports:\n      - 3000\n      - "9000-9002:8000-8002"\n      - "0.0.0.0:5353:53/udp"\n      - target: 443\n        published: 8443\n        name: https\n'));
    assert.deepEqual(byName(c, 'a').ports, [
      { name: 'a-3000', container: 3000 }, { name: 'a-8000', container: 8000 }, { name: 'a-8001', container: 8001 }, { name: 'a-8002', container: 8002 },
      { name: 'a-53-udp', container: 53, protocol: 'udp' }, { name: 'https', container: 443 },
    ]);
  });

  test('configs\' file: in an Outpost manifest is read relative to it; a missing one is E_INVALID at configs.<name>.file', () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'conf'));
    fs.writeFileSync(path.join(dir, 'conf', 'app.ini'), '[main]\nlevel = 3\n');
    const file = path.join(dir, 'app.yaml');
    const text = 'name: web\nimage: x:1\nconfigs:\n  ini: { file: conf/app.ini }\n  inline: { content: "x" }\nvolumes:\n  - { config: ini, path: /etc/app.ini }\n';
    const out = withConfigFiles(text, file) as { configs: Record<string, unknown> };
    assert.deepEqual(out.configs, { ini: { content: '[main]\nlevel = 3\n' }, inline: { content: 'x' } });
    validateApp(out);
    assert.equal(withConfigFiles('name: web\nimage: x:1\nconfigs:\n  a: { content: "file" }\n', file), null, 'nothing to read: the text goes as it is');
    const e = refusal(() => withConfigFiles('name: web\nimage: x:1\nconfigs:\n  ini: { file: missing.ini }\n', file));
    assert.equal(e.code, 'E_INVALID');
    assert.equal(e.path, 'configs.ini.file');
    assert.match(e.message, /configs\.ini\.file: cannot read missing\.ini .*ENOENT/);
  });
});

describe('the CLI', () => {
  let cp: Awaited<ReturnType<typeof controlPlane>> | undefined;
  after(() => cp?.close());

  test('outpost convert prints the manifest (YAML with its notes as comments, or JSON), and refuses with the line', async () => {
    const y = await cli(['convert', '-f', fixture('iotstack')], { TZ: '' });
    assert.equal(y.code, 0, y.stderr);
    assert.match(y.stdout, /^# converted from .*iotstack\/docker-compose\.yml by outpost convert\n(# .*docker-compose\.yml:\d+: .*\n)+name: iotstack\n/);
    validateApp(YAML.parse(y.stdout));
    assert.match(y.stderr, /^note .*docker-compose\.yml:\d+: services\.mosquitto\.ports\[0\]: changed: host port 1883/m, 'piped: the notes also go to stderr');
    const j = await cli(['convert', '-f', fixture('homeassistant'), '--json', '--name', 'ha']);
    assert.equal(j.code, 0, j.stderr);
    assert.equal(JSON.parse(j.stdout).name, 'ha');
    const bad = await cli(['convert', '-f', fixture('balena-kiosk')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error E_COMPOSE_UNSUPPORTED: 2 fields of .*balena-kiosk\/docker-compose\.yml cannot be deployed:\n {2}.*docker-compose\.yml:15: services\.browser\.labels\.io\.balena\.features\.supervisor-api: /);
    assert.equal(bad.stdout, '');
  });

  test('outpost deploy -f takes a Compose file (converted, then sent) and an Outpost manifest with configs from files', async () => {
    cp = await controlPlane();
    const env = cliEnv(cp);
    // no node has joined: the control plane validated the converted app and could not place it
    const r = await cli(['deploy', '-f', fixture('healthchecks')], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /note .*healthchecks\/docker-compose\.yml:\d+: services\.api\.ports\[0\]: changed/);
    assert.match(r.stderr, /error E_UNSCHEDULABLE: cannot place 1 replica\(s\) of healthchecks/);
    const refusedDeploy = await cli(['deploy', '-f', fixture('balena-kiosk')], env);
    assert.match(refusedDeploy.stderr, /^error E_COMPOSE_UNSUPPORTED/);
    const noRegistry = await cli(['deploy', '-f', fixture('build')], { ...env, OUTPOST_REGISTRY: '' });
    assert.equal(noRegistry.code, 2);
    assert.match(noRegistry.stderr, /error E_USAGE: services\.collector\.build: collector is built here and pulled by the nodes from a registry: give it with --registry/);
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'level.txt'), 'debug\n');
    const manifest = path.join(dir, 'app.yaml');
    fs.writeFileSync(manifest, 'name: conf\nimage: x:1\nconfigs:\n  level: { file: level.txt }\n  other: { file: nowhere.txt }\n');
    const missing = await cli(['deploy', '-f', manifest], env);
    assert.match(missing.stderr, /^error E_INVALID: invalid app manifest: configs\.other\.file: cannot read nowhere\.txt/);
    fs.writeFileSync(manifest, 'name: conf\nimage: x:1\nconfigs:\n  level: { file: level.txt }\n');
    const ok = await cli(['deploy', '-f', manifest], env);
    assert.match(ok.stderr, /^error E_UNSCHEDULABLE/, 'read, sent as content, valid: only the empty cluster stops it');
    const wrong = await cli(['deploy', '-f', manifest, '--name', 'x'], env);
    assert.match(wrong.stderr, /^error E_USAGE: --name: for Compose files only/);
  });

  test('outpost plan -f reads a file as deploy does: a Compose file converted (nothing built), configs\' files read', async () => {
    const noServer = { OUTPOST_SERVER: 'http://127.0.0.1:1', OUTPOST_TOKEN: 'x' };
    const snapshot = path.join(ROOT, 'examples/plan/snapshot.json');
    const compose = composeFile('services:\n  web:\n    image: 127.0.0.1:5000/sensor-stats:1.0\n    container_name: front\n  cache:\n    image: redis:7\n');
    const p = await cli(['plan', '-f', compose, '--snapshot', snapshot, '--name', 'shop', '--json'], noServer);
    assert.equal(p.code, 0, p.stderr);
    const plan = JSON.parse(p.stdout) as { app: string; placements: { node: string }[] };
    assert.deepEqual([plan.app, plan.placements.map((x) => x.node)], ['shop', ['edge-1']]);
    assert.match(p.stderr, /note .*docker-compose\.yml:4: services\.web\.container_name: changed: .*"front"/);
    // built by deploy only: planned with the conversion's image name, and refused by the node's policy, not for want of a registry
    const built = await cli(['plan', '-f', fixture('build'), '--snapshot', snapshot], { ...noServer, OUTPOST_REGISTRY: '' });
    assert.match(built.stderr, /^note: collector is built by deploy, not by plan/m);
    assert.match(built.stderr, /error E_UNSCHEDULABLE: .*edge-1: containers\[0\]\.devices\[0\]: device \/dev\/ttyUSB0 is not allowed/);
    const dir = tmpDir();
    const manifest = path.join(dir, 'app.yaml');
    fs.writeFileSync(manifest, 'name: conf\nimage: x:1\nconfigs:\n  level: { file: nowhere.txt }\n');
    const missing = await cli(['plan', '-f', manifest, '--snapshot', snapshot], noServer);
    assert.match(missing.stderr, /^error E_INVALID: invalid app manifest: configs\.level\.file: cannot read nowhere\.txt/);
    const wrong = await cli(['plan', '-f', manifest, '--snapshot', snapshot, '--env-file', manifest], noServer);
    assert.match(wrong.stderr, /^error E_USAGE: --env-file: for Compose files only/);
  });

  test('deploying an Outpost manifest with no config file loads no YAML parser and no converter', async () => {
    const dir = tmpDir();
    const manifest = path.join(dir, 'app.yaml');
    fs.writeFileSync(manifest, 'name: light\nimage: x:1\n');
    const trace = path.join(dir, 'trace.txt');
    await cli(['deploy', '-f', manifest], { OUTPOST_SERVER: 'http://127.0.0.1:1', OUTPOST_TOKEN: 'x', OUTPOST_IMPORT_TRACE: trace, NODE_OPTIONS: `--import ${path.join(ROOT, 'dist/test/import-trace.js')}` });
    const loaded = fs.readFileSync(trace, 'utf8').split('\n').filter(Boolean);
    assert.ok(loaded.some((u) => u.endsWith('/dist/src/cli/commands/deploy.js')));
    assert.deepEqual(loaded.filter((u) => /\/node_modules\/(yaml|zod|dockerode)\/|\/dist\/src\/compose\/(?!detect)/.test(u)), []);
  });
});

describe('build: through the engine, pushed to the registry', async () => {
  const { docker, skip } = await engineOrSkip();
  const registry = process.env.OUTPOST_TEST_REGISTRY ?? '127.0.0.1:5000';
  const reachable = await fetch(`http://${registry}/v2/`).then((r) => r.ok, () => false);
  const why = skip || (!reachable && `no registry answers at ${registry}`);
  if (why && !skip) console.log(`# compose build test skipped: ${why}`);

  test('a context with a Dockerfile FROM the local base is built, tagged by its image ID, pushed, and gives the same tag again', { skip: why }, async () => {
    const base = (await docker!.listImages()).flatMap((i) => i.RepoTags ?? []).find((t) => t.startsWith('localhost/outpost-node-base:'))!;
    assert.ok(base, 'the local base image (npm run build:images)');
    const app = `compose-build-${process.pid}`;
    const file = composeFile(`services:\n  hello:\n    build:\n      context: ./hello\n      args: { GREETING: hi }\n`, {
      'hello/Dockerfile': `FROM ${base}\nARG GREETING\nCOPY . /ctx/\nRUN ["/usr/bin/node", "-e", "require('fs').writeFileSync('/app/greeting', process.env.GREETING)"]\nCMD ["/usr/bin/node", "-e", "console.log(require('fs').readFileSync('/app/greeting', 'utf8'))"]\n`,
      'hello/.dockerignore': 'secret.txt\n',
      'hello/secret.txt': 'not for the image',
    });
    const conv = loadCompose({ file, env: {}, name: app, registry });
    const lines: string[] = [];
    const refs = await buildAndPush(conv.builds, { app, registry, say: (s) => lines.push(s), docker });
    const ref = refs.get('hello')!;
    assert.match(ref, new RegExp(`^${registry.replace(/\./g, '\\.')}/${app}-hello:[0-9a-f]{12}$`));
    const tags = await (await fetch(`http://${registry}/v2/${app}-hello/tags/list`)).json() as { tags: string[] };
    assert.ok(tags.tags.includes(ref.split(':').pop()!), `the registry holds ${ref}: ${JSON.stringify(tags)}`);
    assert.deepEqual(lines.map((l) => l.split(' ')[0]), ['building', 'pushing']);
    const again = await buildAndPush(conv.builds, { app, registry, say: () => {}, docker });
    assert.equal(again.get('hello'), ref, 'the same build gives the same tag: the app does not roll');
    // the build ran its RUN with the arg, and .dockerignore kept the file out of the context
    const ctr = await docker!.createContainer({
      Image: ref, Cmd: ['/usr/bin/node', '-e', 'const fs=require("fs");console.log(fs.readFileSync("/app/greeting","utf8"), fs.existsSync("/ctx/Dockerfile"), fs.existsSync("/ctx/secret.txt"))'],
      HostConfig: { Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1024 }, { Name: 'nproc', Soft: 4096, Hard: 4096 }] },
    });
    await ctr.start();
    await ctr.wait();
    const out = (await ctr.logs({ stdout: true, stderr: true })).toString();
    await ctr.remove({ force: true });
    assert.match(out, /hi true false/);
    for (const img of [ref, ref.replace(/:[0-9a-f]{12}$/, ':latest')]) await docker!.getImage(img).remove({ force: true }).catch(() => {});
  });

  test('a failing build is E_BUILD_FAILED naming the service, with the engine\'s words', { skip: why }, async () => {
    const file = composeFile('services:\n  broken:\n    build: ./broken\n', { 'broken/Dockerfile': 'FROM localhost/no-such-base-image:0\n' });
    const conv = loadCompose({ file, env: {}, name: `compose-broken-${process.pid}`, registry });
    await assert.rejects(buildAndPush(conv.builds, { app: 'x', registry, say: () => {}, docker }), (e: OutpostError) => {
      assert.equal(e.code, 'E_BUILD_FAILED');
      assert.match(e.message, /^services\.broken\.build: building .*broken failed: /);
      return true;
    });
  });

  test('no engine: E_USAGE naming the services to build', async () => {
    const conv = convert(fixture('balena'));
    await assert.rejects(buildAndPush(conv.builds, { app: 'balena', registry: '127.0.0.1:5000', say: () => {}, docker: null }), (e: OutpostError) => {
      assert.equal(e.code, 'E_USAGE');
      assert.match(e.message, /^services\.sensor\.build: building sensor, dashboard needs a container engine on this machine/);
      return true;
    });
  });
});
