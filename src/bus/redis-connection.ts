import { createClient, createCluster, type RedisClientType, type RedisClusterType } from "@redis/client";
import type { Logger } from "pino";
import type { Readiness } from "./broker.js";
import { Deadlines } from "./deadlines.js";
import { withTimeout } from "./redis-scripts.js";

/** How long start-up waits for Redis before giving up with a clear error. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Cluster: re-read the topology once a node's connection has failed to come back for this long,
 * then about once a second (each reconnect attempt past it) while it stays down. node-redis's
 * default, 5 s, left a room whose master had died unavailable for 5 s after its replica was
 * promoted; this costs one CLUSTER SLOTS on a fresh connection per second while a node is down.
 */
const TOPOLOGY_REFRESH_MS = 500;
/** Cluster: how soon a subscription that could not follow its slot to a new master is retried. */
const RESUBSCRIBE_RETRY_MS = 500;
/** The event node-redis's cluster client emits with the listeners of a node it dropped. */
const RESUBSCRIBE_EVENT = "__resubscribeListeners";
/**
 * Cluster: while a slot is being migrated, Redis answers a script on several of a room's keys
 * TRYAGAIN when some have moved and some not (meta and history in different batches, or a message
 * with a clientMsgId that creates the room's resend hashes: its first, or the first after they expired).
 * Nothing ran, so it is retried this often instead of answering `unavailable` at once, for at most
 * an eighth of REDIS_TIMEOUT from the send (TRYAGAIN_BUDGET): that ends before the publish
 * admission (a quarter) would start refusing the process's other rooms because this one waits,
 * and before the caller's own deadline, so no message is stored after its sender was told
 * `unavailable`. A room whose keys take longer to move is refused for the rest of its move.
 */
const TRYAGAIN_RETRY_MS = 20;
const TRYAGAIN_BUDGET = 1 / 8;
/** The event a node's client emits when its resubscribe after a reconnect is answered MOVED. */
const MOVED_EVENT = "__MOVED";
/** The event a sharded subscriber client emits when its node says a channel's slot moved away. */
const CHANNEL_MOVED_EVENT = "sharded-channel-moved";

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

/** What node-redis hands over when a node's subscriptions must move: listeners per channel. */
interface MovedListeners {
  SHARDED?: Map<string, { strings: Set<Listener> }>;
}

/** The parts of node-redis's cluster internals that hold a node's clients. */
interface NodeClients {
  nodeByAddress: Map<string, { client?: NodeJS.EventEmitter; pubSub?: { client: NodeJS.EventEmitter } }>;
  pubSubNode?: { client: NodeJS.EventEmitter };
}

/** The typed commands presence uses; a single node's client and a cluster's both route them by key. */
export interface RedisCommands {
  hSet(key: string, field: string, value: string): Promise<number>;
  hDel(key: string, field: string | string[]): Promise<number>;
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
  private readonly movedHandlers: Array<(channel: string) => void> = [];
  private lastError: unknown;
  private readonly deadlines: Deadlines;
  readonly commandTimeoutMs: number;
  private readonly logger: Logger;
  /** Cluster: the subscriptions roomcast holds, so a failed move is retried only while wanted. */
  private readonly wanted = new Map<string, Set<Listener>>();
  private scheduleResync: () => void = () => {};
  private closed = false;
  /** Cluster: node clients whose MOVED listener has been wrapped (see guardMoved). */
  private readonly guarded = new WeakSet<object>();
  private internalsMissing = false;

