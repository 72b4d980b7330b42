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

export interface ClusterOptions {
  /** Replicas per master (0: none, the default). */
  replicas?: number;
  /** cluster-node-timeout: how long a node must be unreachable before it counts as failing. */
  nodeTimeoutMs?: number;
}

/** One line of CLUSTER NODES. */
interface NodeLine {
  id: string;
  port: number;
  flags: string[];
  masterId: string;
  slots: string[];
}

/**
 * A real Redis Cluster of the test's own: masters (and optionally replicas) on free loopback ports,
 * joined by `redis-cli --cluster create`. Fails loudly when redis-server or redis-cli is missing.
 * With replicas, start() returns only once every replica is in sync with its master, so that a
 * test killing a master finds a replica able (and allowed) to take over.
 */
export class RedisClusterNodes {
  private readonly children: ChildProcess[] = [];
  readonly clients: RedisClientType[] = [];
  private readonly dead = new Set<number>();
  private readonly dir = mkdtempSync(join(tmpdir(), "roomcast-cluster-"));

  private constructor(readonly ports: number[]) {}

  static async start(masters = 3, options: ClusterOptions = {}): Promise<RedisClusterNodes> {
    const replicas = options.replicas ?? 0;
    for (const tool of ["redis-server", "redis-cli"]) {
      const found = spawnSync(tool, ["--version"]);
      if (found.error || found.status !== 0) throw new Error(`${tool} is not installed: the Redis Cluster tests need it (apt-get install redis-server)`);
    }
    const ports: number[] = [];
    while (ports.length < masters * (1 + replicas)) {
      // A cluster node also listens on port + 10000: both must be free.
      const port = await freePort();
      if (port < 55_000 && !ports.includes(port) && (await isFree(port + 10_000))) ports.push(port);
    }
    const nodes = new RedisClusterNodes(ports);
    for (const port of ports) {
      const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", nodes.dir, "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`, "--save", "", "--appendonly", "no", "--loglevel", "warning"];
      if (options.nodeTimeoutMs !== undefined) args.push("--cluster-node-timeout", String(options.nodeTimeoutMs));
      if (replicas > 0) {
        // A replica never refuses to take over because its data looks old (the default factor 10
        // does, after a long enough link loss); and the first sync starts at once instead of
        // Redis 7's 5 s wait for more replicas to share a diskless transfer.
        args.push("--cluster-replica-validity-factor", "0", "--repl-diskless-sync-delay", "0");
      }
      const child = spawn("redis-server", args, { stdio: "ignore" });
      killOnExit(child);
      nodes.children.push(child);
    }
    for (const port of ports) {
      const client = createClient({ url: `redis://127.0.0.1:${port}` }) as RedisClientType;
      client.on("error", () => {});
      await waitUntilAsync(async () => client.connect().then(() => true, () => false), `cluster node ${port} up`);
      nodes.clients.push(client);
    }
    await exec("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", String(replicas), "--cluster-yes"]);
    await waitUntilAsync(async () => {
      const infos = await Promise.all(nodes.clients.map((c) => c.sendCommand(["CLUSTER", "INFO"]) as Promise<string>));
      return infos.every((info) => info.includes("cluster_state:ok"));
    }, "cluster_state:ok on every node", 20_000);
    if (replicas > 0) await nodes.waitForReplicas(masters * replicas);
    return nodes;
  }

  /** Every node sees `count` replicas, each with a master, and every replica's link is up. */
  private async waitForReplicas(count: number): Promise<void> {
    await waitUntilAsync(async () => {
      for (const client of this.clients) {
        const lines = await this.clusterNodes(client);
        if (lines.filter((n) => n.flags.includes("slave") && n.masterId !== "-").length !== count) return false;
      }
      const infos = await Promise.all(this.clients.map((c) => c.sendCommand(["INFO", "replication"]) as Promise<string>));
      return infos.filter((info) => info.includes("role:slave") && info.includes("master_link_status:up")).length === count;
    }, `${count} replicas attached and in sync`, 20_000);
  }

  /** A seed node's URL: the cluster client discovers the others from it. */
  get url(): string {
    return `redis://127.0.0.1:${this.ports[0]}`;
  }

  /** A client of a node that has not been killed. */
  get survivor(): RedisClientType {
    const index = this.ports.findIndex((_, i) => !this.dead.has(i));
    return this.clients[index]!;
  }

  /** The index (in `ports`) of the node serving `key`'s slot, as a live node sees it. */
  async nodeOf(key: string): Promise<number> {
    const client = this.survivor;
    const slot = Number(await client.sendCommand(["CLUSTER", "KEYSLOT", key]));
    const ranges = (await client.sendCommand(["CLUSTER", "SLOTS"])) as Array<[number, number, [string, number, ...unknown[]]]>;
    const range = ranges.find(([from, to]) => slot >= Number(from) && slot <= Number(to));
    if (!range) throw new Error(`no node owns slot ${slot}`);
    return this.ports.indexOf(Number(range[2][1]));
  }

  /** The index of the replica of the master at `index`. */
  async replicaOf(index: number): Promise<number> {
    const lines = await this.clusterNodes(this.survivor);
    const master = lines.find((n) => n.port === this.ports[index]);
    const replica = lines.find((n) => n.masterId === master?.id);
    if (!replica) throw new Error(`node ${this.ports[index]} has no replica`);
    return this.ports.indexOf(replica.port);
  }

  /** Waits until the replica at `replica` has applied everything its master has written so far. */
  async waitForReplication(master: number, replica: number): Promise<void> {
    const offset = (info: string, field: string) => Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1] ?? -1);
    const target = offset((await this.clients[master]!.sendCommand(["INFO", "replication"])) as string, "master_repl_offset");
    await waitUntilAsync(
      async () => offset((await this.clients[replica]!.sendCommand(["INFO", "replication"])) as string, "slave_repl_offset") >= target,
      `replica ${this.ports[replica]} at offset ${target}`,
    );
  }

  /** Resolves once every live node's CLUSTER SLOTS names a live master for `key`'s slot. */
  async waitForFailover(key: string, timeoutMs: number): Promise<number> {
    let owner = -1;
    await waitUntilAsync(async () => {
      for (let i = 0; i < this.clients.length; i++) {
        if (this.dead.has(i)) continue;
        const slot = Number(await this.clients[i]!.sendCommand(["CLUSTER", "KEYSLOT", key]));
        const ranges = (await this.clients[i]!.sendCommand(["CLUSTER", "SLOTS"])) as Array<[number, number, [string, number, ...unknown[]]]>;
        const range = ranges.find(([from, to]) => slot >= Number(from) && slot <= Number(to));
        owner = range ? this.ports.indexOf(Number(range[2][1])) : -1;
        if (owner < 0 || this.dead.has(owner)) return false;
      }
      return true;
    }, `a live master for ${key}`, timeoutMs);
    return owner;
  }

  /** The hash slot of `key`. */
  async slotOf(key: string): Promise<number> {
    return Number(await this.survivor.sendCommand(["CLUSTER", "KEYSLOT", key]));
  }

  /** Subscribers of a sharded channel on the node at `index`, as that node counts them. */
  async shardSubscribers(index: number, channel: string): Promise<number> {
    const [, count] = (await this.clients[index]!.sendCommand(["PUBSUB", "SHARDNUMSUB", channel])) as [string, number];
    return Number(count);
  }

  /** How many client connections node `index` has. */
  async connectionCount(index: number): Promise<number> {
    return ((await this.clients[index]!.sendCommand(["CLIENT", "LIST"])) as string).trim().split("\n").length;
  }

  /**
   * Cuts every subscriber connection to node `index` and lets no new connection in, so the
   * subscribers cannot come back until `letIn(index)`. Returns how many were cut.
   */
  async keepSubscribersOut(index: number): Promise<number> {
    const node = this.clients[index]!;
    await node.sendCommand(["CONFIG", "SET", "maxclients", String(await this.connectionCount(index))]);
    return Number(await node.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]));
  }

  async letIn(index: number): Promise<void> {
    await this.clients[index]!.sendCommand(["CONFIG", "SET", "maxclients", "10000"]);
  }

  /**
   * Moves `slot` from the master at `from` to the master at `to` as `redis-cli --cluster reshard`
   * does: IMPORTING on the target, MIGRATING on the source, MIGRATE its keys in batches until the
   * source has none left (new keys go to the target meanwhile, by ASK), then SETSLOT NODE on the
   * target, the source and every other master. `pauseMs` is waited after each batch of
   * `batch` keys (redis-cli's --cluster-pipeline, 10 by default), so that traffic meets the slot
   * half moved. `whenTargetOwns` runs between SETSLOT NODE on the target and on the source: the
   * target serves the slot, and the source may not have heard yet. Returns the keys moved.
   */
  async moveSlot(
    slot: number,
    from: number,
    to: number,
    { batch = 10, pauseMs = 0, whenTargetOwns }: { batch?: number; pauseMs?: number; whenTargetOwns?: () => Promise<void> } = {},
  ): Promise<string[]> {
    const source = this.clients[from]!;
    const target = this.clients[to]!;
    const [sourceId, targetId] = (await Promise.all([source, target].map((c) => c.sendCommand(["CLUSTER", "MYID"])))) as unknown as [string, string];
    await target.sendCommand(["CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceId]);
    await source.sendCommand(["CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetId]);
    const moved: string[] = [];
    for (;;) {
      const keys = (await source.sendCommand(["CLUSTER", "GETKEYSINSLOT", String(slot), String(batch)])) as string[];
      if (keys.length === 0) break;
      await source.sendCommand(["MIGRATE", "127.0.0.1", String(this.ports[to]), "", "0", "5000", "KEYS", ...keys]);
      moved.push(...keys);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    const masters = [to, from, ...this.ports.map((_, i) => i).filter((i) => i !== to && i !== from && !this.dead.has(i))];
    for (const index of masters) {
      const role = (await this.clients[index]!.sendCommand(["ROLE"])) as [string];
      if (role[0] === "master") await this.clients[index]!.sendCommand(["CLUSTER", "SETSLOT", String(slot), "NODE", targetId]);
      if (index === to) await whenTargetOwns?.();
    }
    return moved;
  }

  /** SIGSTOPs one node: it hears nothing, not even the cluster bus, until `resume`. */
  pause(index: number): void {
    this.children[index]!.kill("SIGSTOP");
  }

  resume(index: number): void {
    this.children[index]!.kill("SIGCONT");
  }

  /** SIGKILLs one node: it stays down until the test ends. */
  async kill(index: number): Promise<void> {
    const child = this.children[index]!;
    this.dead.add(index);
    this.clients[index]!.destroy();
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  async stop(): Promise<void> {
    await Promise.all(this.clients.map((c, i) => (this.dead.has(i) ? undefined : c.close().catch(() => {}))));
    for (const child of this.children) child.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async clusterNodes(client: RedisClientType): Promise<NodeLine[]> {
    const text = (await client.sendCommand(["CLUSTER", "NODES"])) as string;
    return text
      .trim()
      .split("\n")
      .map((line) => {
        const [id, address, flags, masterId, , , , , ...slots] = line.split(" ");
        return { id: id!, port: Number(address!.split(/[:@]/)[1]), flags: flags!.split(","), masterId: masterId!, slots };
      });
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}
