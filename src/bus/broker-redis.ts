import type { Logger } from "pino";
import type { ChatMessage } from "../protocol.js";
import type { Broker, BrokerEventHandler, EphemeralEvent, HistoryPage, HistoryQuery, MessageDraft, Readiness, RoomEvent, StreamPosition } from "./broker.js";
import type { RedisConnection } from "./redis-connection.js";
import type { RedisKeys } from "./redis-keys.js";
import { RedisScript } from "./redis-scripts.js";
import { DEDUPE_WINDOW_MS } from "./broker.js";
import { PublishAdmission } from "./publish-admission.js";

export interface RedisBrokerOptions {
  logger: Logger;
  historyLimit: number;
  historyTtlMs: number;
  /** A new message is refused while the oldest publish in flight has waited longer than this. */
  maxPublishWaitMs: number;
}

type Listener = (payload: string) => void;

/**
 * Publishes one process may have waiting on Redis, whatever their wait (see PublishAdmission). At
 * the knee a process has tens in flight; a thousand is about 110 ms of backlog at 9,000 messages/s
 * per process. With only the wait as the bound (10,000 here), deep overload let the backlog grow
 * until publishes outlived REDIS_TIMEOUT and were delivered after an error ack (3,757 of them at
 * 36,000 deliveries/s offered, run 2026-11-25-0041); with this count they are refused first.
 */
export const MAX_PUBLISHES_IN_FLIGHT = 1000;

export class BusyError extends Error {
  constructor(maxWaitMs: number) {
    super(`Redis is not keeping up: a publish has waited over ${maxWaitMs} ms, or ${MAX_PUBLISHES_IN_FLIGHT} are waiting`);
  }
}

/**
 * How often an active room's keys get their TTL refreshed (publish.lua's 'keep'): a tenth of the
 * TTL, at most a minute. The keys then expire between HISTORY_TTL and HISTORY_TTL + twice this
 * after a room's last message, and never early while the processes' clocks agree within it.
 */
export function ttlRefreshMs(historyTtlMs: number): number {
  return Math.min(60_000, Math.floor(historyTtlMs / 10));
}

/**
 * How long a room's history list may grow before publish.lua trims it back to `historyLimit`: a
 * tenth more, at most 256 entries (about 50 KB a room at the default limit). Trimming in batches
 * saves an LTRIM per message in every room at its limit; history.lua reads only the newest
 * `historyLimit`, so what clients see is the same.
 */
export function trimAt(historyLimit: number): number {
  return historyLimit + Math.max(1, Math.min(256, Math.floor(historyLimit / 10)));
}

/**
 * The broker over Redis pub/sub with one channel per room: a process subscribes only to the rooms
 * it has members in, so it receives nothing else. Seq, history and publish are one Lua script.
 * On the channel, a payload is a one-letter type ('m' message, 'p' presence, 't' typing) + JSON;
 * a message has its room's epoch and a space between the two.
 */
