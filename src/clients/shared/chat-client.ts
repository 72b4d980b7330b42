/**
 * The chat protocol as a client speaks it, for the web page and the terminal client alike:
 * one Socket.IO connection to /chat, the rooms joined (each a RoomState), sends queued per room
 * and confirmed by ack or echo, and reconnects that rejoin every room with `since` + `epoch`.
 * It never touches the DOM or the terminal: it reports what happened as ChatEvents.
 */
import { io, type Socket } from "socket.io-client";
import {
  CHAT_NAMESPACE,
  HISTORY_DEFAULT_LIMIT,
  ROOM_NAME_PATTERN,
  type Ack,
  type ChatMessage,
  type ClientToServerEvents,
  type ErrorBody,
  type Failure,
  type Hello,
  type HistoryResult,
  type JoinResult,
  type Member,
  type PresenceEvent,
  type SendResult,
  type ServerToClientEvents,
} from "../../protocol.js";
import { describeError, randomId } from "./format.js";
import { RoomState, type JoinOutcome } from "./room-state.js";

export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** connecting: never connected yet; reconnecting: lost, retrying; offline: retries keep failing (or closed). */
export type ConnectionState = "connecting" | "connected" | "reconnecting" | "offline";

export type ChatEvent =
  | { type: "connection"; state: ConnectionState }
  | { type: "hello"; hello: Hello }
  | { type: "joined"; room: RoomState; outcome: JoinOutcome }
  | { type: "join-failed"; room: RoomState; error: ErrorBody; rejoin: boolean }
  | { type: "left"; room: RoomState }
  /** New messages in a room's timeline: live (incl. our echo), confirmed by our ack, or older from history. */
  | { type: "messages"; room: RoomState; messages: ChatMessage[]; source: "live" | "sent" | "history" }
  | { type: "presence"; room: RoomState; event: PresenceEvent }
  /** The server sent the room's whole member list, and it differed from ours by these. */
  | { type: "members"; room: RoomState; joined: Member[]; left: Member[] }
  | { type: "typing"; room: RoomState; member: Member }
  /** The room's queue of unconfirmed messages changed. */
  | { type: "pending"; room: RoomState }
  | { type: "error"; room: RoomState | undefined; error: ErrorBody; action: string };

export type Outcome = { ok: true } | Failure;

export interface ChatClientOptions {
  /** Server base URL such as http://localhost:3000; omit in a page served by roomcast (same origin). */
  url?: string;
  name?: string;
  token?: string;
  /** Retry a send answered `rate_limited` after a pause instead of failing it (scripts want every line sent). */
  retryRateLimited?: boolean;
  ackTimeoutMs?: number;
  reconnectionDelayMs?: number;
  reconnectionDelayMaxMs?: number;
}

/** After this many failed connection attempts in a row the state says offline (retries go on). */
const OFFLINE_AFTER_FAILURES = 3;
const TYPING_EVERY_MS = 2000;
const RATE_LIMIT_PAUSE_MS = 300;

export class ChatClient {
  readonly socket: ChatSocket;
  /** Joined rooms, in the order they were joined. */
  readonly rooms = new Map<string, RoomState>();
  user: Member | undefined;
  node: string | undefined;
  /** Every user id this client has had: each connection gets a new one, and old messages are still ours. */
  readonly selfIds = new Set<string>();
  state: ConnectionState = "connecting";
  private readonly listeners = new Set<(event: ChatEvent) => void>();
  private readonly joinWaiters = new Map<RoomState, Array<(outcome: Outcome) => void>>();
  private readonly sendWaiters = new Map<string, { room: RoomState; resolve: (outcome: Outcome) => void }>();
  private readonly sending = new Set<RoomState>();
  private readonly lastTyping = new Map<string, number>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  /** Bumped on every connect: an answer from an older connection is stale. */
  private generation = 0;
  private failures = 0;
  private everConnected = false;
  private networkOffline = false;
  private fatal = false;
  private closed = false;

  constructor(private readonly options: ChatClientOptions = {}) {
    const auth: Record<string, string> = {};
    if (options.name?.trim()) auth.name = options.name.trim();
    if (options.token) auth.token = options.token;
    this.socket = io(`${options.url?.replace(/\/+$/, "") ?? ""}${CHAT_NAMESPACE}`, {
      auth,
      autoConnect: false,
      // WebSocket first (no sticky sessions needed when several processes serve one address);
      // long-polling only where a proxy or network lets no WebSocket through.
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      reconnectionDelay: options.reconnectionDelayMs ?? 500,
      reconnectionDelayMax: options.reconnectionDelayMaxMs ?? 5000,
    });
    this.bindSocket();
  }

