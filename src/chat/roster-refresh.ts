import type { PresenceStore } from "../bus/presence.js";
import type { Member, PresenceEvent } from "../protocol.js";
import type { Gateway } from "./gateway.js";

/**
 * Presence events travel on the at-most-once bus like messages, but have no seq and no history to
 * close a gap from. After the bus may have dropped some (a resubscribe), a room's local members
 * are sent the whole member list, read again from the presence store, as a `members` event.
 *
 * The read and the room's live presence events come over different connections, so each event
 * that arrives while the read is out may have been applied to the store before or after the read
 * saw it. The events are applied on top of the read's answer in the order they came: a user's
 * last event wins, which is what the store holds after both.
 */
export class RosterRefresh {
  /** Per room, the events seen by each read still out. */
  private readonly pending = new Map<string, PresenceEvent[][]>();

  constructor(
    private readonly presence: PresenceStore,
    private readonly gateway: Gateway,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Reads the room's members and sends them to its local members; never throws. */
  async refresh(room: string): Promise<void> {
    const seen: PresenceEvent[] = [];
    const reads = this.pending.get(room) ?? [];
    reads.push(seen);
    this.pending.set(room, reads);
    try {
      const members = new Map<string, Member>((await this.presence.members(room)).map((m) => [m.id, m]));
      for (const event of seen) {
        if (event.event === "join") members.set(event.member.id, event.member);
        else members.delete(event.member.id);
      }
      this.gateway.broadcast(room, "members", { room, members: [...members.values()] });
    } catch (err) {
      this.onError(err); // the next resubscribe tries again
    } finally {
      reads.splice(reads.indexOf(seen), 1);
      if (reads.length === 0) this.pending.delete(room);
    }
  }

  /** Every presence event relayed to a room's members passes here. */
  observe(event: PresenceEvent): void {
    for (const seen of this.pending.get(event.room) ?? []) seen.push(event);
  }
}
