import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient, type RedisClientType } from "@redis/client";
import { waitUntilAsync } from "./client.js";
import { createServer } from "node:net";
import { freePort, killOnExit } from "./redis.js";

const exec = promisify(execFile);

/**
 * A real Redis Cluster of the test's own: three masters (no replicas) on free loopback ports,
 * joined by `redis-cli --cluster create`. Fails loudly when redis-server or redis-cli is missing.
 */
export class RedisClusterNodes {
  private readonly children: ChildProcess[] = [];
  readonly clients: RedisClientType[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), "roomcast-cluster-"));

  private constructor(readonly ports: number[]) {}

  static async start(masters = 3): Promise<RedisClusterNodes> {
    for (const tool of ["redis-server", "redis-cli"]) {
      const found = spawnSync(tool, ["--version"]);
      if (found.error || found.status !== 0) throw new Error(`${tool} is not installed: the Redis Cluster tests need it (apt-get install redis-server)`);
    }
    const ports: number[] = [];
    while (ports.length < masters) {
      // A cluster node also listens on port + 10000: both must be free.
      const port = await freePort();
      if (port < 55_000 && !ports.includes(port) && (await isFree(port + 10_000))) ports.push(port);
    }
    const nodes = new RedisClusterNodes(ports);
    for (const port of ports) {
      const child = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--dir", nodes.dir, "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`, "--save", "", "--appendonly", "no", "--loglevel", "warning"],
        { stdio: "ignore" },
      );
      killOnExit(child);
      nodes.children.push(child);
    }
    for (const port of ports) {
      const client = createClient({ url: `redis://127.0.0.1:${port}` }) as RedisClientType;
      client.on("error", () => {});
      await waitUntilAsync(async () => client.connect().then(() => true, () => false), `cluster node ${port} up`);
      nodes.clients.push(client);
    }
    await exec("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"]);
    await waitUntilAsync(async () => {
      const infos = await Promise.all(nodes.clients.map((c) => c.sendCommand(["CLUSTER", "INFO"]) as Promise<string>));
      return infos.every((info) => info.includes("cluster_state:ok"));
    }, "cluster_state:ok on every node", 20_000);
    return nodes;
  }

  /** A seed node's URL: the cluster client discovers the others from it. */
  get url(): string {
    return `redis://127.0.0.1:${this.ports[0]}`;
  }

  /** The index (in `ports`) of the node serving `key`'s slot. */
  async nodeOf(key: string): Promise<number> {
    const slot = Number(await this.clients[0]!.sendCommand(["CLUSTER", "KEYSLOT", key]));
    const ranges = (await this.clients[0]!.sendCommand(["CLUSTER", "SLOTS"])) as Array<[number, number, [string, number, ...unknown[]]]>;
    const range = ranges.find(([from, to]) => slot >= Number(from) && slot <= Number(to));
    if (!range) throw new Error(`no node owns slot ${slot}`);
    return this.ports.indexOf(Number(range[2][1]));
  }

  /** SIGKILLs one node: its shard is down until the test ends. */
  async kill(index: number): Promise<void> {
    const child = this.children[index]!;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  async stop(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close().catch(() => {})));
    for (const child of this.children) child.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}
