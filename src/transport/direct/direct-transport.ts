import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Socket as TcpSocket } from "node:net";
import type { Logger } from "pino";
import { WebSocketServer, type WebSocket } from "ws";
import type { Session } from "../../chat/session.js";
import type { PayloadOf, ServerEvent } from "../../chat/gateway.js";
import type { Metrics } from "../../metrics.js";
import { CHAT_NAMESPACE, type Member } from "../../protocol.js";
import type { ChatEventHandler } from "../chat-events.js";
import { identify, type IdentityOptions } from "../identity.js";
import { DirectConnection } from "./direct-connection.js";
import { Heartbeat } from "./heartbeat.js";
import {
  ackPacket,
  BinaryPacket,
  connectErrorPacket,
  connectPacket,
  decodePacket,
  EngineType,
  eventPacket,
  hasAttachments,
  openPacket,
  PacketType,
  PING_FRAME,
  textFrame,
  type Packet,
} from "./wire-packets.js";

/** The application's check of a connection's HTTP request (Origin, address, cookies); false refuses it. */
export type AllowRequest = (req: IncomingMessage) => boolean | Promise<boolean>;

export interface DirectTransportOptions extends IdentityOptions {
  allowRequest?: AllowRequest | undefined;
  nodeId: string;
  /** Socket.IO's path, with a trailing slash: "/socket.io/". */
  path: string;
  pingInterval: number;
  pingTimeout: number;
  /** A client that connects to no namespace within this is closed (Socket.IO's connectTimeout). */
  connectTimeout: number;
  /** Largest frame accepted, bytes (Socket.IO's maxHttpBufferSize). */
  maxPayload: number;
  /** A connection whose unsent frames pass this is closed; its client reconnects and recovers. */
  maxBufferedPackets: number;
}

const newId = (): string => randomBytes(15).toString("base64url");

/**
 * The Socket.IO protocol for clients that open a WebSocket straight away (`transports:
 * ["websocket"]`, as roomcast's own clients and most apps do), served by ws with no engine.io or
 * socket.io objects per connection: about half the memory and less CPU per message
 * (docs/benchmark.md). Long-polling clients, and those that upgrade from it, stay with Socket.IO;
 * both kinds meet in the same rooms through the Gateway (socket-gateway.ts).
 */
export class DirectTransport {
  private readonly wss: WebSocketServer;
  private readonly byWebSocket = new WeakMap<WebSocket, DirectConnection>();
  /** Chat namespace members by socket id. */
  private readonly members = new Map<string, DirectConnection>();
  private readonly groups = new Map<string, Map<string, DirectConnection>>();
  private readonly heartbeat: Heartbeat<DirectConnection>;
  private closed = false;

