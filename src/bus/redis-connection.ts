import { createClient, createCluster, type RedisClientType, type RedisClusterType } from "@redis/client";
import type { Logger } from "pino";
import { Deadlines } from "./deadlines.js";
import { withTimeout } from "./redis-scripts.js";

/** How long start-up waits for Redis before giving up with a clear error. */
const CONNECT_TIMEOUT_MS = 10_000;

export interface RedisConnectionOptions {
  url: string;
  /** "cluster": `url` is one node of a Redis Cluster; rooms spread over its shards (sharded pub/sub). */
  mode: "single" | "cluster";
  logger: Logger;
  /** Longest wait for one command: a paused or unreachable Redis must not hang a client's request. */
  commandTimeoutMs: number;
  /** Shown by CLIENT LIST, so an operator can tell the processes' connections apart. */
  name: string;
}

export type Listener = (payload: string) => void;

/** The typed commands presence uses; a single node's client and a cluster's both route them by key. */
export interface RedisCommands {
  hSet(key: string, field: string, value: string): Promise<number>;
  hDel(key: string, field: string): Promise<number>;
  hGetAll(key: string): Promise<Record<string, string>>;
  zAdd(key: string, member: { score: number; value: string }): Promise<number>;
  zRem(key: string, member: string): Promise<number>;
  zRangeByScore(key: string, min: string | number, max: string | number): Promise<string[]>;
}

/**
 * A process's link to Redis: one node or a Redis Cluster.
 *
 * One node: one RESP3 connection for commands and subscriptions (node-redis's default RESP3 lets
 * a subscribed connection run commands). One connection is cheaper than two: the reply to a
 * publish and the message it publishes to this process arrive together, in one read, instead of
 * waking the process twice. node-redis reconnects by itself and restores subscriptions before it
 * reports ready again.
 *
 * Cluster: node-redis's cluster client routes each command by its key's slot; a room's keys and
 * its channel share the hash tag {room}, so a room lives on one shard, its scripts stay
 * single-slot, and its channel is a sharded channel (SSUBSCRIBE / SPUBLISH) served by that shard
 * alone: a shard carries only its rooms' traffic.
 */
export class RedisConnection {
  readonly commands: RedisCommands;
  readonly sharded: boolean;
  private readonly single: RedisClientType | undefined;
  private readonly cluster: RedisClusterType | undefined;
  private readonly reconnectHandlers: Array<() => void> = [];
  private lastError: unknown;
  private readonly deadlines: Deadlines;

  constructor(options: RedisConnectionOptions) {
    const { url, logger } = options;
    this.deadlines = new Deadlines(options.commandTimeoutMs);
    this.sharded = options.mode === "cluster";
    const clientOptions = {
      RESP: 3 as const,
      // Our own Deadlines bound every command; node-redis's per-command AbortSignal.timeout
      // (5 s by default) costs a timer, a signal and a listener per command.
      commandOptions: { timeout: 0 },
      // Fail fast while disconnected instead of queueing: a message gets `unavailable`, not a hang.
      disableOfflineQueue: true,
      // A ping notices a dead or paused server even when no room is busy.
      pingInterval: 1000,
      socket: {
        connectTimeout: 2000,
        socketTimeout: 5000,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000),
      },
    };
    let everReady = false;
    let down = false;
    const onError = (err: unknown): void => {
      this.lastError = err;
      if (!down && everReady) logger.warn({ err }, "redis connection lost");
      down = true;
    };
    const onReady = (): void => {
      if (everReady) {
        logger.info("redis connection restored");
        for (const handler of this.reconnectHandlers) handler();
      }
      down = false;
    };
    if (this.sharded) {
      this.cluster = createCluster({ rootNodes: [{ url }], defaults: { ...clientOptions, name: options.name } }) as unknown as RedisClusterType;
      this.cluster.on("error", onError);
      this.cluster.on("node-error", onError);
      // A node's connection (commands or a shard's subscriptions) coming back may have lost pushes
      // of the rooms on that shard. node-ready also fires for a connection opened for the first
      // time (a shard's first subscription), which lost nothing: only one that was reconnecting counts.
      const reconnecting = new Set<string>();
      const nodeOf = (info: { host: string; port: number }): string => `${info.host}:${info.port}`;
      this.cluster.on("node-reconnecting", (info: { host: string; port: number }) => reconnecting.add(nodeOf(info)));
      this.cluster.on("node-ready", (info: { host: string; port: number }) => {
        if (reconnecting.delete(nodeOf(info))) onReady();
      });
      this.cluster.on("connect", () => (everReady = true));
      this.commands = this.cluster as unknown as RedisCommands;
    } else {
      this.single = createClient({ url, name: options.name, ...clientOptions }) as unknown as RedisClientType;
      this.single.on("error", onError);
      this.single.on("ready", () => {
        onReady();
        everReady = true;
      });
      this.commands = this.single as unknown as RedisCommands;
    }
  }

  /** Resolves once connected; rejects, naming the cause, if Redis cannot be reached at start. */
  async connect(url: string): Promise<void> {
    try {
      await withTimeout((this.single ?? this.cluster!).connect() as Promise<unknown>, CONNECT_TIMEOUT_MS, "connect");
    } catch (err) {
      this.single?.destroy();
      this.cluster?.destroy();
      const cause = (this.lastError ?? err) as { message?: string };
      throw new Error(`cannot reach Redis at ${url}: ${cause.message ?? String(cause)}`);
    }
  }

  /** Runs a raw command (EVALSHA, EVAL) that touches `firstKey`'s slot. */
  send<T>(firstKey: string, args: string[]): Promise<T> {
    return (this.single ? this.single.sendCommand(args) : this.cluster!.sendCommand(firstKey, false, args)) as Promise<T>;
  }

  subscribe(channel: string, listener: Listener): Promise<void> {
    return this.single ? this.single.subscribe(channel, listener) : this.cluster!.sSubscribe(channel, listener);
  }

  unsubscribe(channel: string, listener: Listener): Promise<void> {
    return this.single ? this.single.unsubscribe(channel, listener) : this.cluster!.sUnsubscribe(channel, listener);
  }

  publish(channel: string, payload: string): Promise<unknown> {
    return this.single ? this.single.publish(channel, payload) : this.cluster!.sPublish(channel, payload);
  }

  /** Called whenever the connection comes back after a loss: messages may have been missed. */
  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler);
  }

  /** Rejects if `promise` has not settled within the command timeout. */
  bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    return this.deadlines.bound(promise, what);
  }

  isReady(): boolean {
    return this.single ? this.single.isReady : this.cluster!.isReady;
  }

  async close(): Promise<void> {
    this.deadlines.close();
    await (this.single ?? this.cluster!).close().catch(() => {});
  }
}
