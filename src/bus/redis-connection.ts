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
  /** Shown by CLIENT LIST, so an operator can tell the processes' connections apart. */
  name: string;
}

/**
 * The one connection a process keeps to Redis. RESP3 (node-redis's default) lets a connection
 * that is subscribed to channels run commands too, and one connection is cheaper than two: the
 * reply to a publish and the message it publishes to this process arrive together, in one read,
 * instead of waking the process twice. It reconnects by itself, and node-redis restores its
 * subscriptions before it reports ready again.
 */
export class RedisConnection {
  readonly client: RedisClientType;
  private readonly reconnectHandlers: Array<() => void> = [];
  private lastError: unknown;
  private readonly deadlines: Deadlines;

  constructor(options: RedisConnectionOptions) {
    const { url, logger } = options;
    this.deadlines = new Deadlines(options.commandTimeoutMs);
    this.client = createClient({
      url,
      name: options.name,
      RESP: 3,
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
    }) as unknown as RedisClientType;
    let everReady = false;
    let down = false;
    this.client.on("error", (err: unknown) => {
      this.lastError = err;
      if (!down && everReady) logger.warn({ err }, "redis connection lost");
      down = true;
    });
    this.client.on("ready", () => {
      if (everReady) {
        logger.info("redis connection restored");
        for (const handler of this.reconnectHandlers) handler();
      }
      everReady = true;
      down = false;
    });
  }

  /** Resolves once connected; rejects, naming the cause, if Redis cannot be reached at start. */
  async connect(url: string): Promise<void> {
    try {
      await withTimeout(this.client.connect(), CONNECT_TIMEOUT_MS, "connect");
    } catch (err) {
      this.client.destroy();
      const cause = (this.lastError ?? err) as { message?: string };
      throw new Error(`cannot reach Redis at ${url}: ${cause.message ?? String(cause)}`);
    }
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
    return this.client.isReady;
  }

  async close(): Promise<void> {
    this.deadlines.close();
    await this.client.close().catch(() => {});
  }
}
