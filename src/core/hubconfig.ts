// The file `outpost agent|hub --hub-config FILE` reads (YAML): streams a hub
// runs besides those its apps declare, retention, an external broker, the
// devices it serves and how. Fields say what they mean with .describe():
// docs/reference/hub.md is generated from them.
import { z } from 'zod';
import { STREAM_RE, streamsSchema } from './pipeline.js';
import { devicesSchema } from './devices.js';

const BRIDGE_FIELDS = /\{(hub|stream|kind|device)\}/g;

export const bridgeSchema = z.object({
  url: z.string().regex(/^mqtts?:\/\//, 'an mqtt:// or mqtts:// URL').describe('the upstream (cloud) MQTT broker'),
  topic: z.string().min(1).max(512).default('outpost/{hub}/{stream}/{kind}')
    .refine((t) => !/[+#]/.test(t.replace(BRIDGE_FIELDS, '')), 'a topic, not a filter: no + or #')
    .refine((t) => !/\{(?!(hub|stream|kind|device)\})/.test(t), 'fields are {hub}, {stream}, {kind} and {device}')
    .describe('the topic of each message: {hub} (the hub\'s id), {stream}, {kind} (windows or points), {device} (_ when none)'),
  forward: z.array(z.enum(['windows', 'points'])).min(1).default(['windows']).describe('what is sent: window results, raw points (a message per stored batch), or both'),
  streams: z.array(z.string().regex(STREAM_RE)).optional().describe('only these streams (all when absent)'),
  clientId: z.string().min(1).max(128).optional().describe('the MQTT client id (outpost-bridge-HUBID when absent)'),
  username: z.string().max(256).optional().describe('the MQTT username'),
  passwordFile: z.string().min(1).optional().describe('a file holding the MQTT password (relative paths are from this file\'s directory)'),
  ca: z.string().min(1).optional().describe('a PEM file of the CA to verify an mqtts:// broker with (the system\'s CAs when absent)'),
}).strict();

export type BridgeConfig = z.infer<typeof bridgeSchema>;

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
  bridge: bridgeSchema.optional().describe('forward window results and/or raw points to an upstream MQTT broker too (QoS 1, store-and-forward from the hub\'s disk; each message carries an `id` to keep one of a re-send by)'),
}).strict();

export type HubFileConfig = z.infer<typeof hubConfigSchema>;
