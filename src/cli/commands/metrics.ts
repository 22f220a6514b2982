// outpost metrics: GET /metrics as Prometheus gets it, all of it or the
// metrics whose names start with a prefix given (each with its HELP and TYPE).
import type { ApiClient } from '../../contract/client.js';

export async function metrics(client: ApiClient, prefixes: string[]): Promise<void> {
  const text = await client.metrics();
  if (!prefixes.length) return void process.stdout.write(text);
  const keep = (line: string) => {
    const name = line.startsWith('# ') ? line.split(' ')[2] ?? '' : line.split(/[{ ]/)[0]!;
    return prefixes.some((p) => name.startsWith(p));
  };
  process.stdout.write(text.split('\n').filter((l) => l && keep(l)).join('\n') + '\n');
}
