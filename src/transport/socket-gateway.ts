import type { Namespace } from "socket.io";
import type { Gateway, PayloadOf, ServerEvent } from "../chat/gateway.js";

// Socket.IO puts every socket in a room named by its id; prefixing chat rooms keeps a chat room
// that happens to be named like a socket id from reaching that socket. Socket ids contain no '#'.
const group = (room: string): string => `#${room}`;

/** Socket.IO's typed emit does not accept a generic event name; the Gateway's signature carries the types. */
type Emitter = { emit(event: string, payload: unknown): unknown };

/** The chat domain's Gateway over a Socket.IO namespace; broadcasts encode once per message. */
export class SocketGateway implements Gateway {
  constructor(private readonly nsp: Namespace) {}

  send<E extends ServerEvent>(connId: string, event: E, payload: PayloadOf<E>): void {
    (this.nsp.sockets.get(connId) as Emitter | undefined)?.emit(event, payload);
  }

  broadcast<E extends ServerEvent>(room: string, event: E, payload: PayloadOf<E>, exceptConnId?: string): void {
    const target = exceptConnId ? this.nsp.to(group(room)).except(exceptConnId) : this.nsp.to(group(room));
    (target as Emitter).emit(event, payload);
  }

  addToGroup(connId: string, room: string): void {
    void this.nsp.sockets.get(connId)?.join(group(room));
  }

  reconnect(connId: string): void {
    this.nsp.sockets.get(connId)?.conn.close();
  }

  removeFromGroup(connId: string, room: string): void {
    void this.nsp.sockets.get(connId)?.leave(group(room));
  }
}
