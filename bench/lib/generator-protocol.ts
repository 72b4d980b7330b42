/** The orchestrator <-> generator IPC messages. */

export interface ClientPlan {
  /** Index into ConnectCommand.targets: the server process this client connects to. */
  target: number;
  room: string;
}

export interface ConnectCommand {
  cmd: "connect";
  targets: string[];
  namespace: string;
  clients: ClientPlan[];
  /** Room sizes over every generator, when clients are split across several. */
  roomSizes?: Record<string, number>;
  /** First client number of this generator, for unique names. */
  idBase: number;
  concurrency: number;
  timeoutMs: number;
}

export interface RunCommand {
  cmd: "run";
  /** Messages per second over all senders. */
  rate: number;
  warmupMs: number;
  measureMs: number;
  drainMs: number;
  textBytes: number;
  /** Send a clientMsgId with every message (roomcast then also stores a dedupe key). */
  clientMsgId?: boolean;
  /** Only members of these rooms send; all by default. */
  senderRooms?: string[];
}

export type GeneratorCommand = ConnectCommand | RunCommand | { cmd: "status" } | { cmd: "close" };

export interface LatencySummary {
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface RunResult {
  offeredRate: number;
  windowMs: number;
  /** Messages sent in the measured window. */
  sent: number;
  /** Messages not sent because the connection was closed. */
  unsent: number;
  sentPerSec: number;
  /** Deliveries that arrived during the window (any message), and per second. */
  deliveries: number;
  deliveriesPerSec: number;
  /** Deliveries the window's messages should make, and how many never came after the drain. */
  expected: number;
  lost: number;
  duplicates: number;
  latencyMs: LatencySummary;
  /** The generator's CPU over the window, in cores (1 = one core busy). */
  generatorCpuShare: number;
  generatorLoopDelayP99Ms: number;
  acksOk: number;
  acksFailed: number;
  /**
   * The window's messages by their ack, after the drain: failed (an error ack), unacked (none came),
   * ackedOkButLost (acked ok, yet some member never got it: the guarantee broken), and
   * failedButDelivered (acked with an error, yet delivered: a client retrying would duplicate it).
   */
  windowAcks: { failed: number; unacked: number; ackedOkButLost: number; failedButDelivered: number };
  ackErrors: Record<string, number>;
  closedConnections: number;
  closeReasons: Record<string, number>;
  otherEvents: number;
}

export type GeneratorReport =
  | { type: "ready" }
  | { type: "progress"; phase: string; done: number; failed: number; total: number }
  | { type: "connected"; connected: number; failed: number; errors: Record<string, number>; ms: number }
  | { type: "window"; edge: "start" | "end" }
  | { type: "result"; result: RunResult }
  | { type: "status"; open: number; closed: number; rssBytes: number }
  | { type: "error"; message: string };
