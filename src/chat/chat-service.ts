import type { Broker } from "../bus/broker.js";
import type { PresenceStore } from "../bus/presence.js";
import type { Member } from "../protocol.js";
import type { Gateway } from "./gateway.js";
import type { StreamObserver } from "./local-room.js";
import type { RateSpec } from "./rate-limiter.js";
import { RoomRegistry } from "./room-registry.js";
import { RosterRefresh } from "./roster-refresh.js";
import { Session } from "./session.js";

export interface ChatLimits {
  maxMessageLength: number;
  maxRoomsPerConnection: number;
  /** Users per room; 0 means unlimited. */
  roomCapacity: number;
  messageRate: RateSpec;
  typingRate: RateSpec;
  /** Joins cost the bus several round trips; this bounds join/leave loops. */
  joinRate: RateSpec;
  /** Each history read (and each join of a room already joined, which reads the same) costs the bus a read of up to a page of messages. */
  historyRate: RateSpec;
}

export interface ChatServiceDeps {
  broker: Broker;
  presence: PresenceStore;
  gateway: Gateway;
  limits: ChatLimits;
  unsubscribeDelayMs: number;
  /** Failures of the bus that nobody waits for (a relay, a gap fill); the caller logs and counts them. */
  onBusError: (err: unknown, context: string) => void;
  /** Gaps in rooms' live streams and how they were closed, for monitoring. */
  streams?: StreamObserver;
}

/**
 * The chat domain's entry point: opens a Session per connection and routes what arrives from
 * the bus to the local rooms. Knows nothing of Socket.IO or Redis.
 */
export class ChatService {
  readonly rooms: RoomRegistry;
  private readonly roster: RosterRefresh;
  private closeStarted = false;
  private readonly sessions = new Set<Session>();
  /** One function for every session (not a closure per connection). */
  private readonly forget = (session: Session): void => void this.sessions.delete(session);

  constructor(private readonly deps: ChatServiceDeps) {
    this.rooms = new RoomRegistry(deps.broker, deps.gateway, {
      unsubscribeDelayMs: deps.unsubscribeDelayMs,
      onError: (err, room) => deps.onBusError(err, `room ${room}`),
      streams: deps.streams,
    });
    this.roster = new RosterRefresh(
      deps.presence,
      {
        wanted: (room) => this.rooms.get(room)?.hasActiveMembers() === true,
        send: (room, event) => this.rooms.get(room)?.sendMembers(event),
      },
      (err) => deps.onBusError(err, "members refresh"),
    );
    deps.broker.onEvent((room, event) => {
      const local = this.rooms.get(room);
      if (!local) return;
      if (event.type === "message") return local.receive(event.message, event.epoch);
      if (event.type === "presence") this.roster.observe(event.event);
      local.relay(event);
    });
    // The bus may have dropped events of these rooms: messages come back from history, presence
    // from the presence store.
    deps.broker.onResync((room) => {
      const names = room === undefined ? this.rooms.subscribedNames() : [room];
      this.roster.refresh(names.filter((name) => this.rooms.resync(name)));
    });
    deps.presence.onChange((room, kind, member) => {
      const event = { type: "presence", event: { room, event: kind, member }, origin: "" } as const;
      deps.broker.publishEphemeral(room, event).catch((err) => deps.onBusError(err, "presence relay"));
    });
  }

  /** Set once close() began: a connection arriving now must be sent away, not given a session. */
  get closing(): boolean {
    return this.closeStarted;
  }

  openSession(connId: string, user: Member): Session {
    // A session opened now would outlive close(): its presence entries would never be removed.
    if (this.closeStarted) throw new Error("openSession after close");
    const session = new Session(connId, user, this.deps, this.rooms, this.forget);
    this.sessions.add(session);
    return session;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Who is connected here: each open session's connection id and user. */
  connections(): Array<{ id: string; user: Member }> {
    return [...this.sessions].map((session) => ({ id: session.connId, user: session.user }));
  }

  /** Leaves every room of every session (presence cleaned up), then drops the subscriptions. */
  async close(): Promise<void> {
    this.closeStarted = true;
    this.roster.close();
    await Promise.allSettled([...this.sessions].map((session) => session.close()));
    await this.rooms.close();
  }
}
