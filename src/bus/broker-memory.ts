import { randomBytes } from "node:crypto";
import type { ChatMessage } from "../protocol.js";
import { DEDUPE_WINDOW_MS, type Broker, type BrokerEventHandler, type EphemeralEvent, type HistoryPage, type HistoryQuery, type MessageDraft, type Readiness } from "./broker.js";

export interface MemoryBrokerOptions {
  historyLimit: number;
  /** An idle room's history is dropped after this many ms without messages or members. */
  historyTtlMs: number;
}

interface RoomLog {
  epoch: string;
  head: number;
  /** Contiguous: messages[i].seq === messages[0].seq + i. May hold a little more than historyLimit. */
  messages: ChatMessage[];
  touchedAt: number;
  /** sender id + clientMsgId -> the message it was stored as, for DEDUPE_WINDOW_MS. */
  sent: Map<string, { message: ChatMessage; expiresAt: number }>;
}

// Trimming in batches keeps appends O(1) amortised instead of shifting the array every message.
const TRIM_SLACK = 256;

/** The single-process broker: history in a Map, publish is a direct call to the handler. */
export class MemoryBroker implements Broker {
  private readonly logs = new Map<string, RoomLog>();
  private readonly subscribed = new Set<string>();
  private handler: BrokerEventHandler = () => {};
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly options: MemoryBrokerOptions) {
    const every = Math.max(1000, Math.min(options.historyTtlMs, 60_000));
    this.sweeper = setInterval(() => this.dropIdleRooms(), every);
    this.sweeper.unref(); // must not keep the process alive
  }

  onEvent(handler: BrokerEventHandler): void {
    this.handler = handler;
  }

  onResync(): void {
    // Memory never loses its connection.
  }

  async subscribe(room: string): Promise<void> {
    this.subscribed.add(room);
  }

  async unsubscribe(room: string): Promise<void> {
    this.subscribed.delete(room);
  }

  async publishMessage(room: string, draft: MessageDraft): Promise<ChatMessage> {
    const log = this.logFor(room);
    const sentKey = draft.clientMsgId === undefined ? undefined : `${draft.from.id}\n${draft.clientMsgId}`;
    const prior = sentKey === undefined ? undefined : log.sent.get(sentKey);
    if (prior && prior.expiresAt > Date.now()) return { ...draft, seq: prior.message.seq, ts: prior.message.ts };
    const message: ChatMessage = { ...draft, seq: log.head + 1 };
    if (sentKey !== undefined) log.sent.set(sentKey, { message, expiresAt: Date.now() + DEDUPE_WINDOW_MS });
    log.head = message.seq;
    log.messages.push(message);
    if (log.messages.length > this.options.historyLimit + TRIM_SLACK) {
      log.messages.splice(0, log.messages.length - this.options.historyLimit);
    }
    if (this.subscribed.has(room)) this.handler(room, { type: "message", message, epoch: log.epoch });
    return message;
  }

  async publishEphemeral(room: string, event: EphemeralEvent): Promise<void> {
    if (this.subscribed.has(room)) this.handler(room, event);
  }

  async history(room: string, query: HistoryQuery): Promise<HistoryPage> {
    const log = this.logFor(room);
    const retained = this.retained(log);
    const first = retained[0]?.seq ?? log.head + 1;
    let from: number;
    let to: number; // exclusive indexes into `retained`
    if ("after" in query) {
      from = Math.max(0, query.after + 1 - first);
      to = Math.min(retained.length, from + query.limit);
    } else {
      to = query.before === undefined ? retained.length : Math.max(0, Math.min(retained.length, query.before - first));
      from = Math.max(0, to - query.limit);
    }
    return { head: log.head, epoch: log.epoch, messages: from < to ? retained.slice(from, to) : [] };
  }

  readiness(): Readiness {
    return "ready";
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.subscribed.clear();
  }

  private retained(log: RoomLog): ChatMessage[] {
    const extra = log.messages.length - this.options.historyLimit;
    return extra > 0 ? log.messages.slice(extra) : log.messages;
  }

  private logFor(room: string): RoomLog {
    let log = this.logs.get(room);
    if (!log) {
      log = { epoch: randomBytes(6).toString("base64url"), head: 0, messages: [], touchedAt: 0, sent: new Map() };
      this.logs.set(room, log);
    }
    log.touchedAt = Date.now();
    return log;
  }

  private dropIdleRooms(): void {
    const cutoff = Date.now() - this.options.historyTtlMs;
    const now = Date.now();
    for (const [room, log] of this.logs) {
      if (log.touchedAt < cutoff && !this.subscribed.has(room)) this.logs.delete(room);
      else for (const [key, sent] of log.sent) if (sent.expiresAt <= now) log.sent.delete(key);
    }
  }
}
