/**
 * One room as a client sees it: its timeline (messages in seq order, with notices), members, who
 * is typing, messages still being sent, and what to ask for on reconnect. No DOM and no socket:
 * the web page and the terminal client both keep their rooms in this.
 */
import type { ChatMessage, ErrorBody, JoinRequest, JoinResult, Member, PresenceEvent } from "../../protocol.js";
import { describeChanges } from "./format.js";

export type NoticeLevel = "info" | "warn" | "error";

export interface MessageItem {
  kind: "message";
  /** Unique in the timeline: the room's epoch and the message's seq. */
  key: string;
  epoch: string;
  message: ChatMessage;
}

export interface NoticeItem {
  kind: "notice";
  key: string;
  level: NoticeLevel;
  text: string;
  ts: number;
  /** What the notice is about, for styling and tests: "presence", "recovery", an error code... */
  topic: string;
}

export type TimelineItem = MessageItem | NoticeItem;

export type PendingStatus = "queued" | "sending" | "failed";

/** A message typed here that the server has not confirmed yet. */
export interface PendingMessage {
  clientMsgId: string;
  room: string;
  text: string;
  status: PendingStatus;
  error?: ErrorBody;
  createdAt: number;
}

/** joining: first join in flight; joined: live; rejoining: connection lost, will join again with `since`. */
export type RoomStatus = "joining" | "joined" | "rejoining" | "failed";

export interface JoinOutcome {
  /** Messages of the ack that were not in the timeline yet, oldest first. */
  added: ChatMessage[];
  /** This join followed an earlier one of the same room (a reconnect). */
  rejoin: boolean;
  /** The server's history of the room started over (new epoch): what is above is from before. */
  reset: boolean;
  /** The server could not return every message after `since`: some are missing. */
  gap: boolean;
}

/** How long "X is typing" shows after X's last typing event. */
export const TYPING_SHOW_MS = 4000;

export class RoomState {
  status: RoomStatus = "joining";
  /** The room's history epoch from the last join ack; undefined before the first join. */
  epoch: string | undefined;
  /**
   * The last seq received through the ordered stream (join acks and live messages): the `since`
   * of the next join. Own messages confirmed by their ack do not move it, because their ack may
   * overtake earlier messages of others still on their way.
   */
  lastSeq = 0;
  readonly items: TimelineItem[] = [];
  readonly members = new Map<string, Member>();
  readonly pending: PendingMessage[] = [];
  /** True once `history` has nothing older to give for the current epoch. */
  olderExhausted = false;
  loadingOlder = false;
  private readonly keys = new Set<string>();
  private readonly typists = new Map<string, { member: Member; until: number }>();
  private noticeCount = 0;

  constructor(readonly name: string) {}

  /** The join payload: with `since` and `epoch` once the room has been joined before. */
  joinRequest(): JoinRequest {
    if (this.epoch === undefined) return { room: this.name };
    return { room: this.name, since: this.lastSeq, epoch: this.epoch };
  }

  /** Takes a join ack: members, the messages it carries, and what it says about recovery. */
  applyJoin(ack: JoinResult, now = Date.now()): JoinOutcome {
    const rejoin = this.epoch !== undefined;
    const reset = rejoin && ack.epoch !== this.epoch;
    const gap = rejoin && !reset && ack.recovered === false;
    if (reset) {
      this.lastSeq = 0;
      this.olderExhausted = false;
      this.notice(
        "warn",
        "recovery",
        `The server's history of #${this.name} started over (the server restarted or the room expired). Messages above are from before; some sent meanwhile may be missing.`,
        now,
      );
    } else if (gap) {
      this.notice("warn", "recovery", `Some messages sent while you were away could not be recovered: the server's history of #${this.name} no longer reaches back that far.`, now);
    }
    this.epoch = ack.epoch;
    this.members.clear();
    for (const member of ack.members) this.members.set(member.id, member);
    this.typists.clear();
    const added: ChatMessage[] = [];
    for (const message of ack.messages) {
      if (this.insert(message)) added.push(message);
      this.settlePending(message);
    }
    this.lastSeq = Math.max(this.lastSeq, ack.head);
    this.status = "joined";
    return { added, rejoin, reset, gap };
  }

  /** A live message of the ordered stream. Returns false for a duplicate. */
  applyLive(message: ChatMessage): boolean {
    this.lastSeq = Math.max(this.lastSeq, message.seq);
    this.typists.delete(message.from.id);
    this.settlePending(message);
    return this.insert(message);
  }

  /** Our own message, confirmed by its ack (possibly before its echo arrives). */
  applySent(message: ChatMessage): boolean {
    this.pendingRemove(message.clientMsgId);
    return this.insert(message);
  }

  /** Older messages from `history`, oldest first; returns those that were new. */
  applyHistory(messages: ChatMessage[], limit: number): ChatMessage[] {
    const added = messages.filter((m) => this.insert(m));
    if (messages.length < limit || messages[0]?.seq === 1) this.olderExhausted = true;
    return added;
  }

