import type { ChatMessage, MembersEvent, PresenceEvent } from "../protocol.js";
import type { EphemeralEvent, HistoryPage } from "../bus/broker.js";
import type { Gateway } from "./gateway.js";

/** Reads messages with seq > after from the room's history, oldest first. */
export type HistoryReader = (after: number, limit: number) => Promise<HistoryPage>;

/**
 * What a room's stream reports for monitoring (the domain knows nothing of Prometheus): how often
 * the at-most-once bus skipped messages, and whether history closed the gap.
 */
export interface StreamObserver {
  /** Messages delivered from history because the live stream skipped them. */
  recovered(count: number): void;
  /** Seqs that history no longer held either: members saw a jump. */
  lost(count: number): void;
  /** The room's sequence started over: Redis lost or expired its data. */
  restarted(): void;
}

export const UNOBSERVED: StreamObserver = { recovered() {}, lost() {}, restarted() {} };

const FILL_BATCH = 500;
const RETRY_MS = 500;
const CATCH_UP = Symbol("catch-up");
type QueueItem = ChatMessage | typeof CATCH_UP;
/** What a joining member is sent after its ack: the room's messages, and presence events not its own. */
type Buffered = ChatMessage | { presence: PresenceEvent; origin: string };

/**
 * One room as seen by this process: delivers the room's messages to the local members in seq
 * order, once each, closing gaps from history (the bus is at-most-once).
 *
 * A member moves through three states:
 * - joining: its join is in flight; messages and presence events are buffered for it, because its
 *   history and member reads and the live stream overlap and the ack must come first;
 * - catching up: its join read a head newer than what this process has delivered so far; it is
 *   sent messages (and presence events) one by one until the room's stream reaches its head;
 * - live: in the gateway's group; each message is encoded once for all live members.
 */
export class LocalRoom {
  /** Highest seq delivered to local members. */
  private lastSeq = 0;
  /** The life of the room's sequence that lastSeq belongs to. */
  private epoch = "";
  /** Changes whenever the stream restarts (initialize, dispose, startOver): a pump that awaited across one drops what it held. */
  private generation = 0;
  private initialized = false;
  private readonly queue: QueueItem[] = [];
  private pumping = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  private readonly live = new Set<string>();
  // Members in transition: created when the first arrives and dropped when the last leaves, since
  // a process holds one LocalRoom per room with a local member and most rooms are quiet.
  private joining: Map<string, Buffered[]> | undefined;
  private catchingUp: Map<string, number> | undefined;

  constructor(
    readonly name: string,
    private readonly gateway: Gateway,
    private readonly readAfter: HistoryReader,
    private readonly onError: (err: unknown) => void,
    private readonly observer: StreamObserver = UNOBSERVED,
  ) {}

  /** Whether a local member is past its join ack: live, or catching up. */
  hasActiveMembers(): boolean {
    return this.live.size > 0 || this.catchingUp !== undefined;
  }

  /** The room's member list, to every local member past its join ack (a joining one's ack has its own). */
  sendMembers(event: MembersEvent): void {
    if (this.live.size > 0) this.gateway.broadcast(this.name, "members", event);
    for (const connId of this.catchingUp?.keys() ?? []) this.gateway.send(connId, "members", event);
  }

  /** The newest message delivered here, once the stream has started. */
  position(): { epoch: string; seq: number } | undefined {
    return this.initialized ? { epoch: this.epoch, seq: this.lastSeq } : undefined;
  }

  /** Starts (or restarts, after a resubscribe) the stream at `head`: messages up to it are not delivered. */
  initialize(head: number, epoch: string): void {
    this.lastSeq = head;
    this.epoch = epoch;
    this.generation++;
    this.initialized = true;
    this.disposed = false;
    void this.pump();
  }

  receive(message: ChatMessage, epoch: string): void {
    if (epoch !== this.epoch && this.initialized) this.startOver(epoch, message.seq - 1);
    if (this.initialized && !this.pumping && this.queue.length === 0 && message.seq === this.lastSeq + 1) {
      this.deliver(message); // the common case: in order, nothing pending
      return;
    }
    this.queue.push(message);
    void this.pump();
  }

  /** Delivers whatever history holds past the last delivered seq: after the bus lost messages. */
  catchUp(): void {
    this.queue.push(CATCH_UP);
    void this.pump();
  }

  relay(event: EphemeralEvent): void {
    if (this.live.size > 0) this.gateway.broadcast(this.name, event.type, event.event, event.origin || undefined);
    // Typing is momentary; a presence event a new member missed would leave its list wrong for good.
    if (event.type !== "presence") return;
    const { event: presence, origin } = event;
    if (this.joining) for (const buffer of this.joining.values()) buffer.push({ presence, origin });
    if (this.catchingUp) for (const connId of this.catchingUp.keys()) if (connId !== origin) this.gateway.send(connId, "presence", presence);
  }

