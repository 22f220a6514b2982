// Every key of the Compose Specification and what the converter does with
// it: mapped (by the code beside this table), or refused, ignored or dropped
// with the reason given here. A key in no table is not Compose: E_INVALID.
// Pure data.

export type Handling =
  | { how: 'mapped' }
  /** cannot be honoured: E_COMPOSE_UNSUPPORTED, nothing deployed */
  | { how: 'unsupported'; why: string }
  /** no effect here, or obsolete */
  | { how: 'ignored'; why: string }
  /** honoured in Outpost's own way */
  | { how: 'changed'; why: string }
  /** not honoured: the container runs without it */
  | { how: 'dropped'; why: string };

const mapped = { how: 'mapped' } as const;
const no = (why: string) => ({ how: 'unsupported', why }) as const;
const ignored = (why: string) => ({ how: 'ignored', why }) as const;
const changed = (why: string) => ({ how: 'changed', why }) as const;
const dropped = (why: string) => ({ how: 'dropped', why }) as const;

export const TOP_KEYS: Record<string, Handling> = {
  version: ignored('the obsolete `version` is ignored, as Compose ignores it'),
  name: mapped,
  services: mapped,
  volumes: mapped,
  configs: mapped,
  secrets: mapped,
  networks: mapped,
  include: no('`include` is not supported: merge the included files into this one'),
  models: no('`models` is not supported'),
};