export class RedisBroker implements Broker {
  private handler: BrokerEventHandler = () => {};
  private readonly listeners = new Map<string, Listener>();
  /** The subscribed rooms by channel: a moved subscription names its channel. */
  private readonly roomByChannel = new Map<string, string>();
  private readonly admission: PublishAdmission;
  private readonly publishScript: RedisScript;
  private readonly historyScript: RedisScript;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: RedisKeys,
    private readonly options: RedisBrokerOptions,
  ) {
    this.admission = new PublishAdmission(options.maxPublishWaitMs, MAX_PUBLISHES_IN_FLIGHT);
    const refreshMs = ttlRefreshMs(options.historyTtlMs);
    // What the room's keys get as TTL when refreshed.
    const expireMs = options.historyTtlMs + 2 * refreshMs;
    this.publishScript = new RedisScript("publish", {
      HISTORY_LIMIT: options.historyLimit,
      TRIM_AT: trimAt(options.historyLimit),
      EXPIRE_MS: expireMs,
      REFRESH_MS: refreshMs,
      DEDUPE_MS: DEDUPE_WINDOW_MS,
      SHARDED: redis.sharded ? 1 : 0,
    });
    this.historyScript = new RedisScript("history", { HISTORY_LIMIT: options.historyLimit, EXPIRE_MS: expireMs });
  }

  onEvent(handler: BrokerEventHandler): void {
    this.handler = handler;
  }

  onResync(handler: (room?: string) => void): void {
    this.redis.onReconnect(() => handler());
    this.redis.onChannelMoved((channel) => {
      const room = this.roomByChannel.get(channel);
      if (room !== undefined) handler(room);
    });
  }

  async subscribe(room: string): Promise<void> {
    if (this.listeners.has(room)) return;
    const listener: Listener = (payload) => this.dispatch(room, payload);
    this.listeners.set(room, listener);
    this.roomByChannel.set(this.keys.channel(room), room);
    try {
      await this.bounded(this.redis.subscribe(this.keys.channel(room), listener), "subscribe");
    } catch (err) {
      await this.unsubscribe(room).catch(() => {});
      throw err;
    }
  }

  async unsubscribe(room: string): Promise<void> {
    const listener = this.listeners.get(room);
    if (!listener) return;
    this.listeners.delete(room);
    this.roomByChannel.delete(this.keys.channel(room));
    // node-redis drops the listener locally before it sends UNSUBSCRIBE, so even when this fails
    // (Redis down) the channel is not restored on reconnect.
    await this.bounded(this.redis.unsubscribe(this.keys.channel(room), listener), "unsubscribe");
  }

  async publishMessage(room: string, draft: MessageDraft, seen?: StreamPosition): Promise<ChatMessage> {
    const ticket = this.admission.admit();
    if (!ticket) throw new BusyError(this.options.maxPublishWaitMs);
    try {
      return await this.publishNow(room, draft, seen);
    } finally {
      this.admission.done(ticket);
    }
  }

  private async publishNow(room: string, draft: MessageDraft, seen: StreamPosition | undefined): Promise<ChatMessage> {
    // The script puts '{"seq":N,' in front: it gets the JSON without its opening brace.
    const rest = JSON.stringify(draft).slice(1);
    const keys = [this.keys.meta(room), this.keys.history(room)];
    const args: Array<string | number> = [rest, draft.ts];
    if (draft.clientMsgId !== undefined) {
      keys.push(...this.keys.sent(room));
      args.push(this.keys.sentField(draft.from.id, draft.clientMsgId));
    }
    if (seen) args.push(seen.seq, seen.epoch);
    const reply = await this.bounded(this.publishScript.run<number | [number, string]>(this.redis, keys, args), "publish");
    if (!Array.isArray(reply)) return { seq: Number(reply), ...draft };
    return { seq: Number(reply[0]), ...draft, ts: Number(reply[1]) };
  }

  async publishEphemeral(room: string, event: EphemeralEvent): Promise<void> {
    const payload = (event.type === "presence" ? "p" : "t") + JSON.stringify({ event: event.event, origin: event.origin });
    await this.bounded(this.redis.publish(this.keys.channel(room), payload), "publish");
  }

  async history(room: string, query: HistoryQuery): Promise<HistoryPage> {
    const [mode, bound] = "after" in query ? ["a", String(query.after)] : ["b", query.before === undefined ? "" : String(query.before)];
    const [head, epoch, entries] = await this.bounded(
      this.historyScript.run<[number, string, string[]]>(this.redis, [this.keys.meta(room), this.keys.history(room)], [mode, bound, query.limit]),
      "history",
    );
    return { head: Number(head), epoch, messages: entries.map(parseEntry) };
  }

  readiness(): Readiness {
    const connected = this.redis.readiness();
    if (connected === "unavailable" || !this.redis.stalled()) return connected;
    // On a cluster the stalled command may be one shard's: the others may well answer.
    return this.redis.sharded ? "degraded" : "unavailable";
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  /** Runs inside node-redis's reply handling: a bad payload must be logged, never thrown there. */
  private dispatch(room: string, payload: string): void {
    try {
      this.decode(room, payload);
    } catch (err) {
      this.onBadPayload(err, room);
    }
  }

  private onBadPayload(err: unknown, room: string): void {
    this.options.logger.warn({ err, room }, "dropped a malformed payload from a room's channel");
  }

  private decode(room: string, payload: string): void {
    const kind = payload[0];
    if (kind === "m") {
      const space = payload.indexOf(" ");
      const message = JSON.parse(payload.slice(space + 1)) as ChatMessage;
      this.handler(room, { type: "message", message, epoch: payload.slice(1, space) });
      return;
    }
    const body = JSON.parse(payload.slice(1)) as { event: never; origin: string };
    let event: RoomEvent;
    if (kind === "p") event = { type: "presence", event: body.event, origin: body.origin };
    else if (kind === "t") event = { type: "typing", event: body.event, origin: body.origin };
    else return;
    this.handler(room, event);
  }

  private bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    return this.redis.bounded(promise, what);
  }
}

/** A history entry: 'm<epoch> <json>' as published, or the bare JSON that older versions stored. */
function parseEntry(entry: string): ChatMessage {
  return JSON.parse(entry.charCodeAt(0) === 123 /* { */ ? entry : entry.slice(entry.indexOf(" ") + 1)) as ChatMessage;
}