  constructor(
    private readonly openSession: (connId: string, user: Member) => Session,
    private readonly options: DirectTransportOptions,
    private readonly deps: { logger: Logger; metrics: Metrics; handle: ChatEventHandler },
  ) {
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: options.maxPayload });
    this.heartbeat = new Heartbeat(options.pingInterval, options.pingTimeout, {
      ping: (connection, now) => this.ping(connection, now),
      overdue: (connection, now) => connection.pingSentAt > 0 && now - connection.pingSentAt >= options.pingTimeout,
      expire: (connection) => connection.ws.terminate(), // "ping timeout"
    });
  }

  /** Whether a WebSocket upgrade is a new Socket.IO connection this transport serves. */
  accepts(req: IncomingMessage): boolean {
    const url = req.url ?? "";
    const query = url.indexOf("?");
    if (query < 0 || url.slice(0, query) !== this.options.path) return false;
    const params = new URLSearchParams(url.slice(query + 1));
    return params.get("EIO") === "4" && params.get("transport") === "websocket" && !params.has("sid");
  }

  handleUpgrade(req: IncomingMessage, tcp: TcpSocket, head: Buffer): void {
    if (this.closed) {
      tcp.destroy();
      return;
    }
    const { allowRequest } = this.options;
    if (!allowRequest) {
      this.wss.handleUpgrade(req, tcp, head, (ws) => this.open(ws, tcp));
      return;
    }
    Promise.resolve()
      .then(() => allowRequest(req))
      .then(
        (allowed) => {
          if (tcp.destroyed) return;
          if (allowed && !this.closed) this.wss.handleUpgrade(req, tcp, head, (ws) => this.open(ws, tcp));
          else tcp.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        },
        (err: unknown) => {
          this.deps.logger.error({ err }, "allowRequest failed");
          tcp.destroy();
        },
      );
  }

  // ------------------------------------------------------------------ Gateway, for the chat domain

  /** False if the connection is not one of this transport's. */
  send<E extends ServerEvent>(connId: string, event: E, payload: PayloadOf<E>): boolean {
    const connection = this.members.get(connId);
    if (!connection) return false;
    this.write(connection, textFrame(eventPacket(CHAT_NAMESPACE, event, payload)));
    return true;
  }

  broadcast<E extends ServerEvent>(room: string, event: E, payload: PayloadOf<E>, exceptConnId?: string): void {
    const group = this.groups.get(room);
    if (!group) return;
    const frame = textFrame(eventPacket(CHAT_NAMESPACE, event, payload));
    for (const [connId, connection] of group) if (connId !== exceptConnId) this.write(connection, frame);
  }

  /** False if the connection is not one of this transport's. */
  addToGroup(connId: string, room: string): boolean {
    const connection = this.members.get(connId);
    if (!connection) return false;
    let group = this.groups.get(room);
    if (!group) this.groups.set(room, (group = new Map()));
    group.set(connId, connection);
    return true;
  }

  groupSize(room: string): number {
    return this.groups.get(room)?.size ?? 0;
  }

  removeFromGroup(connId: string, room: string): void {
    const group = this.groups.get(room);
    if (group?.delete(connId) && group.size === 0) this.groups.delete(room);
  }

  /** False if the connection is not one of this transport's. */
  reconnect(connId: string): boolean {
    const connection = this.members.get(connId);
    connection?.ws.close(1012, "reconnect");
    return connection !== undefined;
  }

  // ------------------------------------------------------------------ lifecycle

  /** Closes every connection so that its client reconnects (to another process, if any). */
  close(): void {
    this.closed = true;
    this.heartbeat.stop();
    for (const connection of this.heartbeat.all()) connection.ws.close(1001, "server shutting down");
  }

  /** Ends the connections whose clients did not answer close(). */
  terminate(): void {
    for (const connection of this.heartbeat.all()) connection.ws.terminate();
  }

  private open(ws: WebSocket, tcp: TcpSocket): void {
    const connection = new DirectConnection(ws, tcp, Date.now());
    this.byWebSocket.set(ws, connection);
    this.heartbeat.add(connection);
    ws.on("message", this.onMessage);
    ws.on("close", this.onClose);
    ws.on("error", this.onError);
    const { pingInterval, pingTimeout, maxPayload } = this.options;
    connection.write(textFrame(openPacket(newId(), pingInterval, pingTimeout, maxPayload)));
  }

  // One listener per kind for every connection, made once per transport (`this` is the WebSocket).
  private readonly onMessage = listener(this, (transport, ws, data: Buffer, isBinary: boolean) => transport.receive(ws, data, isBinary));
  private readonly onClose = listener(this, (transport, ws) => transport.forget(ws));
  // ws closes the connection itself after a protocol error (bad frame, too large, bad UTF-8).
  private readonly onError = listener(this, (transport, _ws, err: Error) => transport.deps.logger.debug({ err }, "websocket error"));

  private receive(ws: WebSocket, data: Buffer, isBinary: boolean): void {
    const connection = this.byWebSocket.get(ws);
    if (!connection) return;
    try {
      if (isBinary) {
        // engine.io v4 sends binary attachments as bare binary frames.
        const packet = connection.partial?.add(data);
        if (!connection.partial) throw new Error("binary frame without a packet expecting it");
        if (packet) {
          connection.partial = undefined;
          this.onPacket(connection, packet);
        }
        return;
      }
      const text = data.toString();
      switch (text[0]) {
        case EngineType.message: {
          if (connection.partial) throw new Error("text frame while a packet awaits its attachments");
          const body = text.slice(1);
          if (hasAttachments(body)) connection.partial = new BinaryPacket(body);
          else this.onPacket(connection, decodePacket(body));
          return;
        }
        case EngineType.pong:
          connection.pingSentAt = 0;
          return;
        case EngineType.close:
          ws.close(1000);
          return;
        case EngineType.noop:
        case EngineType.ping: // a v3 habit; v4 clients only answer pings
          return;
        default:
          throw new Error(`unexpected engine.io packet type ${JSON.stringify(text[0] ?? "")}`);
      }
    } catch (err) {
      // As engine.io does with a parse error: the connection ends, the client reconnects.
      this.deps.logger.debug({ err }, "malformed packet, closing");
      ws.close(1002, "parse error");
    }
  }

  private onPacket(connection: DirectConnection, packet: Packet): void {
    if (packet.nsp === "/" && packet.type === PacketType.DISCONNECT) {
      connection.inMainNamespace = false;
    } else if (packet.nsp === CHAT_NAMESPACE) {
      if (packet.type === PacketType.CONNECT) this.connectChat(connection, packet.data);
      else if (packet.type === PacketType.EVENT) this.onEvent(connection, packet);
      else if (packet.type === PacketType.DISCONNECT) this.leaveChat(connection);
      // ACK: the server never asks clients for one.
    } else if (packet.type === PacketType.CONNECT) {
      // Socket.IO serves the main namespace by default (nothing listens there); any other is unknown.
      if (packet.nsp === "/") {
        connection.inMainNamespace = true;
        connection.write(textFrame(connectPacket("/", newId())));
      } else {
        connection.write(textFrame(connectErrorPacket(packet.nsp, "Invalid namespace", undefined)));
      }
    }
  }

  private connectChat(connection: DirectConnection, auth: unknown): void {
    if (connection.session || connection.connecting) return;
    connection.connecting = true;
    const { logger, metrics } = this.deps;
    identify(auth, this.options)
      .then((identity) => {
        connection.connecting = false;
        if (!connection.open) return;
        if (!identity.ok) {
          metrics.reject(identity.error.code);
          connection.write(textFrame(connectErrorPacket(CHAT_NAMESPACE, identity.error.message, identity.error)));
          return;
        }
        const id = newId();
        connection.id = id;
        connection.session = this.openSession(id, identity.user);
        this.members.set(id, connection);
        metrics.connections.inc();
        connection.write(textFrame(connectPacket(CHAT_NAMESPACE, id)));
        connection.write(textFrame(eventPacket(CHAT_NAMESPACE, "hello", { user: identity.user, node: this.options.nodeId })));
      })
      .catch((err: unknown) => {
        // A bug (or a throwing admit()): this connection ends, the process goes on.
        connection.connecting = false;
        logger.error({ err }, "connecting to the chat namespace failed");
        connection.write(textFrame(connectErrorPacket(CHAT_NAMESPACE, "internal error", undefined)));
      });
  }

  private onEvent(connection: DirectConnection, packet: Packet): void {
    const session = connection.session;
    if (!session) return; // as Socket.IO: an event for a namespace the client is not in is dropped
    const [event, ...args] = packet.data as unknown[];
    const id = packet.id;
    const ack =
      id === undefined
        ? undefined
        : (res: unknown): void => {
            if (connection.session === session) this.write(connection, textFrame(ackPacket(CHAT_NAMESPACE, id, res)));
          };
    this.deps.handle(session, String(event), args, ack, (error) => this.write(connection, textFrame(eventPacket(CHAT_NAMESPACE, "error", error))));
  }

  private leaveChat(connection: DirectConnection): void {
    const { session, id } = connection;
    if (!session || id === undefined) return;
    connection.session = undefined;
    connection.id = undefined;
    this.members.delete(id);
    this.deps.metrics.connections.dec();
    session.close().catch((err: unknown) => this.deps.logger.error({ err }, "session close failed"));
  }

  private forget(ws: WebSocket): void {
    const connection = this.byWebSocket.get(ws);
    if (!connection) return;
    this.byWebSocket.delete(ws);
    this.heartbeat.remove(connection);
    connection.partial = undefined;
    this.leaveChat(connection);
  }

  /** Once per ping interval per connection, unless it still owes a pong (PING_TIMEOUT > PING_INTERVAL). */
  private ping(connection: DirectConnection, now: number): void {
    if (connection.pingSentAt > 0) return;
    if (!connection.session && !connection.inMainNamespace && !connection.connecting && now - connection.openedAt >= this.options.connectTimeout) {
      connection.ws.close(1008, "no namespace connected");
      return;
    }
    connection.pingSentAt = now;
    connection.write(PING_FRAME);
  }

  private write(connection: DirectConnection, frame: Buffer): void {
    if (connection.write(frame) > this.options.maxBufferedPackets && !slowClosing.has(connection)) {
      slowClosing.add(connection);
      this.deps.metrics.slowConsumers.inc();
      this.deps.logger.warn({ conn: connection.id }, "closing slow consumer");
      // Not from inside this send: closing would re-enter the code that is sending (a join's ack,
      // a room's delivery loop) with the connection's session already closed.
      setImmediate(() => connection.ws.terminate());
    }
  }
}

/** Connections the slow-consumer guard is closing; the guard fires once per connection. */
const slowClosing = new WeakSet<DirectConnection>();

/** A listener shared by every WebSocket: `this` is the socket, `transport` the owner. */
function listener<A extends unknown[]>(
  transport: DirectTransport,
  body: (transport: DirectTransport, ws: WebSocket, ...args: A) => void,
): (this: WebSocket, ...args: A) => void {
  return function (this: WebSocket, ...args: A) {
    body(transport, this, ...args);
  };
}
