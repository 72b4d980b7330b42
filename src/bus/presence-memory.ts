import type { Member } from "../protocol.js";
import type { AddResult, PresenceEntry, PresenceStore, RemoveResult } from "./presence.js";

interface UserPresence {
  member: Member;
  conns: Set<string>;
}

/** The single-process presence store: room -> user -> that user's connections. */
export class MemoryPresence implements PresenceStore {
  private readonly rooms = new Map<string, Map<string, UserPresence>>();

  async add(room: string, entry: PresenceEntry, capacity: number): Promise<AddResult> {
    let users = this.rooms.get(room);
    const existing = users?.get(entry.user.id);
    if (existing) {
      existing.conns.add(entry.connId);
      return { ok: true, firstOfUser: false, members: this.list(users!) };
    }
    if (capacity > 0 && (users?.size ?? 0) >= capacity) return { ok: false, reason: "room_full" };
    if (!users) {
      users = new Map();
      this.rooms.set(room, users);
    }
    users.set(entry.user.id, { member: entry.user, conns: new Set([entry.connId]) });
    return { ok: true, firstOfUser: true, members: this.list(users) };
  }

  async remove(room: string, entry: PresenceEntry): Promise<RemoveResult> {
    const users = this.rooms.get(room);
    const user = users?.get(entry.user.id);
    if (!users || !user || !user.conns.delete(entry.connId)) return { lastOfUser: false };
    if (user.conns.size > 0) return { lastOfUser: false };
    users.delete(entry.user.id);
    if (users.size === 0) this.rooms.delete(room);
    return { lastOfUser: true, member: user.member };
  }

  async members(room: string): Promise<Member[]> {
    const users = this.rooms.get(room);
    return users ? this.list(users) : [];
  }

  async settled(): Promise<void> {
    // One process's memory: nothing to write back.
  }

  onChange(): void {
    // One process: its entries die with it.
  }

  async close(): Promise<void> {
    this.rooms.clear();
  }

  private list(users: Map<string, UserPresence>): Member[] {
    return Array.from(users.values(), (u) => u.member);
  }
}
