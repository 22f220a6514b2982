// Data-hub devices: credentials the control plane issues and pushes to the
// hubs that should know them (every hub, or one site's). The secret is shown
// once; the store and the hubs keep its sha256.
import { OutpostError } from '../../core/errors.js';
import { NAME_RE } from '../../core/names.js';
import { DEVICE_NAME_RE, newDeviceSecret, type DeviceCredential } from '../../core/devices.js';
import { STREAM_RE } from '../../core/pipeline.js';
import type { DeviceRecord } from '../../core/types.js';
import type { Writer } from '../writer.js';

export const MAX_DEVICES = 10_000;

export class Devices {
  private readonly listeners: (() => void)[] = [];

  constructor(private readonly w: Writer, private readonly now: () => number) {}

  /** `f` hears of every change (the gateway pushes the new lists) */
  subscribe(f: () => void): void {
    this.listeners.push(f);
  }

  list(): DeviceRecord[] {
    return this.w.state.list('devices');
  }

  /** The credentials a hub at `site` gets: every device for all sites, and its site's. */
  forSite(site: string | null): DeviceCredential[] {
    return this.list().filter((d) => d.site === null || d.site === site).map((d) => ({ name: d.name, secretHash: d.secretHash, streams: d.streams }));
  }

  async create(name: string, streams: string[], site: string | null): Promise<{ record: DeviceRecord; secret: string }> {
    if (!DEVICE_NAME_RE.test(name)) throw new OutpostError('E_INVALID', 'device names are 1-128 of [A-Za-z0-9_.-], not starting with "."', { path: 'name' });
    if (!Array.isArray(streams) || streams.length === 0 || streams.length > 64) throw new OutpostError('E_INVALID', 'streams: 1 to 64 stream names the device may publish to', { path: 'streams' });
    streams.forEach((s, i) => {
      if (typeof s !== 'string' || !STREAM_RE.test(s)) throw new OutpostError('E_INVALID', `"${s}" is not a stream name`, { path: `streams.${i}` });
    });
    if (site !== null && !NAME_RE.test(site)) throw new OutpostError('E_INVALID', 'site must be [a-z0-9-], 1-63 characters', { path: 'site' });
    const { secret, secretHash } = newDeviceSecret();
    const record: DeviceRecord = { name, secretHash, streams: [...new Set(streams)], site, createdAt: this.now() };
    await this.w.run((s) => {
      // the whole list goes to every hub in one message (at most MAX_DEVICES entries, as the protocol allows)
      if (s.count('devices') >= MAX_DEVICES) throw new OutpostError('E_CONFLICT', `there are ${MAX_DEVICES} devices already, the most a hub takes`);
      if (s.get('devices', name)) throw new OutpostError('E_CONFLICT', `device ${name} exists: \`outpost device rm ${name}\` first to issue a new secret`, { path: 'name' });
      return { changes: [{ kind: 'devices', key: name, doc: record }], result: undefined };
    });
    this.announce();
    return { record, secret };
  }

  async remove(name: string): Promise<void> {
    await this.w.run((s) => {
      if (!s.get('devices', name)) throw new OutpostError('E_NOT_FOUND', `no device named "${name}"`, { path: 'name' });
      return { changes: [{ kind: 'devices', key: name, doc: null }], result: undefined };
    });
    this.announce();
  }

  /** The hubs get the device list again (after a change, here or by another instance). */
  announce(): void {
    this.listeners.forEach((f) => f());
  }
}
