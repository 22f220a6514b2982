// The file `outpost agent|hub --hub-config FILE` reads (YAML): streams a hub
// runs besides those its apps declare, retention, an external broker, the
// devices it serves and how. Fields say what they mean with .describe():
// docs/reference/hub.md is generated from them.
import { z } from 'zod';
import { streamsSchema } from './pipeline.js';
import { devicesSchema } from './devices.js';

export const hubConfigSchema = z.object({
  streams: streamsSchema.default({}).describe('streams this hub runs besides its apps\' (the same fields as a manifest\'s `streams`)'),
  retention: z.object({
    maxAgeMs: z.number().int().positive().optional().describe('raw points (and acknowledged window results) older than this are deleted; 24 h when absent'),
    maxBytes: z.number().int().positive().optional().describe('above this many bytes of raw points the oldest are deleted; 1 GiB when absent'),
  }).strict().default({}).describe('how long the hub keeps what it stores; window results not yet acknowledged by the control plane are never deleted'),
  mqttUrl: z.string().regex(/^mqtts?:\/\//, 'an mqtt:// or mqtts:// URL').optional().describe('subscribe to this broker instead of embedding one (`--hub-mqtt-url` wins)'),
  devices: devicesSchema.default([]).describe('devices this hub serves besides those the control plane pushes: `[{name, secretHash, streams}]` (a name in both: this entry wins)'),
  anonymous: z.boolean().default(false).describe('serve clients without credentials with every right (a closed network only; `--hub-anonymous` too)'),
  allowOrigins: z.array(z.string().regex(/^(https?:\/\/[^/\s]+|null)$/, 'an origin: http(s)://host[:port]')).default([]).describe('origins whose web pages may call the hub (CORS); a request with any other `Origin` is refused'),
  maxMqttPacketBytes: z.number().int().min(1024).max(256 * 1024 * 1024).default(1024 * 1024).describe('an MQTT packet longer than this closes its connection, before it is read'),
  tls: z.object({
    cert: z.string().min(1).describe('PEM certificate file (with its chain), for HTTPS and MQTT over TLS; relative paths are from this file\'s directory'),
    key: z.string().min(1).describe('its PEM key file'),
    ca: z.string().min(1).optional().describe('the PEM file of the CA that signed it (completes the chain when it is an intermediate)'),
    plaintextMqtt: z.boolean().default(false).describe('keep plaintext MQTT on `--hub-mqtt-port` beside MQTT over TLS (devices that cannot do TLS)'),
  }).strict().optional().describe('HTTPS on the HTTP port and MQTT over TLS on `--hub-mqtts-port` (8883); plaintext listeners off'),
}).strict();

export type HubFileConfig = z.infer<typeof hubConfigSchema>;
