// The last route table the control plane sent, kept on the node (routes.json
// in the agent's data dir, written whole): an agent that restarts with no
// control plane reachable serves its site proxy from it at once, as it runs
// its saved workloads (docs/reliability.md, autonomy). An endpoint gone
// meanwhile is failed over on connect; the next table the control plane
// sends replaces it.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { AppRoute } from '../../core/routes.js';
import { appRouteSchema } from '../../contract/protocol.js';
import { writePrivateAtomic } from '../../files/private.js';

const savedSchema = z.object({ apps: z.array(appRouteSchema).max(1000), savedAt: z.number() });

export class SavedRoutes {
  private readonly file: string;
  private last = '';

  constructor(dir: string) {
    this.file = path.join(dir, 'routes.json');
  }

  /** The saved table; null when there is none or it does not pass the protocol's schema (a damaged file serves nothing). */
  load(): AppRoute[] | null {
    try {
      const r = savedSchema.safeParse(JSON.parse(fs.readFileSync(this.file, 'utf8')));
      return r.success ? r.data.apps : null;
    } catch {
      return null;
    }
  }

  save(apps: AppRoute[], now = Date.now()): void {
    const text = JSON.stringify(apps);
    if (text === this.last) return;
    writePrivateAtomic(this.file, `{"apps":${text},"savedAt":${now}}`);
    this.last = text;
  }
}