export const SERVICE_KEYS: Record<string, Handling> = {
  image: mapped, build: mapped, command: mapped, entrypoint: mapped, environment: mapped, env_file: mapped,
  ports: mapped, expose: ignored('every port of a container is open to the app\'s other containers: `expose` adds nothing'),
  volumes: mapped, tmpfs: mapped, devices: mapped, privileged: mapped, cap_add: mapped, network_mode: mapped, networks: mapped,
  restart: mapped, healthcheck: mapped, depends_on: mapped, links: mapped, labels: mapped, user: mapped, working_dir: mapped,
  mem_limit: mapped, mem_reservation: mapped, cpus: mapped, pids_limit: mapped, deploy: mapped, configs: mapped, secrets: mapped,
  read_only: mapped, shm_size: mapped, pull_policy: mapped, scale: mapped,
  container_name: mapped, hostname: mapped,
  domainname: dropped('`domainname` is not set'),
  attach: ignored('`attach` is about `compose up`\'s output: `outpost logs` shows every container\'s log'),
  develop: ignored('`develop` (compose watch) is for development machines'),
  annotations: dropped('`annotations` are not set on the container'),
  label_file: dropped('labels are not kept: Outpost sets its own labels on the containers it runs'),
  cap_drop: dropped('`cap_drop` is not applied: Outpost drops AUDIT_WRITE, MKNOD, NET_RAW, SETFCAP, SETPCAP and SYS_CHROOT from every container, and no more'),
  logging: changed('`logging` is not used: the agent keeps each container\'s log itself (`outpost logs`)'),
  init: dropped('`init` is not applied: no init process is added, so the command runs as PID 1'),
  stdin_open: dropped('`stdin_open` is not applied: containers get no standard input'),
  tty: dropped('`tty` is not applied: containers get no terminal'),
  stop_grace_period: dropped('`stop_grace_period` is not applied: the engine\'s default grace period is used'),
  stop_signal: dropped('`stop_signal` is not applied: containers are stopped with SIGTERM'),
  ulimits: dropped('`ulimits` are not applied: every container gets nofile 1024 and nproc 4096'),
  platform: dropped('`platform` is not applied: each node pulls its own platform; give images per arch with `x-outpost: { overrides: [...] }`'),
  pull_refresh_after: dropped('`pull_refresh_after` is not applied: a node pulls an image only when it lacks it'),
  mem_swappiness: dropped('`mem_swappiness` is not applied'),
  memswap_limit: dropped('`memswap_limit` is not applied: the memory limit is the only one'),
  oom_kill_disable: dropped('`oom_kill_disable` is not applied: a container over its memory limit is killed and restarted'),
  oom_score_adj: dropped('`oom_score_adj` is not applied'),
  cpu_shares: dropped('`cpu_shares` is not applied: the share comes from the app\'s `resources.cpu` (`cpus` or `deploy.resources`)'),
  cpu_quota: dropped('`cpu_quota` is not applied: give `cpus`'),
  cpu_period: dropped('`cpu_period` is not applied: give `cpus`'),
  cpu_count: dropped('`cpu_count` is not applied (a Windows setting): give `cpus`'),
  cpu_percent: dropped('`cpu_percent` is not applied (a Windows setting): give `cpus`'),
  cpuset: dropped('`cpuset` is not applied: containers may run on any core'),
  blkio_config: dropped('`blkio_config` is not applied: no block I/O limits'),
  extends: no('`extends` is not supported: write the fields out, or share them with a YAML anchor and `<<: *anchor`'),
  profiles: no('`profiles` are not supported: every service of the file is deployed, so leave out the ones you do not want'),
  ipc: no('`ipc` is not supported: each container has its own IPC namespace'),
  pid: no('`pid` is not supported: each container has its own PID namespace'),
  uts: no('`uts` is not supported'),
  userns_mode: no('`userns_mode` is not supported'),
  cgroup: no('`cgroup` is not supported'),
  cgroup_parent: no('`cgroup_parent` is not supported: the agent places containers in its own cgroups'),
  cpu_rt_period: no('`cpu_rt_period` (real-time scheduling) is not supported'),
  cpu_rt_runtime: no('`cpu_rt_runtime` (real-time scheduling) is not supported'),
  credential_spec: no('`credential_spec` (Windows) is not supported'),
  device_cgroup_rules: no('`device_cgroup_rules` are not supported: list each device under `devices`'),
  dns: no('`dns` is not supported: containers use the engine\'s resolver'),
  dns_opt: no('`dns_opt` is not supported'),
  dns_search: no('`dns_search` is not supported'),
  external_links: no('`external_links` are not supported: an app reaches only its own containers by name'),
  extra_hosts: no('`extra_hosts` are not supported: containers resolve names through the engine\'s resolver'),
  gpus: no('`gpus` are not supported: list the device files under `devices`'),
  group_add: no('`group_add` is not supported: run as a `user` whose group can use the device, or as UID:GID'),
  isolation: no('`isolation` is not supported'),
  mac_address: no('`mac_address` is not supported'),
  models: no('`models` are not supported'),
  post_start: no('`post_start` hooks are not supported'),
  pre_stop: no('`pre_stop` hooks are not supported'),
  provider: no('`provider` services are not supported'),
  runtime: no('`runtime` is not supported: containers run with the engine\'s default runtime'),
  security_opt: mapped,
  storage_opt: no('`storage_opt` is not supported'),
  sysctls: no('`sysctls` are not supported'),
  use_api_socket: no('`use_api_socket` is not supported: no container gets the engine\'s socket'),
  volumes_from: no('`volumes_from` is not supported: mount the same named volume in both services'),
};

export const DEPLOY_KEYS: Record<string, Handling> = {
  resources: mapped, restart_policy: mapped, replicas: mapped, mode: mapped,
  endpoint_mode: ignored('`endpoint_mode` (Swarm) is ignored: clients reach a replica through the endpoint Outpost routes them to'),
  labels: dropped('`deploy.labels` are not kept: Outpost sets its own labels'),
  update_config: changed('`update_config` is not used: Outpost rolls updates one replica of the whole app at a time, gated on health (`x-outpost: { update: ... }` tunes it)'),
  rollback_config: changed('`rollback_config` is not used: Outpost rolls back a failed update by itself'),
  placement: changed('`deploy.placement` is not used: give Outpost\'s placement in `x-outpost: { placement: ... }`'),
};

export const HEALTH_KEYS = ['test', 'interval', 'timeout', 'retries', 'start_period', 'start_interval', 'disable'];

/** `x-outpost` fields: Outpost's own, laid over the converted manifest. */
export const OUTPOST_KEYS = ['placement', 'streams', 'overrides', 'replicas', 'update', 'resources', 'restart', 'onNodeLoss', 'metrics'];
