// The `outpost` command line: every command, argument and flag, built without
// running anything, so docs/reference/cli.md can be generated from it (npm run
// docs); main.ts parses argv with it. Every command's module is imported when
// that command runs, never before: `outpost --version` must not pay for the
// control plane, the agent, the broker, the charts, the config module or YAML
// (a test checks this), so this file imports only commander, the client, the
// output helpers and the settings tables (src/core/settings.ts, plain data),
// from which the flags of `up`, `server`, `agent` and `hub` are declared.
import { Command, Help, Option } from 'commander';
import { AGENT_SETTINGS, HUB_SETTINGS, SERVER_SETTINGS, UP_SETTINGS, defaultText, type Setting, type Table } from '../core/settings.js';
import type { GivenSettings } from '../config/load.js';
import { clientFromEnv } from './client.js';
import { printJson } from './output.js';

const cmd = {
  deploy: () => import('./commands/deploy.js'),
  compose: () => import('./commands/compose.js'),
  lists: () => import('./commands/lists.js'),
  logs: () => import('./commands/logs.js'),
  exec: () => import('./commands/exec.js'),
  plan: () => import('./commands/plan.js'),
  rollout: () => import('./commands/rollout.js'),
  sites: () => import('./commands/sites.js'),
  demand: () => import('./commands/demand.js'),
  autopilot: () => import('./commands/autopilot.js'),
  secrets: () => import('./commands/secrets.js'),
  trust: () => import('./commands/trust.js'),
  streams: () => import('./commands/streams.js'),
  serve: () => import('./commands/serve.js'),
  backup: () => import('./commands/backup.js'),
  audit: () => import('./commands/audit.js'),
  metrics: () => import('./commands/metrics.js'),
  events: () => import('./commands/events.js'),
  lab: () => import('../lab/lab.js'),
};

/**
 * A flag that sets a setting of src/core/settings.ts. Commander only parses
 * it: the variable, the config file and the default are applied by
 * src/config, so commander is given neither a default nor a variable.
 */
export class SettingOption extends Option {
  constructor(readonly key: string, readonly setting: Setting) {
    super(setting.flag!, setting.flagHelp ?? setting.meaning);
  }
}

/** The setting flags of a process (in its table's order), then `--config` and `--print-config`. */
function settingsOptions(c: Command, table: Table): Command {
  for (const [key, s] of Object.entries(table)) if (s.flag) c.addOption(new SettingOption(key, s));
  return c
    .option('--config <file>', 'YAML file of settings (docs/reference/config.md); a flag or variable wins over it')
    .option('--print-config', 'print every setting, its value and where it came from, and exit');
}

/** The settings given on the command line: only flags the user typed, by setting key. */
function given(c: Command): GivenSettings {
  const flags: Record<string, unknown> = {};
  for (const o of c.options) {
    // a --no-x flag has an implicit default (true): only what was typed counts
    if (o instanceof SettingOption && c.getOptionValueSource(o.attributeName()) === 'cli') flags[o.key] = c.getOptionValue(o.attributeName());
  }
  const { config, printConfig } = c.opts<{ config?: string; printConfig?: boolean }>();
  return { flags, config, printConfig };
}

/** `--help` shows a setting flag's default, choices and variable as commander would show its own. */
function optionDescription(this: Help, o: Option): string {
  if (!(o instanceof SettingOption)) return Help.prototype.optionDescription.call(this, o);
  const s = o.setting;
  const extra = [
    s.required ? 'required' : '',
    s.kind.choices ? `choices: ${s.kind.choices.join(', ')}` : '',
    o.negate ? '' : defaultText(s) && `default: ${defaultText(s)}`,
    s.env ? `env: ${s.env}` : '',
  ].filter(Boolean);
  return extra.length ? `${o.description} (${extra.join(', ')})` : o.description;
}

