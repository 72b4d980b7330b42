import type { HistoryPage } from "../bus/broker.js";
import type { PresenceEntry } from "../bus/presence.js";
import { failure } from "../errors.js";
import {
  HISTORY_DEFAULT_LIMIT,
  JOIN_MESSAGES,
  RECOVERY_MESSAGES,
  type Ack,
  type ChatMessage,
  type Failure,
  type HistoryRequest,
  type HistoryResult,
  type JoinRequest,
  type JoinResult,
  type LeaveRequest,
  type Member,
  type MessageRequest,
  type SendResult,
  type TypingRequest,
} from "../protocol.js";
import type { ChatServiceDeps } from "./chat-service.js";
import type { LocalRoom } from "./local-room.js";
import { TokenBucket } from "./rate-limiter.js";
import type { RoomRegistry } from "./room-registry.js";

type Reply<T> = (ack: Ack<T>) => void;

/** What a join read from history: the ack's messages and the last seq they cover. */
interface JoinRead {
  page: HistoryPage;
  recovered?: boolean;
}

/**
 * Rooms joined or being joined: a room maps to the promise of a join in flight (settles true once
 * joined, false if the join failed), or to `true` once joined. Kept as a flat [room, state, ...]
 * array, made on the first join: a connection is in a few rooms (at most maxRoomsPerConnection),
 * and one Map per connection costs more memory than scanning a handful of entries.
 */
type Membership = Promise<boolean> | true;

/**
 * One connection's view of the chat: the rooms it is in, its rate limits, and the operations a
 * client can ask for. Every operation answers with a value (an ack), never by throwing.
 *
 * There is one per connection, so it holds little: no closures, rate buckets made on first use
 * (a full bucket and no bucket behave the same), and it is its own presence entry.
 */