  /**
   * A presence event; one that changes nothing (the server may send a join or leave the member
   * list already reflects, around a join or a reconnect) adds no notice. Returns whether it changed the list.
   */
  applyPresence(event: PresenceEvent, now = Date.now()): boolean {
    const { id, name } = event.member;
    if (event.event === "join") {
      const known = this.members.get(id);
      this.members.set(id, event.member);
      if (known) return false;
      this.notice("info", "presence", `${name} joined`, now);
    } else {
      if (!this.dropMember(id)) return false;
      this.notice("info", "presence", `${name} left`, now);
    }
    return true;
  }

  /**
   * The server's whole member list (sent after it may have missed presence events). Returns who
   * it adds and who it drops. Up to three changes get a notice each, more get one notice in all.
   * `selfId` stays a member: this client knows it is in the room, whatever the list says.
   */
  applyMembers(members: Member[], selfId?: string, now = Date.now()): { joined: Member[]; left: Member[] } {
    const listed = new Map(members.map((m) => [m.id, m]));
    const left = [...this.members.values()].filter((m) => !listed.has(m.id) && m.id !== selfId);
    const joined = [...listed.values()].filter((m) => !this.members.has(m.id));
    for (const member of listed.values()) this.members.set(member.id, member); // a newer name, too
    if (joined.length + left.length <= 3) {
      for (const member of left) this.applyPresence({ room: this.name, event: "leave", member }, now);
      for (const member of joined) this.notice("info", "presence", `${member.name} joined`, now);
      return { joined, left };
    }
    for (const member of left) this.dropMember(member.id);
    this.notice("info", "presence", `Members updated: ${describeChanges(joined, left)}`, now);
    return { joined, left };
  }

  /** A member gone: from the list, and from who is typing. */
  private dropMember(id: string): boolean {
    this.typists.delete(id);
    return this.members.delete(id);
  }

  applyTyping(member: Member, now = Date.now()): void {
    this.typists.set(member.id, { member, until: now + TYPING_SHOW_MS });
  }

  /** Names of the others typing now, oldest typist first. */
  typingNames(selfId: string | undefined, now = Date.now()): string[] {
    const names: string[] = [];
    for (const [id, entry] of this.typists) {
      if (entry.until <= now) this.typists.delete(id);
      else if (id !== selfId) names.push(entry.member.name);
    }
    return names;
  }

  /** The connection dropped: typing stops, messages in flight go back to the queue. */
  disconnected(): void {
    if (this.status === "joined") this.status = "rejoining";
    this.typists.clear();
    for (const p of this.pending) if (p.status === "sending") p.status = "queued";
  }

  notice(level: NoticeLevel, topic: string, text: string, now = Date.now()): NoticeItem {
    const item: NoticeItem = { kind: "notice", key: `n:${++this.noticeCount}`, level, text, ts: now, topic };
    this.items.push(item);
    return item;
  }

  /** Messages of the current epoch, oldest first. */
  messages(): ChatMessage[] {
    return this.items.filter((i): i is MessageItem => i.kind === "message" && i.epoch === this.epoch).map((i) => i.message);
  }

  /** The `before` of the next `history` request, or undefined when there is nothing older. */
  olderBefore(): number | undefined {
    if (this.olderExhausted || this.epoch === undefined) return undefined;
    const oldest = this.items.find((i): i is MessageItem => i.kind === "message" && i.epoch === this.epoch);
    const before = oldest ? oldest.message.seq : this.lastSeq + 1;
    return before > 1 ? before : undefined;
  }

  addPending(text: string, clientMsgId: string, now = Date.now()): PendingMessage {
    const pending: PendingMessage = { clientMsgId, room: this.name, text, status: "queued", createdAt: now };
    this.pending.push(pending);
    return pending;
  }

  pendingRemove(clientMsgId: string | undefined): boolean {
    const index = this.pending.findIndex((p) => p.clientMsgId === clientMsgId);
    if (index < 0) return false;
    this.pending.splice(index, 1);
    return true;
  }

  /** Inserts in seq order within the current epoch; false if already there. */
  private insert(message: ChatMessage): boolean {
    const epoch = this.epoch ?? "";
    const key = `m:${epoch}:${message.seq}`;
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    const item: MessageItem = { kind: "message", key, epoch, message };
    // Before the first message of the same epoch with a larger seq; usually that is none: append.
    let at = this.items.length;
    for (let i = this.items.length - 1; i >= 0; i--) {
      const other = this.items[i]!;
      if (other.kind !== "message" || other.epoch !== epoch) continue;
      if (other.message.seq < message.seq) break;
      at = i;
    }
    this.items.splice(at, 0, item);
    return true;
  }

  /**
   * The echo (or a recovered copy) of a message we sent settles its pending entry. Matched by
   * clientMsgId alone: after a reconnect our user id is a new one, and the ids are random.
   */
  private settlePending(message: ChatMessage): void {
    if (message.clientMsgId !== undefined) this.pendingRemove(message.clientMsgId);
  }
}
