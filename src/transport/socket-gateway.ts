import type { Namespace } from "socket.io";
import type { Gateway, PayloadOf, ServerEvent } from "../chat/gateway.js";
import type { DirectTransport } from "./direct/direct-transport.js";

// Socket.IO puts every socket in a room named by its id; prefixing chat rooms keeps a chat room
// that happens to be named like a socket id from reaching that socket. Socket ids contain no '#'.
const group = (room: string): string => `#${room}`;

/** Socket.IO's typed emit does not accept a generic event name; the Gateway's signature carries the types. */
type Emitter = { emit(event: string, payload: unknown): unknown };

/**
 * The chat domain's Gateway over both transports: the direct WebSocket transport, and Socket.IO's
 * namespace for the rest (long-polling, upgraded from it, or every client with
 * WEBSOCKET_TRANSPORT=socketio). A room's members may be on either; broadcasts encode once per
 * message and transport.
 */
export class SocketGateway implements Gateway {
  constructor(
    private readonly nsp: Namespace,
    private readonly direct?: DirectTransport,
  ) {}

  send<E extends ServerEvent>(connId: string, event: E, payload: PayloadOf<E>): void {
    if (this.direct?.send(connId, event, payload)) return;
    (this.nsp.sockets.get(connId) as Emitter | undefined)?.emit(event, payload);
  }

  broadcast<E extends ServerEvent>(room: string, event: E, payload: PayloadOf<E>, exceptConnId?: string): void {
    this.direct?.broadcast(room, event, payload, exceptConnId);
    // Socket.IO encodes before it looks for members: skip it when it has none here.
    if (this.direct && !this.nsp.adapter.rooms.has(group(room))) return;
    const target = exceptConnId ? this.nsp.to(group(room)).except(exceptConnId) : this.nsp.to(group(room));
    (target as Emitter).emit(event, payload);
  }

  addToGroup(connId: string, room: string): void {
    if (this.direct?.addToGroup(connId, room)) return;
    void this.nsp.sockets.get(connId)?.join(group(room));
  }

  reconnect(connId: string): void {
    if (this.direct?.reconnect(connId)) return;
    this.nsp.sockets.get(connId)?.conn.close();
  }

  /** Connections in a room's delivery group on this process, both transports. */
  groupSize(room: string): number {
    return (this.direct?.groupSize(room) ?? 0) + (this.nsp.adapter.rooms.get(group(room))?.size ?? 0);
  }

  removeFromGroup(connId: string, room: string): void {
    this.direct?.removeFromGroup(connId, room);
    void this.nsp.sockets.get(connId)?.leave(group(room));
  }
}
