// outpost logs APP [--follow]: output fetched through the agents' own connections.
import type { ApiClient } from '../../contract/client.js';

export async function logs(client: ApiClient, app: string, follow: boolean, tail: number): Promise<void> {
  const res = await client.logs(app, { follow, tail });
  for await (const chunk of res) process.stdout.write(chunk as Buffer);
}
