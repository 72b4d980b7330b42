import type { ChatMessage, PresenceEvent, TypingEvent } from "../protocol.js";

/** How long a sender's clientMsgId is remembered: a resend within it is stored and delivered once. */
export const DEDUPE_WINDOW_MS = 10 * 60_000;

/** A message as the sender's process hands it to the broker; the broker adds `seq`. */
export type MessageDraft = Omit<ChatMessage, "seq">;

/**
 * What travels on a room's channel. `origin` is the connection that caused a presence or typing
 * event, so that it is not echoed back to that connection.
 */
export type RoomEvent =
  | { type: "message"; message: ChatMessage; epoch: string }
  | { type: "presence"; event: PresenceEvent; origin: string }
  | { type: "typing"; event: TypingEvent; origin: string };

export type EphemeralEvent = Exclude<RoomEvent, { type: "message" }>;

/**
 * `after`: the oldest `limit` messages with seq > after, oldest first.
 * `before`: the newest `limit` messages with seq < before (or the newest of all), oldest first.
 */
export type HistoryQuery = { after: number; limit: number } | { before?: number; limit: number };

export interface HistoryPage {
  /** The room's last seq at the time of the read (0 if the room has no history). */
  head: number;
  /** Identifies one life of the room's sequence; a new one starts when its data expired or was lost. */
  epoch: string;
  messages: ChatMessage[];
}

/** Where a process's view of a room's stream stands: the newest message it delivered. */
export interface StreamPosition {
  epoch: string;
  seq: number;
}

export type BrokerEventHandler = (room: string, event: RoomEvent) => void;

/**
 * Carries room events between processes and keeps each room's history.
 *
 * Contract: `publishMessage` assigns the room's next seq atomically with appending the message to
 * the room's history and publishing it, so all subscribers see one gap-free order per room. A
 * draft with a clientMsgId its sender already used in the room within DEDUPE_WINDOW_MS is not
 * published again: the original message's seq and ts come back. `seen`, the publisher's newest
 * delivered message of the room, keeps seqs from being reused when the store comes back older
 * than what was delivered (a Redis replica promoted without its master's last writes): the next
 * seq then follows `seen`.
 * Delivery to subscribers is at most once (a subscriber closes gaps from `history`); events of
 * one room reach a subscriber in publish order. `subscribe` resolves only once the subscription
 * is active: every event published after that reaches the handler.
 */
export type Readiness = "ready" | "degraded" | "unavailable";

export interface Broker {
  /** Sets the one handler that receives events of subscribed rooms. */
  onEvent(handler: BrokerEventHandler): void;
  /**
   * Called after the broker lost its connection and restored its subscriptions (`room` undefined:
   * any room's events may be missing), or moved one room's subscription (a reshard: that room's).
   */
  onResync(handler: (room?: string) => void): void;
  subscribe(room: string): Promise<void>;
  unsubscribe(room: string): Promise<void>;
  publishMessage(room: string, draft: MessageDraft, seen?: StreamPosition): Promise<ChatMessage>;
  publishEphemeral(room: string, event: EphemeralEvent): Promise<void>;
  history(room: string, query: HistoryQuery): Promise<HistoryPage>;
  /**
   * "ready" while the broker can publish and deliver for every room; "degraded" while it can for
   * some rooms only (a Redis Cluster master is down: its shard's rooms are not served until its
   * replica takes over); "unavailable" while it can for none.
   */
  readiness(): Readiness;
  close(): Promise<void>;
}