export function buildProgram(): Command {
  const program = new Command('outpost')
    .description('Deploy containerized apps onto edge nodes for low latency, and measure every term of it')
    .version('0.1.0')
    .showHelpAfterError()
    .configureHelp({ optionDescription });

  settingsOptions(program.command('up').description('control plane + local agent in one process; deploys the example app'), UP_SETTINGS)
    .action(async (_o, c: Command) => (await cmd.serve()).runUp(given(c)));

  const server = settingsOptions(program.command('server').description('the control plane alone'), SERVER_SETTINGS)
    .action(async (_o, c: Command) => (await cmd.serve()).runServer(given(c)));
  server.command('status').description('the control plane\'s instances, the leader and its lease, each one\'s lag').option('--json', 'print JSON')
    .action(async (o) => (await cmd.lists()).serverStatus(clientFromEnv(), !!o.json));

  settingsOptions(program.command('agent').description('an edge agent; it dials out to the control plane'), AGENT_SETTINGS)
    .action(async (_o, c: Command) => (await cmd.serve()).runAgent(given(c)));

  settingsOptions(program.command('hub').description('a data hub alone, without an agent (streams from --hub-config)'), HUB_SETTINGS)
    .action(async (_o, c: Command) => (await cmd.serve()).runHubOnly(given(c)));

  program.command('streams').description('data hub streams: windows held, points and bytes in, bytes forwarded, reduction, queue').option('--json', 'print JSON')
    .action(async (o) => (await cmd.streams()).streams(clientFromEnv(), !!o.json));
  program.command('stream <name>').description('the window results the control plane holds for a stream')
    .option('--node <node>', 'from this node only').option('--from <ms>', 'windows starting at or after (epoch ms)').option('--to <ms>', 'windows starting before (epoch ms)')
    .option('--limit <n>', 'at most this many').option('--json', 'print JSON')
    .action(async (name, o) => (await cmd.streams()).stream(clientFromEnv(), name, o));

  program.command('deploy').description('create or update an app, from its manifest or from a Compose file')
    .requiredOption('-f, --file <file>', 'app manifest (YAML or JSON), or a Compose file (one with top-level services:), converted as `outpost convert` does')
    .option('--wait', 'return when every replica is ready or failed, showing each phase')
    .option('--timeout <seconds>', 'with --wait, give up after this long', '300')
    .option('--pin', 'resolve the image\'s tag to the digest its registry holds now and deploy `name:tag@sha256:...`, so every node runs the same bytes')
    .option('--registry-auth <file>', 'with --pin, or a Compose file\'s build: a Docker-style auth file (mode 0600) with the registry\'s credentials (default: OUTPOST_REGISTRY_AUTH)')
    .option('--env-file <file>', 'Compose: the variables for substitution, instead of the .env beside the file')
    .option('--name <app>', 'Compose: the app\'s name (default: the file\'s name:, else its directory\'s name)')
    .option('--registry <host:port>', 'Compose: where the images of build: services are pushed for the nodes to pull (default: OUTPOST_REGISTRY)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      await (await cmd.deploy()).deploy(clientFromEnv(), o.file, {
        wait: o.wait, json: o.json, timeout: Number(o.timeout), pin: o.pin, registryAuth: o.registryAuth, envFile: o.envFile, name: o.name, registry: o.registry,
      });
    });

  program.command('convert').description('print the Outpost manifest a Compose file becomes (its notes on stderr, with their lines); nothing is built or deployed')
    .requiredOption('-f, --file <file>', 'the Compose file')
    .option('--env-file <file>', 'the variables for substitution, instead of the .env beside the file')
    .option('--name <app>', 'the app\'s name (default: the file\'s name:, else its directory\'s name)')
    .option('--registry <host:port>', 'the registry that build: images are named for (default: OUTPOST_REGISTRY)')
    .option('--json', 'print the manifest as JSON')
    .action(async (o) => (await cmd.compose()).convertFile(o.file, { envFile: o.envFile, name: o.name, registry: o.registry, json: !!o.json }));

  program.command('plan').description('what deploy would do and what it predicts, without doing it')
    .requiredOption('-f, --file <file>', 'app manifest (YAML or JSON), or a Compose file, read as deploy reads it (nothing is built)')
    .option('--snapshot <file>', 'plan against this cluster description (JSON) instead of the live cluster; no server needed')
    .option('--env-file <file>', 'Compose: the variables for substitution, instead of the .env beside the file')
    .option('--name <app>', 'Compose: the app\'s name (default: the file\'s name:, else its directory\'s name)')
    .option('--registry <host:port>', 'Compose: the registry that build: images are named for (default: OUTPOST_REGISTRY)')
    .option('--json', 'print JSON')
    .action(async (o) => (await cmd.plan()).plan(o.file, { snapshot: o.snapshot, json: !!o.json, envFile: o.envFile, name: o.name, registry: o.registry }));

  program.command('apps').description('list apps').option('--json', 'print JSON').action(async (o) => (await cmd.lists()).apps(clientFromEnv(), !!o.json));
  program.command('nodes').description('list nodes').option('--json', 'print JSON').action(async (o) => (await cmd.lists()).nodes(clientFromEnv(), !!o.json));
  const node = program.command('node').description('decide about a node: approve it, revoke it, forget it');
  node.command('approve <name>').description('let a pending node take replicas (servers started with --approve-nodes)').action(async (name) => (await cmd.trust()).nodeApprove(clientFromEnv(), name));
  node.command('revoke <name>').description('close its connection, refuse its certificate from now on, move its replicas').action(async (name) => (await cmd.trust()).nodeRevoke(clientFromEnv(), name));
  node.command('rm <name>').description('forget a node that is not connected and runs nothing; its name may enrol again').action(async (name) => (await cmd.trust()).nodeRm(clientFromEnv(), name));
  const device = program.command('device').description('data-hub device credentials, pushed to the hubs');
  device.command('create <name>').description('a device credential (MQTT username/password, HTTP bearer), printed once')
    .requiredOption('--streams <names>', 'the streams it may publish to and read, comma-separated').option('--site <site>', 'only this site\'s hubs accept it').option('--json', 'print JSON')
    .action(async (name, o) => (await cmd.trust()).deviceCreate(clientFromEnv(), name, o));
  device.command('list').description('device credentials (never their secrets)').option('--json', 'print JSON').action(async (o) => (await cmd.trust()).deviceList(clientFromEnv(), !!o.json));
  device.command('ca').description('the CA (PEM) devices verify hubs on TLS with: each hub\'s certificate names its node')
    .action(async () => (await cmd.trust()).deviceCa(clientFromEnv()));
  device.command('rm <name>').description('the hubs disconnect it and refuse its secret').action(async (name) => (await cmd.trust()).deviceRm(clientFromEnv(), name));
  const token = program.command('token').description('join tokens (what a new node enrols with) and API tokens (who may call the API, with which role)');
  token.command('create').description('a new join token, or with --role an API token; printed once on stdout')
    .option('--ttl <duration>', 'how long it may be used (join token: 30m, 24h, 7d at most; API token: any, none by default)', '1h').option('--uses <n>', 'how many nodes may enrol with it', '1')
    .option('--site <site>', 'nodes enrolled with it are at this site, whatever they say').option('--labels <k=v,...>', 'labels nodes enrolled with it get, over their own')
    .option('--note <text>', 'what it is for')
    .option('--role <role>', 'an API token with this role: admin, operator, deployer, viewer, device-admin (docs/security.md)')
    .option('--name <name>', 'API token: whose it is (the audit log names it)')
    .option('--apps <globs>', 'API token: only apps matching these globs (shop-*,edge-a) for app-targeted calls')
    .option('--sites <globs>', 'API token: only sites matching these globs for site-targeted calls')
    .option('--json', 'print JSON')
    .action(async (o, c: Command) => (await cmd.trust()).tokenCreate(clientFromEnv(), o, (k) => c.getOptionValueSource(k) === 'cli'));
  token.command('list').description('join tokens and API tokens (never their secrets)').option('--json', 'print JSON').action(async (o) => (await cmd.trust()).tokenList(clientFromEnv(), !!o.json));
  token.command('revoke <id>').description('a join token: no node can enrol with it any more; an API token (opt_...): refused from now on').action(async (id) => (await cmd.trust()).tokenRevoke(clientFromEnv(), id));
  program.command('whoami').description('the API token in use: its id, name, role, scopes and capabilities').option('--json', 'print JSON')
    .action(async (o) => (await cmd.trust()).whoami(clientFromEnv(), !!o.json));
  program.command('audit').description('the audit log: every mutating call (and reads of logs and backups), refused ones too, oldest first')
    .option('--since <when>', 'from this long ago (1h, 7d) or this ISO time', '24h').option('--limit <n>', 'at most this many (default 1000)').option('--json', 'print JSON')
    .action(async (o) => (await cmd.audit()).audit(clientFromEnv(), o));
  program.command('events').description('what happened, in order: deploys, rollouts, replicas starting, ready, restarting (and why), nodes joining, lost and back (docs/observability.md)')
    .option('-f, --follow', 'keep streaming new events; a dropped connection resumes after the last one seen')
    .option('--app <app>', 'only this app\'s events').option('--node <node>', 'only this node\'s events')
    .option('--since <when>', 'from a seq, this long ago (10m, 2h, 7d) or an RFC 3339 time (default: 1h; with --follow, only new events)')
    .option('--limit <n>', 'at most this many (default 1000; not with --follow)').option('--json', 'print JSON (with --follow: one event per line)')
    .action(async (o) => (await cmd.events()).events(clientFromEnv(), o));
  const secret = program.command('secret').description('secrets: encrypted at the control plane, sent only to the nodes whose replicas use them');
  secret.command('set <name>').description('a secret\'s new value (a new version): the apps that use it roll; the value from --from-file, --from-literal or stdin')
    .option('--from-file <file>', 'the file\'s bytes').option('--from-literal <value>', 'this text (it shows in the shell\'s history and the process list: prefer a file or stdin)').option('--json', 'print JSON')
    .action(async (name, o) => (await cmd.secrets()).secretSet(clientFromEnv(), name, o));
  secret.command('list').description('names, versions, the apps that use each (never values)').option('--json', 'print JSON')
    .action(async (o) => (await cmd.secrets()).secretList(clientFromEnv(), !!o.json));
  secret.command('rm <name>').description('remove a secret no app uses').action(async (name) => (await cmd.secrets()).secretRm(clientFromEnv(), name));
  secret.command('rotate-key').description('a new envelope key: every secret re-encrypted with it, the old key removed').option('--json', 'print JSON')
    .action(async (o) => (await cmd.secrets()).secretRotateKey(clientFromEnv(), !!o.json));
  program.command('replicas [app]').description('list replicas with measured and predicted timings; with an app, the routes each one serves as the site proxies measured them (p50 against predicted)').option('--json', 'print JSON')
    .action(async (app, o) => (await cmd.lists()).replicas(clientFromEnv(), app, !!o.json));
  program.command('logs <app>').description('output of an app\'s replicas, through the agents\' connections')
    .option('-f, --follow', 'keep streaming').option('--tail <n>', 'lines from the end', '200')
    .option('--container <name>', 'one of the app\'s containers (default: the first)')
    .option('--replica <id>', 'only this replica (an id from `outpost replicas APP`; default: every replica, each line prefixed with its id)')
    .action(async (app, o) => (await cmd.logs()).logs(clientFromEnv(), app, !!o.follow, Number(o.tail), o.container, o.replica));
  program.command('exec <app> [cmd...]').usage('[options] <app> -- <cmd...>')
    .description('run a command in one of an app\'s replicas through its agent\'s connection, like docker exec; exits with the command\'s status (255: Outpost itself failed)')
    .option('--replica <id>', 'this replica (default: the app\'s first running one, ready ones first)')
    .option('--container <name>', 'one of the app\'s containers (default: the first)')
    .option('-i, --interactive', 'send this process\'s stdin to the command')
    .option('-t, --tty', 'give the command a TTY (with -i on a terminal, this one goes raw; its size and resizes follow)')
    .action(async (app, args, o) => (await cmd.exec()).exec(clientFromEnv(), app, args, o));
  program.command('sites').description('sites, with each node\'s RTT to them').option('--json', 'print JSON')
    .action(async (o) => (await cmd.sites()).sites(clientFromEnv(), !!o.json));
  const site = program.command('site').description('manage sites: places where requests and data come from');
  site.command('add <name>').description('add (or change) a site').requiredOption('--probe <host:port>', 'a TCP address at the site; agents time connects to it')
    .option('--json', 'print JSON').action(async (name, o) => (await cmd.sites()).siteAdd(clientFromEnv(), name, o.probe, !!o.json));
  site.command('rm <name>').description('remove a site').action(async (name) => (await cmd.sites()).siteRm(clientFromEnv(), name));
  site.command('rtt <site> <node> <ms>').description('declare the RTT from a site to a node that cannot probe ("none" removes it)')
    .action(async (s, node, ms) => (await cmd.sites()).siteRtt(clientFromEnv(), s, node, ms));
  program.command('endpoints <app>').description('the app\'s healthy endpoints, nearest first from a site')
    .requiredOption('--site <site>', 'where the client is').option('--items <n>', 'items per request (default: the app\'s demand at that site, or 1)')
    .option('--json', 'print JSON').action(async (app, o) => (await cmd.sites()).endpoints(clientFromEnv(), app, o.site, o.items, !!o.json));
  program.command('demand <app>').description('what the site proxies measured of the app per site (rps, errors, latency) against its declared demand, and per route measured against predicted latency')
    .option('--json', 'print JSON').action(async (app, o) => (await cmd.demand()).demand(clientFromEnv(), app, !!o.json));
  const autopilot = program.command('autopilot').description('the latency autopilot (placement.autopilot): what it measures and decides');
  autopilot.command('status <app>').description('the range, the standing decision and why, what it measures now and why it waits')
    .option('--json', 'print JSON').action(async (app, o) => (await cmd.autopilot()).status(clientFromEnv(), app, !!o.json));
  program.command('model').description('how well predicted deploy times match measured ones').option('--json', 'print JSON')
    .action(async (o) => (await cmd.sites()).model(clientFromEnv(), !!o.json));
  program.command('metrics [prefixes...]').description('the control plane\'s Prometheus metrics as a scrape gets them (docs/observability.md); only the metrics whose names start with a prefix given')
    .action(async (prefixes: string[]) => (await cmd.metrics()).metrics(clientFromEnv(), prefixes));

  const rollout = program.command('rollout').description('an app\'s revisions: history, and going back');
  rollout.command('history <app>').description('revisions and their status').option('--json', 'print JSON')
    .action(async (app, o) => (await cmd.rollout()).history(clientFromEnv(), app, !!o.json));
  rollout.command('undo <app>').description('deploy the last good revision before the current one').option('--wait', 'follow the rollout')
    .action(async (app, o) => (await cmd.rollout()).undo(clientFromEnv(), app, !!o.wait));

  const lab = program.command('lab').description('the edge lab: sites and nodes in network namespaces on this machine (root)');
  lab.command('up').description('build a lab from a topology file').requiredOption('-f, --file <file>', 'topology (lab/*.yaml)')
    .action(async (o) => { const l = await cmd.lab(); await l.labUp((await import('../lab/topology.js')).readTopology(o.file), (s) => console.log(s)); });
  lab.command('down').description('remove everything a lab made (also after a crash)').action(async () => (await cmd.lab()).labDown((s) => console.log(s)));
  lab.command('status').description('what of the lab exists').option('--json', 'print JSON').action(async (o) => {
    const s = (await cmd.lab()).labStatus();
    if (o.json) return printJson(s);
    console.log(s.state ? `lab ${s.state.name}: control plane ${s.state.server} (OUTPOST_TOKEN in ${'/var/lib/outpost-lab/cp/admin.token'})` : 'no lab state');
    console.log(`namespaces: ${s.namespaces.join(', ') || 'none'}; links: ${s.links.join(', ') || 'none'}; processes: ${s.processes}`);
  });

  program.command('backup').description('the control plane\'s state, CA and admin token in one file (docs/operations.md); from the running control plane unless --offline')
    .option('--out <file>', 'write it here (mode 0600), whole or not at all; default: stdout')
    .option('--offline', 'read a stopped control plane\'s store directly instead of asking the running one')
    .option('--data-dir <dir>', 'with --offline: its data dir (default: OUTPOST_DATA_DIR, ~/.outpost)')
    .option('--store <url>', 'with --offline: its postgres:// store (default: OUTPOST_STORE; none: outpost.db in the data dir)')
    .option('--json', 'print the account as JSON (on stderr)')
    .action(async (o) => (await cmd.backup()).backup(o));
  program.command('restore <file>').description('restore a backup into a stopped control plane\'s data dir and store, checking the whole file first')
    .option('--data-dir <dir>', 'the data dir to restore into (default: OUTPOST_DATA_DIR, ~/.outpost)')
    .option('--store <url>', 'the postgres:// store to restore into (default: OUTPOST_STORE; none: outpost.db in the data dir)')
    .option('--force', 'delete every record of a store that is not empty, and replace trust files that differ')
    .option('--json', 'print JSON')
    .action(async (file, o) => (await cmd.backup()).restore(file, o));
  program.command('migrate-store').description('copy a stopped control plane\'s SQLite store into an empty PostgreSQL database, for `outpost server --store`')
    .option('--data-dir <dir>', 'its data dir (default: OUTPOST_DATA_DIR, ~/.outpost)')
    .requiredOption('--to <url>', 'the postgres:// URL of an empty database')
    .option('--json', 'print JSON')
    .action(async (o) => (await cmd.backup()).migrate(o));

  program.command('rm <app>').description('remove an app and everything it runs (its named volumes stay unless --volumes)').option('--json', 'print JSON')
    .option('--volumes', 'also remove its named volumes on the nodes (again later, for a node that was away)')
    .action(async (app, o) => (await cmd.lists()).rm(clientFromEnv(), app, !!o.json, !!o.volumes));

  return program;
}
