// /v1/backup: the running control plane's backup (src/server/backup.ts),
// gzip'd JSON lines streamed as they are made. Admin token only: it holds the
// CAs' keys and the admin token itself.
import type { FastifyInstance } from 'fastify';
import { OutpostError } from '../../core/errors.js';
import { encodeBackup, liveBackup, type StoreKind } from '../backup.js';
import type { RouteDeps } from '../http.js';

/** Where the running control plane keeps what a backup holds besides its records. */
export interface BackupSource {
  dataDir: string;
  store: StoreKind;
}

export function backupRoutes(app: FastifyInstance, { cp }: RouteDeps, source: BackupSource | null): void {
  app.get('/v1/backup', async (_req, reply) => {
    if (!source) throw new OutpostError('E_NOT_FOUND', 'this control plane was started without a data dir to back up');
    const body = encodeBackup(await liveBackup(cp, source));
    return reply.type('application/gzip').header('content-disposition', 'attachment; filename="outpost-backup.jsonl.gz"').send(body);
  });
}
