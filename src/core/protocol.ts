// Messages on the agent's one long-lived connection (WebSocket, JSON text).
// Desired state flows down as the node's whole assignment set (level-triggered:
// applying it twice changes nothing); status, timings and log data flow up.
import type { Assignment, HubStats, NodeInfo, PerItemUs, ReplicaStatus, SiteRecord, UplinkWindow } from './types.js';

export type AgentToServer =
  | { type: 'register'; node: NodeInfo }
  | { type: 'status'; replicas: ReplicaStatus[]; pulled?: { bytes: number; ms: number } | null }
  | { type: 'images'; images: string[]; layers: NodeInfo['layers']; imageLayers: NodeInfo['imageLayers'] }
  | { type: 'rtt'; rttMs: Record<string, number> }
  | { type: 'stages'; app: string; perItemUs: PerItemUs }
  | { type: 'logs.data'; reqId: string; data: string }
  | { type: 'logs.end'; reqId: string; error?: string }
  /** window results, oldest first, each once until acknowledged (re-sent after a reconnect) */
  | { type: 'windows'; hubId: string; items: UplinkWindow[] }
  | { type: 'hub'; stats: HubStats };

export type ServerToAgent =
  | { type: 'welcome'; node: string }
  | { type: 'assign'; replicas: Assignment[] }
  | { type: 'sites'; sites: SiteRecord[] }
  | { type: 'logs'; reqId: string; replicaId: string; follow: boolean; tail: number }
  | { type: 'logs.cancel'; reqId: string }
  | { type: 'error'; code: string; message: string }
  /** the sequence numbers now stored (or already held: a re-send) */
  | { type: 'windows.ack'; hubId: string; seqs: number[] };

export const AGENT_PATH = '/v1/agent/connect';
