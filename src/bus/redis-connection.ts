import { createClient, type RedisClientType } from "@redis/client";
import type { Logger } from "pino";
import { Deadlines } from "./deadlines.js";
import { withTimeout } from "./redis-scripts.js";

/** How long start-up waits for Redis before giving up with a clear error. */
const CONNECT_TIMEOUT_MS = 10_000;

export interface RedisConnectionOptions {
  url: string;
  logger: Logger;
  /** Longest wait for one command: a paused or unreachable Redis must not hang a client's request. */
  commandTimeoutMs: number;
}

/**
 * The two connections a process keeps to Redis: one for commands, one for subscriptions (a
 * subscribed connection can run nothing else). Both reconnect by themselves; node-redis restores
 * the subscriptions of the second before it reports ready again.
 */
export class RedisConnection {
  readonly commands: RedisClientType;
  readonly subscriber: RedisClientType;
  private readonly reconnectHandlers: Array<() => void> = [];
  private lastError: unknown;
  private readonly deadlines: Deadlines;

  constructor(options: RedisConnectionOptions) {
    const { url, logger } = options;
    this.deadlines = new Deadlines(options.commandTimeoutMs);
    const config = {
      url,
      // Our own Deadlines bound every command; node-redis's per-command AbortSignal.timeout
      // (5 s by default) costs a timer, a signal and a listener per command.
      commandOptions: { timeout: 0 },
      // Fail fast while disconnected instead of queueing: a message gets `unavailable`, not a hang.
      disableOfflineQueue: true,
      // A ping notices a dead or paused server even on a quiet subscriber connection.
      pingInterval: 1000,
      socket: {
        connectTimeout: 2000,
        socketTimeout: 5000,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000),
      },
    };
    this.commands = createClient(config) as RedisClientType;
    this.subscriber = createClient(config) as RedisClientType;
    for (const [role, client] of [["commands", this.commands], ["subscriber", this.subscriber]] as const) {
      let everReady = false;
      let down = false;
      client.on("error", (err: unknown) => {
        this.lastError = err;
        if (!down && everReady) logger.warn({ err, role }, "redis connection lost");
        down = true;
      });
      client.on("ready", () => {
        if (everReady) logger.info({ role }, "redis connection restored");
        if (everReady) for (const handler of this.reconnectHandlers) handler();
        everReady = true;
        down = false;
      });
    }
  }

  /** Resolves once both connections are up; rejects, naming the cause, if Redis cannot be reached at start. */
  async connect(url: string): Promise<void> {
    try {
      await withTimeout(Promise.all([this.commands.connect(), this.subscriber.connect()]), CONNECT_TIMEOUT_MS, "connect");
    } catch (err) {
      await Promise.allSettled([this.commands.destroy(), this.subscriber.destroy()]);
      const cause = (this.lastError ?? err) as { message?: string };
      throw new Error(`cannot reach Redis at ${url}: ${cause.message ?? String(cause)}`);
    }
  }

  /** Called whenever either connection comes back after a loss. */
  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler);
  }

  /** Rejects if `promise` has not settled within the command timeout. */
  bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    return this.deadlines.bound(promise, what);
  }

  isReady(): boolean {
    return this.commands.isReady && this.subscriber.isReady;
  }

  async close(): Promise<void> {
    this.deadlines.close();
    await Promise.allSettled([this.commands.close(), this.subscriber.close()]);
  }
}
