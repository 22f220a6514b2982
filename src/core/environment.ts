// Every environment variable Outpost reads, and those it sets for the replicas
// it runs: one table, from which docs/reference/environment.md is generated
// (npm run docs). Reads in src/ go through readEnv, so a name missing here does
// not compile; test/reference.test.ts checks scripts/ and the rest by search.

export interface EnvVar {
  name: string;
  /** what applies when it is unset, as users would write it */
  default: string;
  /** the processes that read it */
  readBy: string;
  meaning: string;
}

export const ENVIRONMENT = [
  { name: 'OUTPOST_SERVER', default: 'https://127.0.0.1:7070', readBy: 'CLI', meaning: 'the control plane the CLI talks to; several instances of one control plane comma-separated (`https://cp1:7070,https://cp2:7070`): a request goes to the one that answered last and moves on when it cannot be reached (a POST, PUT or DELETE whose connection broke after it was sent is not sent again: `E_NO_SERVER`)' },
  { name: 'OUTPOST_TOKEN', default: 'the `admin.token` file in `OUTPOST_DATA_DIR`', readBy: 'CLI', meaning: 'the admin API token the CLI sends' },
  { name: 'OUTPOST_DATA_DIR', default: '~/.outpost', readBy: 'CLI, up, server, agent, hub', meaning: 'the state directory when `--data-dir` is not given; the CLI reads `admin.token` there' },
  { name: 'OUTPOST_JOIN_TOKEN', default: 'none: needed only to enrol', readBy: 'agent', meaning: 'the join token (`outpost token create`) when `--join-token-file` is not given; needed to enrol, not afterwards. Never on the command line: any process on the node can read an argv' },
  { name: 'OUTPOST_CA', default: 'the `ca.crt` file in `OUTPOST_DATA_DIR`', readBy: 'CLI', meaning: 'the CA certificate (PEM file) the CLI trusts for an https:// control plane' },
  { name: 'OUTPOST_NODE_TIMEOUT_MS', default: '15000', readBy: 'up, server', meaning: 'the setting `nodeTimeoutMs` when `--node-timeout` is not given: a node unreachable this long has its replicas rescheduled' },
  { name: 'OUTPOST_STORE', default: 'the SQLite file `outpost.db` in the data dir', readBy: 'server, backup --offline, restore', meaning: 'the setting `store` when `--store` is not given: a `postgres://` URL of the database the control plane keeps its state in' },
  { name: 'OUTPOST_ADMIT_RATE', default: '2000', readBy: 'server', meaning: 'the setting `admitRate` when `--admit-rate` is not given: agent handshakes admitted per second' },
  { name: 'OUTPOST_ADMIT_BURST', default: '500', readBy: 'server', meaning: 'the setting `admitBurst` when `--admit-burst` is not given: agent handshakes admitted at once after a quiet spell' },
  { name: 'OUTPOST_LOG_LEVEL', default: '`info`; `warn` for `outpost up`', readBy: 'up, server, agent, hub', meaning: 'the log level (`trace`, `debug`, `info`, `warn`, `error`, `fatal`, `silent`); logs are JSON lines on stderr' },
  { name: 'OUTPOST_HUB_HTTP_PORT', default: '7081', readBy: 'up, agent, hub', meaning: 'the data hub\'s HTTP port when `--hub-http-port` is not given (0: any free port)' },
  { name: 'OUTPOST_HUB_MQTT_PORT', default: '1883', readBy: 'up, agent, hub', meaning: 'the embedded MQTT broker\'s port when `--hub-mqtt-port` is not given (0: any free port)' },
  { name: 'OUTPOST_HUB_MQTTS_PORT', default: '8883', readBy: 'agent, hub', meaning: 'the embedded broker\'s MQTT-over-TLS port when `--hub-mqtts-port` is not given (0: any free port)' },
  { name: 'OUTPOST_HUB_ANONYMOUS', default: 'false', readBy: 'agent, hub', meaning: '`true` or `1`: the data hub serves clients without credentials, as `--hub-anonymous` (a closed network only)' },
  { name: 'OUTPOST_PROBE_INTERVAL_MS', default: '30000', readBy: 'up, agent', meaning: 'how often the agent times TCP connects to every site (it also probes on connect and when the site list changes)' },
  { name: 'OUTPOST_STAGES_INTERVAL_MS', default: '10000', readBy: 'up, agent', meaning: 'how often the agent asks replicas of apps with `metrics.stages` for their per-item stage costs' },
  { name: 'OUTPOST_INVENTORY_INTERVAL_MS', default: '30000', readBy: 'up, agent', meaning: 'how often the agent reports the images and layers it holds' },
  { name: 'OUTPOST_DEMAND_WINDOW_MS', default: '10000', readBy: 'up, agent', meaning: 'the site proxy\'s counting window (1000 to 600000): requests and latencies per app are reported to the control plane as each closes (measured demand)' },
  { name: 'OUTPOST_PROXY_RESPONSE_TIMEOUT_MS', default: '60000', readBy: 'up, agent', meaning: 'the setting `proxyResponseTimeoutMs` when `--proxy-response-timeout` is not given (100 to 86400000): the site proxy answers 504 `E_UPSTREAM_TIMEOUT` when a replica has not begun its answer this long after the request' },
  { name: 'OUTPOST_PROXY_IDLE_TIMEOUT_MS', default: '900000', readBy: 'up, agent', meaning: 'the setting `proxyIdleTimeoutMs` when `--proxy-idle-timeout` is not given (100 to 86400000): the site proxy closes a spliced TCP or WebSocket connection idle this long' },
  { name: 'OUTPOST_DISK_RESERVE_MB', default: '512', readBy: 'up, agent (container runtime)', meaning: 'MiB kept free on the image store: a pull that would go below is refused with `E_DISK_FULL`' },
  { name: 'OUTPOST_ALLOW_ROOT', default: 'false', readBy: 'up, agent (process runtime)', meaning: 'the setting `allowRoot` when `--allow-root` is not given: `true` lets a root agent run replicas as root' },
  { name: 'OUTPOST_REGISTRY_AUTH', default: 'none: pulls and `deploy --pin` go without credentials', readBy: 'CLI (`deploy --pin`, `deploy -f` of a Compose file with `build:`), up, agent (container runtime)', meaning: 'a Docker-style registry auth file (`config.json` with `auths`), mode 0600, when `--registry-auth` is not given: the agent sends its credentials on pulls, `deploy --pin` to the registry\'s API, `deploy -f` with the pushes of built images' },
  { name: 'OUTPOST_INSECURE_REGISTRIES', default: 'none: only loopback registries may answer in plain HTTP', readBy: 'CLI (`deploy --pin`)', meaning: 'registries (`host:port,host:port`) that `deploy --pin` may reach over plain HTTP when they do not speak TLS (engines have their own list: registries.conf, daemon.json)' },
  { name: 'DOCKER_HOST', default: 'none: then `/var/run/docker.sock`, then `/run/podman/podman.sock`', readBy: 'up, agent', meaning: 'the Docker Engine API (Docker or Podman) to try first: `unix:///path` or `tcp://host:port` (plain HTTP)' },
  { name: 'PATH', default: '/usr/bin:/bin', readBy: 'up, agent (process runtime)', meaning: 'passed on to process-runtime replicas: the only variable of the agent\'s own environment they get' },
  { name: 'OUTPOST_REGISTRY', default: 'none: local images only', readBy: 'CLI (`deploy -f` and `convert -f` of a Compose file), scripts/build-images.sh, bench:model', meaning: 'the registry (host:port) the images of a Compose file\'s `build:` services are pushed to for the nodes to pull, when `--registry` is not given; `npm run build:images` also pushes `sensor-stats:0.1` to it (e.g. `127.0.0.1:5000`); `npm run bench:model` pulls from it (127.0.0.1:5000 when unset)' },
  { name: 'OUTPOST_ENGINE_CLI', default: 'podman', readBy: 'scripts/build-images.sh', meaning: 'the engine CLI that builds the example image (it uses `image exists` and `import`, which Podman has)' },
  { name: 'OUTPOST_REQUIRE_ENGINE', default: 'unset', readBy: 'tests', meaning: '`1`: the container and lab tests fail when they cannot run, instead of being skipped' },
  { name: 'OUTPOST_REQUIRE_BROWSER', default: 'unset', readBy: 'tests', meaning: '`1`: the dashboard\'s browser test fails when Chromium is missing, instead of being skipped' },
  { name: 'OUTPOST_CHROMIUM', default: '/usr/bin/chromium', readBy: 'tests', meaning: 'the Chromium the dashboard\'s browser test, bench:ui and scripts/screenshots.mjs drive' },
  { name: 'OUTPOST_TEST_REGISTRY', default: 'unset: that test is skipped', readBy: 'tests', meaning: 'a registry (host:port) holding `sensor-stats:0.1`, for the pull-from-registry test' },
  { name: 'OUTPOST_TEST_LOG', default: 'silent', readBy: 'tests', meaning: 'the log level of the control planes and agents the tests run in-process' },
  { name: 'OUTPOST_TEST_CUT_MS', default: '180000', readBy: 'tests', meaning: 'how long the hub test cuts an agent\'s link to the control plane' },
  { name: 'OUTPOST_IMPORT_TRACE', default: 'unset', readBy: 'tests (dist/test/import-trace.js)', meaning: 'a file to which every module the process loads is appended (the CLI start-up test sets it)' },
  { name: 'PORT', default: '5000', readBy: 'example app', meaning: 'the port `examples/sensor-stats` listens on' },
  { name: 'HOST', default: '0.0.0.0', readBy: 'example app', meaning: 'the address `examples/sensor-stats` listens on' },
  { name: 'MAX_BODY_BYTES', default: '16777216', readBy: 'example app', meaning: 'the largest request body `examples/sensor-stats` takes' },
  { name: 'LEAK_MB_PER_S', default: '0', readBy: 'example app', meaning: 'MiB per second `examples/sensor-stats` leaks on purpose (the seed\'s memory-leak failure, for `npm run chaos`)' },
] as const satisfies readonly EnvVar[];

