import type { Member } from "../protocol.js";

/** One connection of a user in a room. A user with several connections counts once. */
export interface PresenceEntry {
  connId: string;
  user: Member;
}

export type RemoveResult = { lastOfUser: false } | { lastOfUser: true; member: Member };

export type AddResult = { ok: true; firstOfUser: boolean; members: Member[] } | { ok: false; reason: "room_full" };

/**
 * A change the session that caused it could not report: the users of a process that died
 * ("leave"), users re-added after the store had dropped them while disconnected ("join"), or a
 * removal that went through after `remove` had stopped waiting for it ("leave").
 */
export type PresenceChangeHandler = (room: string, kind: "join" | "leave", member: Member) => void;

/**
 * Who is in which room, cluster-wide.
 *
 * Contract: `add` checks capacity (counted in users, not connections) atomically with adding, so
 * concurrent joins never overfill a room. Entries of a process that stops refreshing them expire
 * within the configured presence timeout, and `onChange` reports each user that left that way.
 */
export interface PresenceStore {
  add(room: string, entry: PresenceEntry, capacity: number): Promise<AddResult>;
  /**
   * Returns whether this was the user's last connection in the room, and the user as the room
   * knew them (the name their first connection gave, which the leave event must repeat).
   */
  remove(room: string, entry: PresenceEntry): Promise<RemoveResult>;
  members(room: string): Promise<Member[]>;
  /**
   * Resolves once this process's own entries, which it writes back after a reconnect (others may
   * have reaped them meanwhile), are in the store again: a `members` read after it lists every
   * local user. Rejects if that takes longer than a command may.
   */
  settled(): Promise<void>;
  onChange(handler: PresenceChangeHandler): void;
  close(): Promise<void>;
}