  on(listener: (event: ChatEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  connect(): void {
    this.closed = false;
    this.socket.connect();
    this.updateState();
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.socket.disconnect();
    this.updateState();
  }

  /** Reconnects under another name; every room is joined again with recovery. */
  rename(name: string): void {
    this.reconnectWith({ ...(this.socket.auth as Record<string, string>), name: name.trim() });
  }

  /** Reconnects with another token (none: undefined); every room is joined again with recovery. */
  setToken(token: string | undefined): void {
    const { token: _old, ...auth } = this.socket.auth as Record<string, string>;
    this.reconnectWith(token ? { ...auth, token } : auth);
  }

  private reconnectWith(auth: Record<string, string>): void {
    this.socket.auth = auth;
    this.fatal = false;
    this.failures = 0;
    this.socket.disconnect();
    this.connect();
  }

  /** The browser says the network is gone or back: show offline at once instead of after the ping timeout. */
  setNetworkOnline(online: boolean): void {
    this.networkOffline = !online;
    if (!online && this.socket.connected) this.socket.io.engine?.close();
    if (online && !this.socket.connected && !this.socket.active && !this.closed) this.socket.connect();
    this.updateState();
  }

  /** Joins a room (or finds it joined); resolves once the server answered the first join. */
  join(name: string): Promise<Outcome> {
    if (!ROOM_NAME_PATTERN.test(name)) {
      return Promise.resolve(failure("bad_request", "a room name is 1-64 characters of A-Z a-z 0-9 _ . : -"));
    }
    const existing = this.rooms.get(name);
    if (existing && existing.status !== "joining" && existing.status !== "failed") return Promise.resolve({ ok: true });
    const room = existing ?? new RoomState(name);
    if (!existing) this.rooms.set(name, room);
    const done = new Promise<Outcome>((resolve) => this.joinWaiters.set(room, [...(this.joinWaiters.get(room) ?? []), resolve]));
    // A room that failed to rejoin is tried again; one still joining has its request on the way.
    if ((!existing || existing.status === "failed") && this.socket.connected) this.sendJoin(room);
    return done;
  }

  async leave(name: string): Promise<Outcome> {
    const room = this.rooms.get(name);
    if (!room) return failure("not_in_room");
    this.drop(room, failure("not_in_room", "left the room"));
    this.emit({ type: "left", room });
    // Disconnected: the server already forgot us. Otherwise not_in_room just means it had.
    if (this.socket.connected) await this.request<object>("leave", { room: name });
    return { ok: true };
  }

  /** Queues a message; it goes out once the room is joined and connected. Resolves when confirmed or failed. */
  send(name: string, text: string): Promise<Outcome> {
    const room = this.rooms.get(name);
    if (!room) return Promise.resolve(failure("not_in_room"));
    if (text.trim().length === 0) return Promise.resolve(failure("bad_request", "text must not be empty"));
    const pending = room.addPending(text, randomId());
    this.lastTyping.delete(name); // the message ends the typing: the next keystroke says so again
    const settled = new Promise<Outcome>((resolve) => this.sendWaiters.set(pending.clientMsgId, { room, resolve }));
    this.emit({ type: "pending", room });
    this.pump(room);
    return settled;
  }

  /** Sends a failed message again. */
  retry(name: string, clientMsgId: string): void {
    const room = this.rooms.get(name);
    const pending = room?.pending.find((p) => p.clientMsgId === clientMsgId);
    if (!room || !pending || pending.status !== "failed") return;
    pending.status = "queued";
    delete pending.error;
    this.emit({ type: "pending", room });
    this.pump(room);
  }

  discard(name: string, clientMsgId: string): void {
    const room = this.rooms.get(name);
    if (room?.pendingRemove(clientMsgId)) this.emit({ type: "pending", room });
  }

  /** Tells the room we are typing, at most every two seconds. */
  typing(name: string): void {
    const room = this.rooms.get(name);
    const now = Date.now();
    if (!room || room.status !== "joined" || !this.socket.connected) return;
    if (now - (this.lastTyping.get(name) ?? 0) < TYPING_EVERY_MS) return;
    this.lastTyping.set(name, now);
    this.socket.emit("typing", { room: name });
  }

  /** Loads the page of messages before the oldest one shown; resolves with the new ones. */
  async loadOlder(name: string, limit = HISTORY_DEFAULT_LIMIT): Promise<ChatMessage[]> {
    const room = this.rooms.get(name);
    const before = room?.olderBefore();
    if (!room || before === undefined || room.loadingOlder || room.status !== "joined") return [];
    room.loadingOlder = true;
    const epoch = room.epoch;
    const ack = await this.request<HistoryResult>("history", { room: name, before, limit });
    room.loadingOlder = false;
    if (!ack.ok) {
      if (this.socket.connected) this.fail(room, ack.error, "history");
      return [];
    }
    if (room.epoch !== epoch) return []; // history started over meanwhile
    const added = room.applyHistory(ack.messages, limit);
    this.emit({ type: "messages", room, messages: added, source: "history" });
    return added;
  }

  private bindSocket(): void {
    const socket = this.socket;
    socket.on("connect", () => {
      this.generation++;
      this.failures = 0;
      this.everConnected = true;
      this.fatal = false;
      this.updateState();
      for (const room of this.rooms.values()) this.sendJoin(room);
    });
    socket.on("disconnect", () => {
      for (const room of this.rooms.values()) room.disconnected();
      this.sending.clear();
      this.updateState();
    });
    socket.on("connect_error", (err: Error & { data?: Partial<ErrorBody> }) => {
      this.failures++;
      // A refusal by the server (bad token) is final: Socket.IO does not retry it.
      if (!socket.active) {
        this.fatal = true;
        const code = err.data?.code ?? "unauthorized";
        this.emit({ type: "error", room: undefined, error: { code, message: err.data?.message ?? err.message }, action: "connect" });
      }
      this.updateState();
    });
    socket.on("hello", (hello) => {
      this.user = hello.user;
      this.node = hello.node;
      this.selfIds.add(hello.user.id);
      this.emit({ type: "hello", hello });
    });
    socket.on("message", (message) => {
      const room = this.rooms.get(message.room);
      if (!room || room.status !== "joined") return;
      const added = room.applyLive(message);
      this.settleSends(room);
      if (added) this.emit({ type: "messages", room, messages: [message], source: "live" });
    });
    socket.on("presence", (event) => {
      const room = this.rooms.get(event.room);
      if (!room || room.status !== "joined") return;
      if (room.applyPresence(event)) this.emit({ type: "presence", room, event });
    });
    socket.on("members", (event) => {
      const room = this.rooms.get(event.room);
      if (!room || room.status !== "joined") return;
      const { joined, left } = room.applyMembers(event.members, this.user?.id);
      if (joined.length + left.length > 0) this.emit({ type: "members", room, joined, left });
    });
    socket.on("typing", (event) => {
      const room = this.rooms.get(event.room);
      if (!room || room.status !== "joined") return;
      room.applyTyping(event.member);
      this.emit({ type: "typing", room, member: event.member });
    });
    socket.on("error", (event) => {
      if (event.event === "typing") return; // best effort by design
      this.emit({ type: "error", room: undefined, error: event, action: event.event });
    });
  }

  private sendJoin(room: RoomState): void {
    const generation = this.generation;
    const rejoin = room.epoch !== undefined;
    this.call<JoinResult>("join", room.joinRequest(), (ack) => {
      if (generation !== this.generation || this.rooms.get(room.name) !== room) return; // stale: a new join follows
      if (!ack.ok) {
        if (!this.socket.connected) return;
        if (ack.error.code === "rate_limited") {
          this.later(() => this.rooms.get(room.name) === room && generation === this.generation && this.sendJoin(room), RATE_LIMIT_PAUSE_MS * 3);
          return;
        }
        if (rejoin) {
          room.status = "failed";
          room.notice("error", ack.error.code, `Could not rejoin #${room.name}: ${describeError(ack.error)}`);
          this.emit({ type: "join-failed", room, error: ack.error, rejoin });
          this.settleJoin(room, ack);
        } else {
          this.drop(room, ack);
          this.emit({ type: "join-failed", room, error: ack.error, rejoin });
        }
        return;
      }
      const outcome = room.applyJoin(ack);
      this.settleSends(room);
      this.emit({ type: "joined", room, outcome });
      this.settleJoin(room, { ok: true });
      this.pump(room);
    });
  }

  /** Sends the room's queued messages one at a time, in order, each after the previous ack. */
  private pump(room: RoomState): void {
    if (this.sending.has(room) || room.status !== "joined" || !this.socket.connected) return;
    const next = room.pending.find((p) => p.status === "queued");
    if (!next) return;
    this.sending.add(room);
    next.status = "sending";
    const generation = this.generation;
    const payload = { room: room.name, text: next.text, clientMsgId: next.clientMsgId };
    this.call<SendResult>("message", payload, (ack) => {
      if (generation !== this.generation) return; // the connection dropped: it is queued again
      this.sending.delete(room);
      if (!room.pending.includes(next)) {
        this.settleSends(room); // confirmed by its echo already
      } else if (ack.ok) {
        const message: ChatMessage = { room: room.name, seq: ack.seq, ts: ack.ts, from: this.user ?? { id: "", name: "" }, text: next.text, clientMsgId: next.clientMsgId };
        const added = room.applySent(message);
        this.settleSends(room);
        if (added) this.emit({ type: "messages", room, messages: [message], source: "sent" });
      } else if (ack.error.code === "rate_limited" && this.options.retryRateLimited) {
        next.status = "queued";
        this.later(() => this.pump(room), RATE_LIMIT_PAUSE_MS);
        return;
      } else if (!this.socket.connected) {
        next.status = "queued";
        return;
      } else {
        next.status = "failed";
        next.error = ack.error;
        this.fail(room, ack.error, "send");
        this.settleSends(room);
      }
      this.emit({ type: "pending", room });
      this.pump(room);
    });
  }

  private fail(room: RoomState, error: ErrorBody, action: string): void {
    room.notice("error", error.code, describeError(error));
    this.emit({ type: "error", room, error, action });
  }

  /** Resolves the promise of every send that is no longer pending (confirmed) or has failed. */
  private settleSends(room: RoomState): void {
    for (const [id, waiter] of this.sendWaiters) {
      if (waiter.room !== room) continue;
      const pending = room.pending.find((p) => p.clientMsgId === id);
      if (pending && pending.status !== "failed") continue;
      this.sendWaiters.delete(id);
      waiter.resolve(pending?.error ? { ok: false, error: pending.error } : { ok: true });
    }
  }

  /** Forgets a room: its join and its unsent messages end with `outcome`. */
  private drop(room: RoomState, outcome: Failure): void {
    this.rooms.delete(room.name);
    this.sending.delete(room);
    this.settleJoin(room, outcome);
    for (const [id, waiter] of this.sendWaiters) {
      if (waiter.room !== room) continue;
      this.sendWaiters.delete(id);
      waiter.resolve(outcome);
    }
  }

  private settleJoin(room: RoomState, outcome: Outcome): void {
    const waiters = this.joinWaiters.get(room);
    this.joinWaiters.delete(room);
    for (const resolve of waiters ?? []) resolve(outcome);
  }

  private request<T>(event: "join" | "leave" | "message" | "history", payload: object): Promise<Ack<T>> {
    return new Promise((resolve) => this.call<T>(event, payload, resolve));
  }

  /**
   * Emits with an ack; a dropped connection or no answer in time becomes `unavailable`. The
   * callback runs as the ack arrives, not a microtask later: in Node, ws hands over several
   * frames in one go, and a join must be in place before the room's next live message.
   */
  private call<T>(event: "join" | "leave" | "message" | "history", payload: object, onAck: (ack: Ack<T>) => void): void {
    if (!this.socket.connected) {
      queueMicrotask(() => onAck(failure("unavailable", "not connected")));
      return;
    }
    const timed = this.socket.timeout(this.options.ackTimeoutMs ?? 10_000) as unknown as {
      emit(event: string, payload: object, ack: (err: Error | null, res: Ack<T>) => void): void;
    };
    timed.emit(event, payload, (err, res) => onAck(err ? failure("unavailable", "no answer from the server") : res));
  }

  private updateState(): void {
    let state: ConnectionState;
    if (this.socket.connected) state = "connected";
    else if (this.closed || this.fatal || this.networkOffline || this.failures >= OFFLINE_AFTER_FAILURES) state = "offline";
    else state = this.everConnected ? "reconnecting" : "connecting";
    if (state === this.state) return;
    this.state = state;
    this.emit({ type: "connection", state });
  }

  private later(fn: () => void, ms: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private emit(event: ChatEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

function failure(code: ErrorBody["code"], message: string = code): Failure {
  return { ok: false, error: { code, message } };
}