export type EnvName = (typeof ENVIRONMENT)[number]['name'];

/** What the agent sets in every replica's environment, over the manifest's `env`. */
export const REPLICA_ENVIRONMENT = [
  { name: 'OUTPOST_APP', when: 'always', meaning: 'the app\'s name' },
  { name: 'OUTPOST_REPLICA', when: 'always', meaning: 'the replica\'s id: the app name, its slot and the app\'s serial number for it (`sensor-stats-0-4`)' },
  { name: 'OUTPOST_NODE', when: 'always', meaning: 'the node\'s name' },
  { name: 'OUTPOST_HUB_URL', when: 'the node runs a data hub', meaning: 'the hub\'s HTTP URL' },
  { name: 'OUTPOST_HUB_MQTT', when: 'the node runs a data hub', meaning: 'the hub\'s MQTT URL' },
  { name: 'OUTPOST_HUB_CA', when: 'the hub serves its node certificate (`--hub-tls`)', meaning: 'the PEM of the hub CA, to verify the hub\'s `https://` and `mqtts://` URLs with' },
  { name: 'PORT', when: 'process runtime, with ports', meaning: 'the host port given to the first declared port (a process shares the host\'s network)' },
  { name: 'PORT_<NAME>', when: 'process runtime, with ports', meaning: 'the host port of each declared port, its name upper-cased with `-` as `_`' },
  { name: 'HOST', when: 'process runtime', meaning: 'the address to listen on (the agent\'s bind address)' },
] as const;
