import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type RedisClientType } from "@redis/client";
import { waitUntil } from "./client.js";

const children = new Set<ChildProcess>();
// No server or redis-server a test started may outlive the test run.
process.once("exit", () => children.forEach((child) => child.kill("SIGKILL")));

/** Registers a child process to be killed when the test process exits. */
export function killOnExit(child: ChildProcess): void {
  children.add(child);
  child.once("exit", () => children.delete(child));
}

/** A free TCP port on loopback (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/**
 * A real redis-server of the test's own, on a free loopback port, with an append-only file so a
 * restart keeps what was acknowledged. Fails loudly when redis-server is not installed.
 */
export class RedisProcess {
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), "roomcast-redis-"));
  client!: RedisClientType;

  private constructor(readonly port: number) {}

  static async start(): Promise<RedisProcess> {
    const found = spawnSync("redis-server", ["--version"]);
    if (found.error || found.status !== 0) throw new Error("redis-server is not installed: the Redis tests need it (apt-get install redis-server)");
    const redis = new RedisProcess(await freePort());
    await redis.launch();
    redis.client = createClient({ url: redis.url, socket: { reconnectStrategy: 50 } }) as RedisClientType;
    redis.client.on("error", () => {}); // the tests restart this server on purpose
    await redis.client.connect();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server (again) on the same port and data directory. */
  async launch(): Promise<void> {
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--loglevel", "warning"];
    const child = spawn("redis-server", args, { stdio: "ignore" });
    this.child = child;
    killOnExit(child);
    await waitUntil(() => spawnSync("redis-cli", ["-p", String(this.port), "ping"]).stdout?.toString().trim() === "PONG", "redis-server to answer", 10_000);
  }

  /** SIGKILL: no goodbye, as a crash. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  pause(): void {
    this.child?.kill("SIGSTOP");
  }

  resume(): void {
    this.child?.kill("SIGCONT");
  }

  /** Channels with subscribers, and how many each has. */
  async channels(pattern = "*"): Promise<Map<string, number>> {
    const names = (await this.client.sendCommand(["PUBSUB", "CHANNELS", pattern])) as string[];
    if (names.length === 0) return new Map();
    const flat = (await this.client.sendCommand(["PUBSUB", "NUMSUB", ...names])) as Array<string | number>;
    const counts = new Map<string, number>();
    for (let i = 0; i < flat.length; i += 2) counts.set(String(flat[i]), Number(flat[i + 1]));
    return counts;
  }

  async stop(): Promise<void> {
    await this.client.close().catch(() => {});
    this.resume();
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

