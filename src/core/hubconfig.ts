// The file `outpost agent|hub --hub-config FILE` reads (YAML): streams a hub
// runs besides those its apps declare, retention, an external broker. Fields
// say what they mean with .describe(): docs/reference/hub.md is generated from them.
import { z } from 'zod';
import { streamsSchema } from './pipeline.js';

export const hubConfigSchema = z.object({
  streams: streamsSchema.default({}).describe('streams this hub runs besides its apps\' (the same fields as a manifest\'s `streams`)'),
  retention: z.object({
    maxAgeMs: z.number().int().positive().optional().describe('raw points (and acknowledged window results) older than this are deleted; 24 h when absent'),
    maxBytes: z.number().int().positive().optional().describe('above this many bytes of raw points the oldest are deleted; 1 GiB when absent'),
  }).strict().default({}).describe('how long the hub keeps what it stores; window results not yet acknowledged by the control plane are never deleted'),
  mqttUrl: z.string().regex(/^mqtts?:\/\//, 'an mqtt:// or mqtts:// URL').optional().describe('subscribe to this broker instead of embedding one (`--hub-mqtt-url` wins)'),
}).strict();

export type HubFileConfig = z.infer<typeof hubConfigSchema>;
