import type { PresenceStore } from "../bus/presence.js";
import type { Member, MembersEvent, PresenceEvent } from "../protocol.js";

/** Reads out at once: after a reconnect every room of the process asks, and each is one command. */
const CONCURRENCY = 32;
/** A failed read is tried again after this, doubling up to MAX_RETRY_MS, while the room has members here. */
const RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;
/** Failures are reported at most this often: a shard down fails every one of its rooms' reads. */
const REPORT_EVERY_MS = 1000;

/** Where the lists go: the rooms this process serves. */
export interface RosterTarget {
  /** Whether the room has local members past their join ack: a read for nobody is skipped. */
  wanted(room: string): boolean;
  send(room: string, event: MembersEvent): void;
}

/**
 * Presence events travel on the at-most-once bus like messages, but have no seq and no history to
 * close a gap from. After the bus may have dropped some (a resubscribe), a room's local members
 * are sent the whole member list, read again from the presence store, as a `members` event.
 *
 * - The read waits until the store has written this process's own entries back (after a long
 *   outage the others may have reaped them): otherwise the list would leave out the very members
 *   it is sent to.
 * - The read and the room's live presence events come over different connections, so each event
 *   that arrives while the read is out may have been applied to the store before or after the
 *   read saw it. The events are applied on top of the read's answer in the order they came: a
 *   user's last event wins, which is what the store holds after both.
 */
export class RosterRefresh {
  /** Per room, the events seen by each read still out. */
  private readonly pending = new Map<string, PresenceEvent[][]>();
  /** Rooms waiting for a read; a room waits once however often it is asked for. */
  private readonly waiting = new Set<string>();
  /** Rooms whose last read failed, and how many times in a row. */
  private readonly failures = new Map<string, number>();
  private running = 0;
  private lastReport = 0;
  private closed = false;

  constructor(
    private readonly presence: PresenceStore,
    private readonly target: RosterTarget,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Sends each of these rooms' local members the room's member list, soon; never throws. */
  refresh(rooms: Iterable<string>): void {
    for (const room of rooms) this.waiting.add(room);
    this.drain();
  }

  /** Every presence event relayed to a room's members passes here. */
  observe(event: PresenceEvent): void {
    for (const seen of this.pending.get(event.room) ?? []) seen.push(event);
  }

  close(): void {
    this.closed = true;
    this.waiting.clear();
  }

  private drain(): void {
    for (const room of this.waiting) {
      if (this.running >= CONCURRENCY) return;
      this.waiting.delete(room);
      if (this.closed || !this.target.wanted(room)) {
        this.failures.delete(room);
        continue;
      }
      this.running++;
      void this.send(room).finally(() => {
        this.running--;
        this.drain();
      });
    }
  }

  private async send(room: string): Promise<void> {
    const seen: PresenceEvent[] = [];
    const reads = this.pending.get(room) ?? [];
    reads.push(seen);
    this.pending.set(room, reads);
    try {
      // A turn first: the store's own reconnect handler may run after the one that asked for this.
      await null;
      await this.presence.settled();
      const members = new Map<string, Member>((await this.presence.members(room)).map((m) => [m.id, m]));
      for (const event of seen) {
        if (event.event === "join") members.set(event.member.id, event.member);
        else members.delete(event.member.id);
      }
      this.failures.delete(room);
      this.target.send(room, { room, members: [...members.values()] });
    } catch (err) {
      this.failed(room, err);
    } finally {
      reads.splice(reads.indexOf(seen), 1);
      if (reads.length === 0) this.pending.delete(room);
    }
  }

  private failed(room: string, err: unknown): void {
    const now = Date.now();
    if (now - this.lastReport >= REPORT_EVERY_MS) {
      this.lastReport = now;
      this.onError(err);
    }
    if (this.closed) return;
    const failures = (this.failures.get(room) ?? 0) + 1;
    this.failures.set(room, failures);
    setTimeout(() => this.refresh([room]), Math.min(MAX_RETRY_MS, RETRY_MS * 2 ** (failures - 1))).unref();
  }
}
