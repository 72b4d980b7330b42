import type { LatencySummary, RunResult } from "./generator-protocol.js";
import type { SystemName } from "./systems.js";

/** One measured window of traffic against one system. */
export interface TrafficFigures {
  system: SystemName;
  processes: number;
  connections: number;
  /** Messages per second the generator was asked to send, and the deliveries that makes. */
  offeredMsgPerSec: number;
  offeredDeliveriesPerSec: number;
  sentPerSec: number;
  deliveriesPerSec: number;
  latencyMs: LatencySummary;
  expected: number;
  lost: number;
  duplicates: number;
  /** Error acks by code, from the window's start to the drain's end. */
  ackErrors: Record<string, number>;
  /** The window's messages by their ack (see RunResult.windowAcks). */
  windowAcks: RunResult["windowAcks"];
  closedConnections: number;
  /** Server CPU (all K processes) per delivered message, and in cores over the window. */
  serverCpuUsPerDelivery: number;
  serverCpuCores: number;
  /** read + write syscalls of all server processes per delivered message: each one a wake-up somewhere. */
  serverSyscallsPerDelivery: number;
  /** Times the servers' event loops slept and were woken, per delivered message. */
  serverWakeupsPerDelivery: number;
  /** Redis CPU per message sent, and in cores. */
  redisCpuUsPerMessage: number | null;
  redisCpuCores: number | null;
  rssMBPerProcess: number[];
  /** (RSS now - RSS before the clients connected) / connections, all processes. */
  rssKBPerConnection: number;
  generatorCpuCores: number;
  generatorLoopDelayP99Ms: number;
  /** Machine CPU busy over the window, in cores, and the part no process of the bench used (others' load). */
  machineBusyCores: number;
  otherCpuCores: number;
  windowMs: number;
  /** The window on the machine's monotonic clock (us), the one V8 CPU profiles use. */
  windowMonoUs: [number, number];
  /** fanout-scale only: pub/sub messages each process received from Redis, per message sent. */
  receivedPerMessage?: number[];
  /** Messages received from Redis / messages that a process with members needed. */
  amplification?: number;
  subscriptions?: Array<{ sub: number; psub: number; ssub: number }>;
  /** The raw generator result, for anything not lifted above. */
  raw: RunResult;
  /** With --repeat: how many runs the figures above are medians of (losses are sums), and each run's. */
  runs?: number;
  perRun?: Array<{ serverCpuUsPerDelivery: number; p50: number; p99: number; redisCpuUsPerMessage: number | null; lost: number; otherCpuCores: number }>;
}

export interface IdleFigures {
  system: SystemName;
  processes: number;
  connections: number;
  failed: number;
  connectMs: number;
  stillOpen: number;
  rssMBPerProcess: number[];
  rssKBPerConnection: number;
  redisKBPerConnection: number | null;
  idleCpuCores: number;
  idleCpuUsPerConnectionPerSec: number;
  otherCpuCores: number;
  windowMs: number;
}

export interface SaturateFigures {
  system: SystemName;
  steps: TrafficFigures[];
  /** Highest deliveries/s with p99 under 50 ms, and under 500 ms. */
  knee50: number;
  knee500: number;
  stoppedBecause: string;
}

export interface ScenarioResult<T> {
  name: string;
  description: string;
  params: Record<string, unknown>;
  systems: Partial<Record<SystemName, T>>;
  errors: Partial<Record<SystemName, string>>;
}

export interface BenchResults {
  date: string;
  quick: boolean;
  machine: { cpus: number; model: string; node: string; redis: string; loadAverageAtStart: number[] };
  /** The roomcast measured: the checkout's commit, and whether src/ had uncommitted changes. */
  source: { commit: string; srcDirty: boolean };
  options: Record<string, unknown>;
  durationSec: number;
  dm?: ScenarioResult<TrafficFigures>;
  group?: ScenarioResult<TrafficFigures>;
  fanout?: ScenarioResult<TrafficFigures>;
  idle?: ScenarioResult<IdleFigures>;
  saturate?: ScenarioResult<SaturateFigures>;
  profile?: { scenario?: string; files: string[]; windowOnly: boolean; top: Array<{ selfMs: number; share: number; fn: string; where: string }>; run?: TrafficFigures };
}