  constructor(options: RedisConnectionOptions) {
    const { url, logger } = options;
    this.logger = logger;
    this.commandTimeoutMs = options.commandTimeoutMs;
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
      // node-redis also reports here a health-check PING that failed on a connection that stays
      // up (BUSY while a long script runs): that is no loss, and no "restored" would follow it.
      if (this.single?.isReady) return;
      if (!down && everReady) logger.warn({ err }, "redis connection lost");
      down = true;
    };
    const onReady = (): void => {
      if (everReady) {
        if (down) logger.info("redis connection restored");
        else logger.debug("a redis node connection is ready again; rooms catch up from history");
        for (const handler of this.reconnectHandlers) handler();
      }
      down = false;
    };
    if (this.sharded) {
      // node-redis gives discovered nodes only `defaults` (the seed's URL is not inherited), and
      // takes RESP and commandOptions from the top level: set both places.
      const seed = new URL(url);
      const defaults = {
        ...clientOptions,
        name: options.name,
        ...(seed.username && { username: decodeURIComponent(seed.username) }),
        ...(seed.password && { password: decodeURIComponent(seed.password) }),
        socket: { ...clientOptions.socket, ...(seed.protocol === "rediss:" && { tls: true as const }) },
      };
      this.cluster = createCluster({
        rootNodes: [{ url }],
        defaults,
        RESP: 3,
        commandOptions: { timeout: 0 },
        // A dead master's slots move to its replica: notice that within about a second.
        topologyRefreshOnReconnectionAttemptStrategy: TOPOLOGY_REFRESH_MS,
      }) as unknown as RedisClusterType;
      this.cluster.on("error", onError);
      this.cluster.on("node-error", onError);
      // A node connection that becomes ready again may follow lost pushes (node-redis resubscribes
      // before it reports ready): each counts as a reconnect, coalesced, and every room catches up
      // from history once. A node client's first ready does not: it is a new connection (a
      // shard's first subscriber, a promoted replica's first client), through which nothing was
      // missed, and it came whenever a room on a new shard was first joined, making every room
      // read its history and every presence entry be written again. Subscriptions that moved to
      // a new connection are caught up where they move (follow, reportMoves).
      let resync: NodeJS.Timeout | undefined;
      const scheduleResync = (): void => {
        if (!everReady) return;
        clearTimeout(resync);
        resync = setTimeout(onReady, 100);
        resync.unref();
      };
      this.scheduleResync = scheduleResync;
      const readyBefore = new WeakSet<object>(); // node-redis's per-client info object
      this.cluster.on("node-ready", (client: object) => {
        if (readyBefore.has(client)) scheduleResync();
        else readyBefore.add(client);
      });
      this.cluster.on("sharded-channel-moved-error", (err: unknown, channel: string, listeners: { strings: Set<Listener> }) => {
        logger.warn({ err, channel }, "a room's subscription could not follow its slot to another shard yet");
        for (const listener of listeners.strings) void this.follow(channel, listener);
      });
      this.takeOverResubscribe();
      // A node's client connects once before it can ever resubscribe: guard it then.
      this.cluster.on("node-connect", () => this.guardMoved());
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
    if (this.single) return this.single.sendCommand(args) as Promise<T>;
    const giveUpAt = Date.now() + this.commandTimeoutMs * TRYAGAIN_BUDGET;
    const attempt = (): Promise<T> =>
      (this.cluster!.sendCommand(firstKey, false, args) as Promise<T>).catch(async (err: unknown) => {
        if (!(err instanceof Error) || !err.message.startsWith("TRYAGAIN") || this.closed) throw err;
        if (Date.now() + TRYAGAIN_RETRY_MS > giveUpAt) throw err;
        await new Promise((resolve) => setTimeout(resolve, TRYAGAIN_RETRY_MS).unref());
        return attempt();
      });
    return attempt();
  }

  subscribe(channel: string, listener: Listener): Promise<void> {
    if (this.single) return this.single.subscribe(channel, listener);
    let listeners = this.wanted.get(channel);
    if (!listeners) this.wanted.set(channel, (listeners = new Set()));
    listeners.add(listener);
    return this.cluster!.sSubscribe(channel, listener);
  }

  unsubscribe(channel: string, listener: Listener): Promise<void> {
    if (this.single) return this.single.unsubscribe(channel, listener);
    const listeners = this.wanted.get(channel);
    listeners?.delete(listener);
    if (listeners?.size === 0) this.wanted.delete(channel);
    return this.cluster!.sUnsubscribe(channel, listener);
  }

  publish(channel: string, payload: string): Promise<unknown> {
    return this.single ? this.single.publish(channel, payload) : this.cluster!.sPublish(channel, payload);
  }

