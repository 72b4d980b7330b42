import type { ServerToClientEvents } from "../protocol.js";

export type ServerEvent = keyof ServerToClientEvents;
export type PayloadOf<E extends ServerEvent> = Parameters<ServerToClientEvents[E]>[0];

/**
 * The chat domain's only way to reach connections. The transport implements it (Socket.IO);
 * the domain never sees a socket.
 */
export interface Gateway {
  send<E extends ServerEvent>(connId: string, event: E, payload: PayloadOf<E>): void;
  /** To every connection in the room's delivery group, but `exceptConnId`; encoded once, not per connection. */
  broadcast<E extends ServerEvent>(room: string, event: E, payload: PayloadOf<E>, exceptConnId?: string): void;
  addToGroup(connId: string, room: string): void;
  /** Closes the connection's transport so that its client reconnects and joins afresh. */
  reconnect(connId: string): void;
  removeFromGroup(connId: string, room: string): void;
}
