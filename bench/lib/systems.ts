import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { freePort, launch, procSample, stop, waitHttpReady, type Launched } from "./processes.js";

export const SYSTEMS = ["roomcast", "classic", "sharded", "plain"] as const;
export type SystemName = (typeof SYSTEMS)[number];

export const SYSTEM_LABELS: Record<SystemName, string> = {
  roomcast: "roomcast",
  classic: "Socket.IO + redis-adapter (classic)",
  sharded: "Socket.IO + redis-adapter (sharded, dynamic)",
  plain: "Socket.IO, one process, no Redis",
};

export const usesRedis = (system: SystemName): boolean => system !== "plain";

const ROOMCAST_CLI = process.env.BENCH_ROOMCAST_CLI ?? fileURLToPath(new URL("../../src/cli.js", import.meta.url));
const PEER = fileURLToPath(new URL("../peers/socketio-peer.js", import.meta.url));

export interface ClusterOptions {
  /** Redis URL for process i (a tap's, to count what each process receives). */
  redisUrl: (index: number) => string;
  /** Write a V8 CPU profile per roomcast process into this folder. */
  cpuProfDir?: string;
}

/** K server processes of one system, each on its own loopback port. */
export class Cluster {
  private constructor(
    readonly system: SystemName,
    private readonly processes: Array<{ launched: Launched; url: string }>,
  ) {}

  static async start(system: SystemName, k: number, options: ClusterOptions): Promise<Cluster> {
    const prefix = `bench${randomBytes(4).toString("hex")}:`;
    const processes: Array<{ launched: Launched; url: string }> = [];
    for (let i = 0; i < k; i++) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const common = { PORT: String(port), REDIS_URL: usesRedis(system) ? options.redisUrl(i) : "" };
      const launched =
        system === "roomcast"
          ? launch(process.execPath, [...(options.cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", options.cpuProfDir] : []), ROOMCAST_CLI], {
              ...common,
              HOST: "127.0.0.1",
              NODE_ID: `bench-${i + 1}`,
              REDIS_PREFIX: prefix,
              // Rate limits are a product feature, not what is measured here.
              MESSAGE_RATE: "1000000",
              MESSAGE_BURST: "1000000",
              LOG_LEVEL: "warn",
            })
          : launch(process.execPath, [PEER], { ...common, PEER_ADAPTER: system });
      processes.push({ launched, url });
    }
    const cluster = new Cluster(system, processes);
    try {
      await Promise.all(processes.map((p) => waitHttpReady(`${p.url}/readyz`, p.launched)));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get urls(): string[] {
    return this.processes.map((p) => p.url);
  }

  get pids(): number[] {
    return this.processes.map((p) => p.launched.child.pid!);
  }

  /** Per process: CPU so far (us) and RSS (bytes). */
  sample(): Array<{ cpuUs: number; rssBytes: number; syscalls: number; wakeups: number }> {
    return this.pids.map((pid) => procSample(pid));
  }

  /** Whatever a process printed that was not expected (roomcast logs warnings and errors only). */
  outputs(): string[] {
    return this.processes.map((p) => p.launched.output().trim()).filter(Boolean);
  }

  exitedEarly(): boolean {
    return this.processes.some((p) => p.launched.child.exitCode !== null || p.launched.child.signalCode !== null);
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => stop(p.launched.child, 10_000)));
  }
}
