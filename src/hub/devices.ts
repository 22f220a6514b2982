// The devices a hub knows: those of its config file, which stay, and those
// the control plane pushes (through the agent), which each push replaces. A
// device removed or changed is announced, so its connections close at once
// and it comes back (if it may) under its new rights.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { secretMatches, type DeviceCredential } from '../core/devices.js';

const NO_HASH = '0'.repeat(64);

const same = (a: DeviceCredential, b: DeviceCredential) => a.secretHash === b.secretHash && a.streams.join('\n') === b.streams.join('\n');

export class DeviceTable extends EventEmitter {
  private readonly fromConfig: Map<string, DeviceCredential>;
  private pushed = new Map<string, DeviceCredential>();

  constructor(config: DeviceCredential[], private readonly log: Logger) {
    super();
    this.fromConfig = new Map(config.map((d) => [d.name, d]));
  }

  /** The device of that name: the config file's entry wins over a pushed one. */
  get(name: string): DeviceCredential | undefined {
    return this.fromConfig.get(name) ?? this.pushed.get(name);
  }

  /** The device whose name and secret these are, or null. */
  authenticate(name: string, secret: string): DeviceCredential | null {
    const d = this.get(name);
    // an unknown name costs the same hash: the answer's time does not tell which names exist
    const ok = secretMatches(d?.secretHash ?? NO_HASH, secret);
    return d && ok ? d : null;
  }

  /**
   * Replaces the pushed devices; emits 'changed' with the names removed or
   * changed (secret or streams), whose connections must close.
   */
  setPushed(list: DeviceCredential[]): void {
    const next = new Map<string, DeviceCredential>();
    for (const d of list) {
      if (this.fromConfig.has(d.name)) {
        this.log.warn({ device: d.name }, 'a pushed device has the name of one in the hub config file; the file\'s entry is kept');
        continue;
      }
      next.set(d.name, { name: d.name, secretHash: d.secretHash, streams: [...d.streams] });
    }
    const gone = [...this.pushed.values()].filter((d) => { const n = next.get(d.name); return !n || !same(n, d); }).map((d) => d.name);
    this.pushed = next;
    if (gone.length) this.emit('changed', gone);
  }

  size(): number {
    return this.fromConfig.size + this.pushed.size;
  }
}
