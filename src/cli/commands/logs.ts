// outpost logs APP [--follow]: output fetched through the agents' own connections.
// What a replica wrote is printed with its control characters made visible:
// a replica must not drive the operator's terminal (src/core/text.ts).
import { StringDecoder } from 'node:string_decoder';
import type { ApiClient } from '../../contract/client.js';
import { neutraliseControls } from '../../core/text.js';

export async function logs(client: ApiClient, app: string, follow: boolean, tail: number, container?: string, replica?: string): Promise<void> {
  const res = await client.logs(app, { follow, tail, container, replica });
  // a character split across two chunks is decoded whole, and a \r that ends
  // a chunk waits for the next one (it may be half of a \r\n)
  const utf8 = new StringDecoder('utf8');
  let held = '';
  for await (const chunk of res) {
    const text = held + utf8.write(chunk as Buffer);
    held = text.endsWith('\r') ? '\r' : '';
    process.stdout.write(neutraliseControls(held ? text.slice(0, -1) : text));
  }
  process.stdout.write(neutraliseControls(held + utf8.end()));
}
