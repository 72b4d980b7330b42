import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { ChatMessage } from "../protocol.js";
import type { Broker, BrokerEventHandler, EphemeralEvent, HistoryPage, HistoryQuery, MessageDraft, RoomEvent } from "./broker.js";
import type { RedisConnection } from "./redis-connection.js";
import type { RedisKeys } from "./redis-keys.js";
import { SCRIPTS } from "./redis-scripts.js";
import { DEDUPE_WINDOW_MS } from "./broker.js";

export interface RedisBrokerOptions {
  logger: Logger;
  historyLimit: number;
  historyTtlMs: number;
}

type Listener = (payload: string) => void;

/**
 * Publishes one process may have waiting on Redis. Past it a message is refused at once: under
 * overload, queueing more only made publishes outlive their timeout and answer `unavailable`
 * after all while Redis still stored them (the bench's saturate: 144k such acks, 28k of them
 * delivered anyway, and throughput collapsing to a quarter). At the knee a process has tens in
 * flight; a thousand is some 150 ms of backlog there, well inside the command timeout.
 */
export const MAX_PUBLISHES_IN_FLIGHT = 1000;

export class BusyError extends Error {
  constructor() {
    super(`more than ${MAX_PUBLISHES_IN_FLIGHT} publishes waiting on Redis`);
  }
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
  private publishesInFlight = 0;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: RedisKeys,
    private readonly options: RedisBrokerOptions,
  ) {}

  onEvent(handler: BrokerEventHandler): void {
    this.handler = handler;
  }

  onResync(handler: () => void): void {
    this.redis.onReconnect(handler);
  }

  async subscribe(room: string): Promise<void> {
    if (this.listeners.has(room)) return;
    const listener: Listener = (payload) => this.dispatch(room, payload);
    this.listeners.set(room, listener);
    try {
      await this.bounded(this.redis.client.subscribe(this.keys.channel(room), listener), "subscribe");
    } catch (err) {
      await this.unsubscribe(room).catch(() => {});
      throw err;
    }
  }

  async unsubscribe(room: string): Promise<void> {
    const listener = this.listeners.get(room);
    if (!listener) return;
    this.listeners.delete(room);
    // node-redis drops the listener locally before it sends UNSUBSCRIBE, so even when this fails
    // (Redis down) the channel is not restored on reconnect.
    await this.bounded(this.redis.client.unsubscribe(this.keys.channel(room), listener), "unsubscribe");
  }

  async publishMessage(room: string, draft: MessageDraft): Promise<ChatMessage> {
    if (this.publishesInFlight >= MAX_PUBLISHES_IN_FLIGHT) throw new BusyError();
    this.publishesInFlight++;
    try {
      return await this.publishNow(room, draft);
    } finally {
      this.publishesInFlight--;
    }
  }

  private async publishNow(room: string, draft: MessageDraft): Promise<ChatMessage> {
    const json = JSON.stringify(draft);
    const keys = [this.keys.meta(room), this.keys.history(room)];
    if (draft.clientMsgId !== undefined) keys.push(this.keys.sent(room, draft.from.id, draft.clientMsgId));
    const [seq, priorTs] = await this.bounded(
      SCRIPTS.publish.run<[number, string | null]>(this.redis.client, keys, [
        json,
        this.options.historyLimit,
        this.options.historyTtlMs,
        this.keys.channel(room),
        newEpoch(),
        "0",
        DEDUPE_WINDOW_MS,
        draft.ts,
      ]),
      "publish",
    );
    return { seq: Number(seq), ...draft, ts: priorTs ? Number(priorTs) : draft.ts };
  }

  async publishEphemeral(room: string, event: EphemeralEvent): Promise<void> {
    const payload = (event.type === "presence" ? "p" : "t") + JSON.stringify({ event: event.event, origin: event.origin });
    await this.bounded(this.redis.client.publish(this.keys.channel(room), payload), "publish");
  }

  async history(room: string, query: HistoryQuery): Promise<HistoryPage> {
    const [mode, bound] = "after" in query ? ["a", String(query.after)] : ["b", query.before === undefined ? "" : String(query.before)];
    const [head, epoch, entries] = await this.bounded(
      SCRIPTS.history.run<[number, string, string[]]>(
        this.redis.client,
        [this.keys.meta(room), this.keys.history(room)],
        [mode, bound, query.limit, this.options.historyTtlMs, newEpoch()],
      ),
      "history",
    );
    return { head: Number(head), epoch, messages: entries.map((entry) => JSON.parse(entry) as ChatMessage) };
  }

  isReady(): boolean {
    return this.redis.isReady();
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

// An epoch only has to differ between lives of a room; the script uses the candidate only when a
// room starts, yet every call passes one. A random process prefix and a counter cost nothing,
// where randomBytes per message showed in profiles.
const EPOCH_PREFIX = randomBytes(6).toString("base64url");
let epochCounter = 0;
function newEpoch(): string {
  return EPOCH_PREFIX + (epochCounter++).toString(36);
}