export class Session implements PresenceEntry {
  private memberships: Array<string | Membership> | undefined;
  private messageBucket: TokenBucket | undefined;
  private typingBucket: TokenBucket | undefined;
  private joinBucket: TokenBucket | undefined;
  private historyBucket: TokenBucket | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    readonly connId: string,
    readonly user: Member,
    private readonly deps: ChatServiceDeps,
    private readonly rooms: RoomRegistry,
    private readonly onClosed: (session: Session) => void,
  ) {}

  private get closed(): boolean {
    return this.closing !== undefined;
  }

  private membership(room: string): Membership | undefined {
    const list = this.memberships;
    if (list) for (let i = 0; i < list.length; i += 2) if (list[i] === room) return list[i + 1] as Membership;
    return undefined;
  }

  private setMembership(room: string, state: Membership): void {
    const list = (this.memberships ??= []);
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === room) {
        list[i + 1] = state;
        return;
      }
    }
    list.push(room, state);
  }

  private deleteMembership(room: string): void {
    const list = this.memberships;
    if (!list) return;
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === room) {
        list.splice(i, 2);
        return;
      }
    }
  }

  private isJoined(room: string): boolean {
    return this.membership(room) === true;
  }

  /** The rooms joined (not those still being joined). */
  private pendingJoins(): Array<Promise<boolean>> {
    const pending: Array<Promise<boolean>> = [];
    const list = this.memberships ?? [];
    for (let i = 1; i < list.length; i += 2) if (list[i] !== true) pending.push(list[i] as Promise<boolean>);
    return pending;
  }

  private joinedRooms(): string[] {
    const rooms: string[] = [];
    const list = this.memberships ?? [];
    for (let i = 0; i < list.length; i += 2) if (list[i + 1] === true) rooms.push(list[i] as string);
    return rooms;
  }

  /** Answers through `reply` so the ack reaches the client before any live message of the room. */
  async join(req: JoinRequest, reply: Reply<JoinResult>): Promise<void> {
    const { room } = req;
    if (this.closed) return reply(failure("unavailable", "connection closed"));
    // Wait for a join of this room already in flight, then look again: it may have joined,
    // failed, or been left meanwhile, and a second join must not enter beside it.
    for (let state = this.membership(room); state !== undefined; state = this.membership(room)) {
      if (state === true) {
        // Already a member: answer with the current state, the stream goes on as it was. It reads
        // what a history request reads (up to 1000 messages, with since), and is charged as one.
        if (!this.takeHistoryRead()) return reply(failure("rate_limited", "too many history reads; slow down"));
        reply(await this.rejoin(req));
        return;
      }
      await state;
    }
    if (this.closed) return reply(failure("unavailable", "connection closed"));
    if ((this.memberships?.length ?? 0) / 2 >= this.deps.limits.maxRoomsPerConnection) {
      reply(failure("too_many_rooms"));
      return;
    }
    if (!(this.joinBucket ??= new TokenBucket(this.deps.limits.joinRate)).take()) {
      reply(failure("rate_limited", "too many joins; slow down"));
      return;
    }
    let settle!: (joined: boolean) => void;
    this.setMembership(room, new Promise((resolve) => (settle = resolve)));
    const result = await this.enter(req);
    if (!result.ok) {
      this.deleteMembership(room);
      settle(false);
      reply(result);
      return;
    }
    reply(result.ack);
    result.local.activate(this.connId, result.ack.head);
    this.setMembership(room, true);
    settle(true);
  }

  async leave(req: LeaveRequest): Promise<Ack<object>> {
    const state = this.membership(req.room);
    if (state === undefined || (state !== true && !(await state)) || !this.isJoined(req.room)) return failure("not_in_room");
    await this.exit(req.room);
    return { ok: true };
  }

  async send(req: MessageRequest): Promise<Ack<SendResult>> {
    if (!this.isJoined(req.room)) return failure("not_in_room");
    const { maxMessageLength } = this.deps.limits;
    if (req.text.trim().length === 0) return failure("bad_request", "text must not be empty");
    // Length counts characters (code points); .length is an upper bound, so count only when it may matter.
    if (req.text.length > maxMessageLength && [...req.text].length > maxMessageLength) {
      return failure("too_large", `text is longer than ${maxMessageLength} characters`);
    }
    if (!(this.messageBucket ??= new TokenBucket(this.deps.limits.messageRate)).take()) return failure("rate_limited", "too many messages; slow down");
    const draft = { room: req.room, ts: Date.now(), from: this.user, text: req.text } as Omit<ChatMessage, "seq">;
    if (req.clientMsgId !== undefined) draft.clientMsgId = req.clientMsgId;
    try {
      const message = await this.deps.broker.publishMessage(req.room, draft, this.rooms.get(req.room)?.position());
      return { ok: true, seq: message.seq, ts: message.ts };
    } catch (err) {
      this.deps.onBusError(err, "publish");
      return failure("unavailable");
    }
  }

  async history(req: HistoryRequest): Promise<Ack<HistoryResult>> {
    if (!this.isJoined(req.room)) return failure("not_in_room");
    if (!this.takeHistoryRead()) return failure("rate_limited", "too many history reads; slow down");
    const query = { limit: req.limit ?? HISTORY_DEFAULT_LIMIT, ...(req.before !== undefined && { before: req.before }) };
    try {
      const page = await this.deps.broker.history(req.room, query);
      return { ok: true, messages: page.messages };
    } catch (err) {
      this.deps.onBusError(err, "history");
      return failure("unavailable");
    }
  }

  private takeHistoryRead(): boolean {
    return (this.historyBucket ??= new TokenBucket(this.deps.limits.historyRate)).take();
  }

  /** Typing is best effort: relayed if possible, never stored, dropped when the bus is down. */
  typing(req: TypingRequest): Failure | undefined {
    if (!this.isJoined(req.room)) return failure("not_in_room");
    if (!(this.typingBucket ??= new TokenBucket(this.deps.limits.typingRate)).take()) return failure("rate_limited", "too many typing events; slow down");
    const event = { type: "typing", event: { room: req.room, member: this.user }, origin: this.connId } as const;
    this.deps.broker.publishEphemeral(req.room, event).catch(() => {});
    return undefined;
  }

  /**
   * The connection is gone: leave every room. Joins still in flight roll themselves back. Every
   * caller (the disconnect, a shutdown) gets the same promise, so a shutdown waits for presence.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // Joins in flight finish first: they see the session closed and roll themselves back, and
      // none may add presence after the process has left Redis (nothing would ever reap it).
      await Promise.allSettled(this.pendingJoins());
      await Promise.allSettled(this.joinedRooms().map((room) => this.exit(room)));
      this.onClosed(this);
    })();
    return this.closing;
  }

  private async enter(
    req: JoinRequest,
  ): Promise<{ ok: true; ack: { ok: true } & JoinResult; local: LocalRoom } | Failure> {
    const { room } = req;
    let local: LocalRoom;
    try {
      local = await this.rooms.acquire(room);
    } catch {
      return failure("unavailable");
    }
    local.beginJoin(this.connId);
    // Counted as added before the call: if it times out, the script may still have run in Redis,
    // and removing an entry that is not there is harmless.
    let added = false;
    const undo = async (): Promise<void> => {
      local.remove(this.connId);
      this.rooms.release(room);
      if (added) await this.removePresence(room);
    };
    try {
      added = true;
      const presence = await this.deps.presence.add(room, this, this.deps.limits.roomCapacity);
      if (!presence.ok) {
        added = false;
        await undo();
        return failure("room_full", `room ${room} is full`);
      }
      if (presence.firstOfUser) this.announce(room, "join");
      const read = await this.readForJoin(req);
      if (this.closed) {
        await undo();
        return failure("unavailable", "connection closed");
      }
      const { head, epoch, messages } = read.page;
      const ack = { ok: true as const, room, head, epoch, members: presence.members, messages };
      return { ok: true, ack: read.recovered === undefined ? ack : { ...ack, recovered: read.recovered }, local };
    } catch (err) {
      this.deps.onBusError(err, "join");
      await undo().catch(() => {});
      return failure("unavailable");
    }
  }

  /**
   * Without `since`: the newest messages. With it: every retained message after it, and whether
   * that closes the gap. A `since` from another epoch or beyond the head belongs to an earlier
   * life of the room: nothing can be recovered, so the client gets the newest messages instead.
   */
  private async readForJoin(req: JoinRequest): Promise<JoinRead> {
    const { broker } = this.deps;
    const { room, since } = req;
    if (since === undefined) return { page: await broker.history(room, { limit: JOIN_MESSAGES }) };
    const page = await broker.history(room, { after: since, limit: RECOVERY_MESSAGES });
    const sameLife = (req.epoch === undefined || req.epoch === page.epoch || since === 0) && since <= page.head;
    if (!sameLife) return { page: await broker.history(room, { limit: JOIN_MESSAGES }), recovered: false };
    const missing = page.head - since;
    if (missing > RECOVERY_MESSAGES) {
      return { page: await broker.history(room, { limit: RECOVERY_MESSAGES }), recovered: false };
    }
    return { page, recovered: page.messages.length === missing };
  }

  private async rejoin(req: JoinRequest): Promise<Ack<JoinResult>> {
    try {
      const [read, members] = await Promise.all([this.readForJoin(req), this.deps.presence.members(req.room)]);
      const { head, epoch, messages } = read.page;
      const ack = { ok: true as const, room: req.room, head, epoch, members, messages };
      return read.recovered === undefined ? ack : { ...ack, recovered: read.recovered };
    } catch (err) {
      this.deps.onBusError(err, "join");
      return failure("unavailable");
    }
  }

  private async exit(room: string): Promise<void> {
    this.deleteMembership(room);
    this.rooms.get(room)?.remove(this.connId);
    this.rooms.release(room);
    await this.removePresence(room);
  }

  private async removePresence(room: string): Promise<void> {
    try {
      const removed = await this.deps.presence.remove(room, this);
      if (removed.lastOfUser) this.announce(room, "leave", removed.member);
    } catch (err) {
      this.deps.onBusError(err, "presence remove");
    }
  }

  private announce(room: string, kind: "join" | "leave", member: Member = this.user): void {
    const event = { type: "presence", event: { room, event: kind, member }, origin: this.connId } as const;
    this.deps.broker.publishEphemeral(room, event).catch((err) => this.deps.onBusError(err, "presence relay"));
  }
}