  /** Called whenever the connection comes back after a loss: messages may have been missed. */
  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler);
  }

  /** Cluster: called once a channel's subscription followed its slot to another master (a reshard): its messages may have been missed. */
  onChannelMoved(handler: (channel: string) => void): void {
    this.movedHandlers.push(handler);
  }

  /** Rejects if `promise` has not settled within the command timeout. */
  bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    return this.deadlines.bound(promise, what);
  }

  /**
   * A command's wait ran out (or Redis answered BUSY, LOADING or MASTERDOWN) and none has
   * succeeded since, though the connection is up: Redis stalled (paused, swapping, a long script,
   * loading its data) or the network holds its packets. Presence heartbeats keep commands going,
   * so this clears within a heartbeat of Redis serving again.
   */
  stalled(): boolean {
    return this.deadlines.stalled;
  }

  /**
   * Single node: ready while its connection is. Cluster: ready while every master's connection (and
   * subscriber) is, degraded while only some are.
   */
  readiness(): Readiness {
    if (this.single) return this.single.isReady ? "ready" : "unavailable";
    const cluster = this.cluster!;
    if (!cluster.isReady) return "unavailable";
    // A subscriber connection still on its first connect counts as up: it is opened on demand,
    // when a room on that shard is first joined, and the join waits for it anyway.
    const up = cluster.masters.filter((m) => (m.client?.isReady ?? false) && (!m.pubSub || m.pubSub.connectPromise !== undefined || m.pubSub.client.isReady));
    return up.length === cluster.masters.length ? "ready" : up.length > 0 ? "degraded" : "unavailable";
  }

  /**
   * When node-redis drops a node (its master died and the topology no longer names it), it
   * resubscribes that node's channels on their slots' new masters without handling the result:
   * a failure there (the new master not reachable yet) is an unhandled rejection, which ends the
   * process, and the subscription is gone for good, so the room's live messages stop for this
   * process. This takes that over: each subscription is retried until it holds or is no longer
   * wanted, and once it holds the rooms catch up on what was published meanwhile.
   */
  private takeOverResubscribe(): void {
    const cluster = this.cluster!;
    const theirs = cluster.listeners(RESUBSCRIBE_EVENT);
    if (theirs.length !== 1) {
      this.logger.warn({ found: theirs.length }, "node-redis's resubscribe hook not found: subscriptions may not follow a failover");
      return;
    }
    cluster.off(RESUBSCRIBE_EVENT, theirs[0] as (...args: unknown[]) => void);
    cluster.on(RESUBSCRIBE_EVENT, (moved: MovedListeners) => {
      // roomcast holds only sharded channels with string listeners on a cluster.
      for (const [channel, { strings }] of moved.SHARDED ?? []) {
        for (const listener of strings) void this.follow(channel, listener);
      }
    });
  }

  /**
   * When a node's connection comes back and resubscribing is answered MOVED (its slot moved to
   * another master while the connection was down: a reshard), node-redis takes every subscription
   * off that client, re-reads the topology and then hands them on (RESUBSCRIBE_EVENT, followed
   * above). Its listener is async and nobody handles its promise: if the topology read fails
   * (every node refusing new connections at that moment), the rejection is unhandled, which ends
   * the process, and the subscriptions are lost for good. Wrapped here: on that rejection the
   * subscriptions are followed by retrying each (follow), as after a failover.
   */
  private guardMoved(): void {
    const internals = this.cluster as unknown as Partial<NodeClients>;
    // Runs inside node-redis's connect: a throw would fail every connection. Internals that moved
    // in a node-redis update cost the guard, with a warning, never the connection.
    if (!(internals.nodeByAddress instanceof Map)) {
      if (!this.internalsMissing) this.logger.warn("node-redis's node list not found: a reshard may end the process");
      this.internalsMissing = true;
      return;
    }
    const clients = [...internals.nodeByAddress.values()].flatMap((node) => [node.client, node.pubSub?.client]);
    clients.push(internals.pubSubNode?.client);
    for (const client of clients) {
      if (!client || this.guarded.has(client)) continue;
      this.guarded.add(client);
      this.reportMoves(client);
      const theirs = client.listeners(MOVED_EVENT);
      if (theirs.length !== 1) {
        this.logger.warn({ found: theirs.length }, "node-redis's MOVED hook not found: a reshard may end the process");
        continue;
      }
      const handler = theirs[0] as (moved: MovedListeners) => Promise<void>;
      client.off(MOVED_EVENT, handler);
      client.on(MOVED_EVENT, (moved: MovedListeners) => {
        handler(moved).catch((err: unknown) => {
          this.logger.warn({ err }, "could not find where a room's slot moved; retrying its subscription");
          for (const [channel, { strings }] of moved.SHARDED ?? []) {
            for (const listener of strings) void this.follow(channel, listener);
          }
        });
      });
    }
  }

  /**
   * A reshard gives the slot to its new master before the old one tells its subscribers
   * (SUNSUBSCRIBE): a message published in between reaches no process live. node-redis then moves
   * the subscription itself (its listener on a sharded subscriber client), and when the new
   * master's subscriber connection already existed nothing else marks the gap. Its listener is
   * wrapped: once it is done the channel is reported, and its room alone catches up. Failures go
   * to "sharded-channel-moved-error" (followed above), which catches up on success too.
   */
  private reportMoves(client: NodeJS.EventEmitter): void {
    const theirs = client.listeners(CHANNEL_MOVED_EVENT);
    if (theirs.length === 0) return; // not a sharded subscriber client
    if (theirs.length !== 1) {
      this.logger.warn({ found: theirs.length }, "node-redis's moved-channel hook not found: after a reshard a quiet room may miss a message");
      return;
    }
    const handler = theirs[0] as (channel: string, ...rest: unknown[]) => Promise<void>;
    client.off(CHANNEL_MOVED_EVENT, handler);
    client.on(CHANNEL_MOVED_EVENT, (channel: string, ...rest: unknown[]) => {
      handler(channel, ...rest).then(
        () => {
          for (const moved of this.movedHandlers) moved(channel);
        },
        (err: unknown) => this.logger.warn({ err, channel }, "node-redis could not move a room's subscription"),
      );
    });
  }

  /** Subscribes again until it holds, retrying while the subscription is still wanted. Never rejects. */
  private async follow(channel: string, listener: Listener): Promise<void> {
    for (let attempt = 0; !this.closed && this.wanted.get(channel)?.has(listener); attempt++) {
      try {
        await this.bounded(this.cluster!.sSubscribe(channel, listener), "resubscribe");
        // An unsubscribe that came in meanwhile won: undo, or the channel stays subscribed.
        if (!this.wanted.get(channel)?.has(listener)) await this.cluster!.sUnsubscribe(channel, listener).catch(() => {});
        else this.scheduleResync();
        return;
      } catch (err) {
        if (attempt === 0) this.logger.warn({ err, channel }, "resubscribing a room after a failover or reshard failed; retrying");
        await new Promise((resolve) => setTimeout(resolve, RESUBSCRIBE_RETRY_MS).unref());
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.deadlines.close();
    await (this.single ?? this.cluster!).close().catch(() => {});
  }
}
