import { spawnSync } from "node:child_process";
import { createClient, type RedisClientType } from "@redis/client";
import { freePort, launch, sleep, stop, type Launched } from "./processes.js";

/**
 * The bench's own redis-server on a free loopback port (never the machine's 6379), without
 * persistence: the bench measures pub/sub and scripts, not the disk.
 */
export class BenchRedis {
  private constructor(
    readonly port: number,
    private readonly launched: Launched,
    private readonly client: RedisClientType,
  ) {}

  static async start(): Promise<BenchRedis> {
    if (spawnSync("redis-server", ["--version"]).status !== 0) throw new Error("redis-server is not installed (apt-get install redis-server)");
    const port = await freePort();
    const launched = launch("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"], {});
    const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } }) as RedisClientType;
    client.on("error", () => {}); // reported through the commands that fail
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await client.connect();
        break;
      } catch (err) {
        if (Date.now() > deadline || launched.child.exitCode !== null) throw new Error(`redis-server did not start: ${(err as Error).message} ${launched.output()}`);
        await sleep(100);
      }
    }
    return new BenchRedis(port, launched, client);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.launched.child.pid!;
  }

  /** The server's own CPU (used_cpu_sys + used_cpu_user), in microseconds. */
  async cpuUs(): Promise<number> {
    const info = await this.client.info("cpu");
    const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? NaN);
    return (field("used_cpu_sys") + field("used_cpu_user")) * 1e6;
  }

  async usedMemory(): Promise<number> {
    const info = await this.client.info("memory");
    return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
  }

  /** Per connected client: its local port and how many channels, patterns and shard channels it holds. */
  async clientSubscriptions(): Promise<Array<{ port: number; sub: number; psub: number; ssub: number }>> {
    const list = (await this.client.sendCommand(["CLIENT", "LIST"])) as string;
    return list
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const get = (key: string): string => new RegExp(`(?:^| )${key}=(\\S*)`).exec(line)?.[1] ?? "";
        return { port: Number(get("addr").split(":").pop()), sub: Number(get("sub")), psub: Number(get("psub")), ssub: Number(get("ssub")) };
      });
  }

  async stop(): Promise<void> {
    await this.client.close().catch(() => {});
    await stop(this.launched.child);
  }
}