  beginJoin(connId: string): void {
    (this.joining ??= new Map()).set(connId, []);
  }

  /**
   * Called right after the join ack went out. `delivered` is the last seq the ack covered; the
   * member gets what was buffered after it, then joins the stream.
   */
  activate(connId: string, delivered: number): void {
    const buffered = this.joining?.get(connId);
    if (!buffered) return; // left meanwhile
    this.stopJoining(connId);
    for (const item of buffered) {
      if ("presence" in item) {
        if (item.origin !== connId) this.gateway.send(connId, "presence", item.presence);
      } else if (item.seq > delivered) {
        this.gateway.send(connId, "message", item);
        delivered = item.seq;
      }
    }
    if (delivered > this.lastSeq) (this.catchingUp ??= new Map()).set(connId, delivered);
    else this.goLive(connId);
  }

  remove(connId: string): void {
    this.stopJoining(connId);
    this.stopCatchingUp(connId);
    if (this.live.delete(connId)) this.gateway.removeFromGroup(connId, this.name);
  }

  dispose(): void {
    this.disposed = true;
    this.initialized = false;
    this.generation++;
    this.queue.length = 0;
    clearTimeout(this.retryTimer);
  }

  /**
   * The room's sequence started over (its data expired or Redis lost it): the members' clients
   * hold seqs of the old life. They are sent to reconnect, and rejoining with their old epoch
   * tells them that history was lost.
   */
  private startOver(epoch: string, lastSeq: number): void {
    this.observer.restarted();
    for (const connId of [...this.live, ...(this.joining?.keys() ?? []), ...(this.catchingUp?.keys() ?? [])]) this.gateway.reconnect(connId);
    this.epoch = epoch;
    this.lastSeq = Math.max(0, lastSeq);
    this.queue.length = 0;
    for (const buffer of this.joining?.values() ?? []) buffer.length = 0; // old-life messages; the members reconnect
    this.generation++;
  }

  private stopJoining(connId: string): void {
    if (this.joining?.delete(connId) && this.joining.size === 0) this.joining = undefined;
  }

  private stopCatchingUp(connId: string): void {
    if (this.catchingUp?.delete(connId) && this.catchingUp.size === 0) this.catchingUp = undefined;
  }

  private goLive(connId: string): void {
    this.live.add(connId);
    this.gateway.addToGroup(connId, this.name);
  }

  private deliver(message: ChatMessage): void {
    if (message.seq > this.lastSeq + 1) this.observer.lost(message.seq - this.lastSeq - 1);
    this.lastSeq = message.seq;
    if (this.live.size > 0) this.gateway.broadcast(this.name, "message", message);
    if (this.joining) for (const buffer of this.joining.values()) buffer.push(message);
    if (this.catchingUp) {
      for (const [connId, delivered] of this.catchingUp) {
        if (message.seq < delivered) continue;
        if (message.seq > delivered) this.gateway.send(connId, "message", message); // history lost in between
        this.stopCatchingUp(connId);
        this.goLive(connId);
      }
    }
  }

  /** Works through the queue in order; only one pump runs at a time. */
  private async pump(): Promise<void> {
    if (this.pumping || !this.initialized || this.disposed) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.disposed) {
        const next = this.queue[0]!;
        const generation = this.generation;
        if (next === CATCH_UP) {
          await this.fill(Number.MAX_SAFE_INTEGER);
        } else if (next.seq > this.lastSeq) {
          if (next.seq > this.lastSeq + 1) await this.fill(next.seq);
          // The stream restarted meanwhile: `next` belongs to the old life and the queue was reset.
          if (generation !== this.generation) continue;
          // If history no longer reaches back, the gap is accepted: members see the jump in seq.
          this.deliver(next);
        }
        if (generation === this.generation) this.queue.shift();
      }
    } catch (err) {
      // The bus is down: keep the queue and try again; nothing is delivered out of order meanwhile.
      this.onError(err);
      this.retryTimer = setTimeout(() => void this.pump(), RETRY_MS);
      this.retryTimer.unref(); // must not keep the process alive
    } finally {
      this.pumping = false;
    }
  }

  /** Delivers retained messages with lastSeq < seq < until. */
  private async fill(until: number): Promise<void> {
    for (;;) {
      const generation = this.generation;
      const page = await this.readAfter(this.lastSeq, FILL_BATCH);
      // The stream restarted while the read was out: the page may belong to the old life.
      if (this.disposed || generation !== this.generation) return;
      if (page.epoch !== this.epoch) {
        this.startOver(page.epoch, page.head);
        return;
      }
      let progressed = false;
      for (const message of page.messages) {
        if (message.seq >= until) return;
        if (message.seq > this.lastSeq) {
          this.deliver(message);
          this.observer.recovered(1);
          progressed = true;
        }
      }
      if (!progressed || page.messages.length < FILL_BATCH) return;
    }
  }
}
