// The `outpost` command line: every command, argument and flag, built without
// running anything, so docs/reference/cli.md can be generated from it (npm run
// docs); main.ts parses argv with it. Every command's module is imported when
// that command runs, never before: `outpost --version` must not pay for the
// control plane, the agent, the broker or the charts (a test checks this), so
// this file imports only commander, the client and the output helpers.
import { Command, Option } from 'commander';
import { clientFromEnv } from './client.js';
import { printJson } from './output.js';

const cmd = {
  deploy: () => import('./commands/deploy.js'),
  lists: () => import('./commands/lists.js'),
  logs: () => import('./commands/logs.js'),
  plan: () => import('./commands/plan.js'),
  rollout: () => import('./commands/rollout.js'),
  sites: () => import('./commands/sites.js'),
  streams: () => import('./commands/streams.js'),
  serve: () => import('./commands/serve.js'),
  lab: () => import('../lab/lab.js'),
};

export function buildProgram(): Command {
  const program = new Command('outpost')
    .description('Deploy containerized apps onto edge nodes for low latency, and measure every term of it')
    .version('0.1.0')
    .showHelpAfterError();

  const runtime = () => new Option('--runtime <runtime>', 'auto, docker (Docker or Podman) or process').choices(['auto', 'docker', 'process']).default('auto');
  // the variables are read when argv is parsed, not here: the generated reference shows the same defaults everywhere
  const dataDir = () => new Option('--data-dir <dir>', 'state directory (default: ~/.outpost)').env('OUTPOST_DATA_DIR');

  program.command('up').description('control plane + local agent in one process; deploys the example app')
    .addOption(dataDir())
    .option('--port <port>', 'API port', '7070')
    .addOption(runtime())
    .option('--no-demo', 'do not deploy examples/sensor-stats')
    .action(async (o) => (await cmd.serve()).runUp({ dataDir: o.dataDir, port: o.port, runtime: o.runtime, demo: o.demo }));

  program.command('server').description('the control plane alone')
    .addOption(dataDir())
    .option('--listen <host:port>', 'listen address (0.0.0.0:7070 for agents on other machines)', '127.0.0.1:7070')
    .addOption(new Option('--node-timeout <ms>', 'a node unreachable this long is lost: its replicas are rescheduled (apps with onNodeLoss: reschedule)').env('OUTPOST_NODE_TIMEOUT_MS').default('15000'))
    .option('--stream-retention-days <days>', 'window results from the data hubs older than this are deleted', '30')
    .action(async (o) => (await cmd.serve()).runServer(o));

  program.command('agent').description('an edge agent; it dials out to the control plane')
    .requiredOption('--server <url>', 'control plane URL, e.g. http://cp.example:7070')
    .addOption(new Option('--join-token <token>', 'join token (the control plane\'s join.token)').env('OUTPOST_JOIN_TOKEN'))
    .option('--name <name>', 'node name (default: the hostname)')
    .option('--site <site>', 'the site this node sits at')
    .option('--labels <k=v,...>', 'node labels for placement constraints')
    .addOption(runtime())
    .addOption(dataDir())
    .option('--advertise <host>', 'address clients use to reach this node\'s replicas', '127.0.0.1')
    .option('--bind <host>', 'address published ports bind to (default: 127.0.0.1 when advertising 127.0.0.1, else 0.0.0.0)')
    .option('--network <mode>', 'containers: bridge (ports published on the host) or host (they share the engine\'s network namespace)', 'bridge')
    .option('--no-hub', 'do not start the data hub beside the agent')
    .addOption(new Option('--hub-http-port <port>', 'the data hub\'s HTTP port (0: any free one)').env('OUTPOST_HUB_HTTP_PORT').default('7081'))
    .addOption(new Option('--hub-mqtt-port <port>', 'the embedded MQTT broker\'s port (0: any free one)').env('OUTPOST_HUB_MQTT_PORT').default('1883'))
    .option('--hub-mqtt-url <url>', 'subscribe to this external broker (e.g. Mosquitto) instead of embedding one')
    .option('--hub-config <file>', 'YAML: streams the hub runs besides its apps\', retention {maxAgeMs, maxBytes}, mqttUrl')
    .action(async (o) => (await cmd.serve()).runAgent(o));

  program.command('hub').description('a data hub alone, without an agent (streams from --hub-config)')
    .addOption(dataDir())
    .option('--bind <host>', 'address to listen on', '127.0.0.1')
    .option('--advertise <host>', 'address devices use')
    .option('--hub-http-port <port>', 'HTTP port (0: any free one)', '7081')
    .option('--hub-mqtt-port <port>', 'MQTT port (0: any free one)', '1883')
    .option('--hub-mqtt-url <url>', 'subscribe to this external broker instead of embedding one')
    .option('--hub-config <file>', 'YAML: streams, retention {maxAgeMs, maxBytes}, mqttUrl')
    .action(async (o) => (await cmd.serve()).runHubOnly(o));

  program.command('streams').description('data hub streams: windows held, points and bytes in, bytes forwarded, reduction, queue').option('--json', 'print JSON')
    .action(async (o) => (await cmd.streams()).streams(clientFromEnv(), !!o.json));
  program.command('stream <name>').description('the window results the control plane holds for a stream')
    .option('--node <node>', 'from this node only').option('--from <ms>', 'windows starting at or after (epoch ms)').option('--to <ms>', 'windows starting before (epoch ms)')
    .option('--limit <n>', 'at most this many').option('--json', 'print JSON')
    .action(async (name, o) => (await cmd.streams()).stream(clientFromEnv(), name, o));

  program.command('deploy').description('create or update an app')
    .requiredOption('-f, --file <file>', 'app manifest (YAML or JSON)')
    .option('--wait', 'return when every replica is ready or failed, showing each phase')
    .option('--timeout <seconds>', 'with --wait, give up after this long', '300')
    .option('--json', 'print JSON')
    .action(async (o) => { await (await cmd.deploy()).deploy(clientFromEnv(), o.file, { wait: o.wait, json: o.json, timeout: Number(o.timeout) }); });

  program.command('plan').description('what deploy would do and what it predicts, without doing it')
    .requiredOption('-f, --file <file>', 'app manifest (YAML or JSON)')
    .option('--snapshot <file>', 'plan against this cluster description (JSON) instead of the live cluster; no server needed')
    .option('--json', 'print JSON')
    .action(async (o) => (await cmd.plan()).plan(o.file, { snapshot: o.snapshot, json: !!o.json }));

  program.command('apps').description('list apps').option('--json', 'print JSON').action(async (o) => (await cmd.lists()).apps(clientFromEnv(), !!o.json));
  program.command('nodes').description('list nodes').option('--json', 'print JSON').action(async (o) => (await cmd.lists()).nodes(clientFromEnv(), !!o.json));
  program.command('replicas [app]').description('list replicas with measured and predicted timings').option('--json', 'print JSON')
    .action(async (app, o) => (await cmd.lists()).replicas(clientFromEnv(), app, !!o.json));
  program.command('logs <app>').description('output of an app\'s replicas, through the agents\' connections')
    .option('-f, --follow', 'keep streaming').option('--tail <n>', 'lines from the end', '200')
    .action(async (app, o) => (await cmd.logs()).logs(clientFromEnv(), app, !!o.follow, Number(o.tail)));
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
  program.command('model').description('how well predicted deploy times match measured ones').option('--json', 'print JSON')
    .action(async (o) => (await cmd.sites()).model(clientFromEnv(), !!o.json));

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

  program.command('rm <app>').description('remove an app and everything it runs').option('--json', 'print JSON')
    .action(async (app, o) => (await cmd.lists()).rm(clientFromEnv(), app, !!o.json));

  return program;
}
