import type { Namespace, Socket } from "socket.io";
import type { Logger } from "pino";
import type { ChatService } from "../chat/chat-service.js";
import type { Session } from "../chat/session.js";
import type { Metrics } from "../metrics.js";
import type { ErrorBody, Member } from "../protocol.js";
import { isClientEvent, type AckFn, type ChatEventHandler } from "./chat-events.js";
import { identify, type IdentityOptions } from "./identity.js";

export interface ChatNamespaceOptions extends IdentityOptions {
  nodeId: string;
  /** A connection whose unsent packets pass this is closed; its client reconnects and recovers. */
  maxBufferedPackets: number;
}

type EngineSocket = Socket["conn"];
/** What a chat socket carries: the user from the handshake, then its Session. */
interface SocketData {
  user: Member;
  session?: Session;
}

/** Binds Socket.IO events of the chat namespace to the chat domain: validate, call, acknowledge. */
export function bindChatNamespace(
  nsp: Namespace,
  service: ChatService,
  options: ChatNamespaceOptions,
  deps: { logger: Logger; metrics: Metrics; handle: ChatEventHandler },
): void {
  const { logger, metrics, handle } = deps;

  nsp.use((socket, next) => {
    identify(socket.handshake.auth, options).then(
      (identity) => {
        if (identity.ok) {
          socket.data.user = identity.user;
          next();
        } else {
          metrics.reject(identity.error.code);
          next(connectError(identity.error));
        }
      },
      (err: unknown) => {
        // A bug (or a throwing admit()): logged here, not told to the client.
        logger.error({ err }, "connecting to the chat namespace failed");
        next(new Error("internal error"));
      },
    );
  });

  // Every socket shares one listener per kind (`this` is the socket, or its engine.io connection)
  // and finds its Session in socket.data: a connection costs no closures, and its emitter holds
  // two listeners, not one per event.
  nsp.on("connection", (socket: Socket) => {
    // Admitted while the server began to shut down: sent away like every other connection, so
    // that its client reconnects to a process that stays.
    if (service.closing) return void socket.conn.close();
    const data = socket.data as SocketData;
    data.session = service.openSession(socket.id, data.user);
    metrics.connections.inc();
    socket.conn.on("packetCreate", guardWriteBuffer);
    socket.emit("hello", { user: data.user, node: options.nodeId });
    socket.onAny(onEvent);
    socket.on("disconnect", onDisconnect);
  });

  function onEvent(this: Socket, event: unknown, ...args: unknown[]): void {
    // A tick later and only if still connected, as Socket.IO calls a listener of the event.
    if (isClientEvent(event)) process.nextTick(dispatchIfConnected, this, event, args);
    else dispatch(this, String(event), args);
  }

  function dispatchIfConnected(socket: Socket, event: string, args: unknown[]): void {
    if (socket.connected) dispatch(socket, event, args);
  }

  function dispatch(socket: Socket, event: string, args: unknown[]): void {
    const ack = typeof args.at(-1) === "function" ? (args.pop() as AckFn) : undefined;
    handle((socket.data as SocketData).session!, event, args, ack, (error) => socket.emit("error", error));
  }

  function onDisconnect(this: Socket): void {
    metrics.connections.dec();
    (this.data as SocketData).session?.close().catch((err: unknown) => logger.error({ err }, "session close failed"));
  }

  /** Bounds what the server holds for a connection that does not read (engine.io's write buffer). */
  function guardWriteBuffer(this: EngineSocket): void {
    // engine.io keeps the buffer private; it is the one place unsent packets pile up. They also
    // wait there until the end of the loop turn (write-batching.ts), so only a buffer behind a
    // transport still busy with an earlier write means a reader that stopped.
    const conn = this as unknown as { id: string; writeBuffer: unknown[]; transport: { writable: boolean } };
    if (conn.writeBuffer.length > options.maxBufferedPackets && !conn.transport.writable && this.readyState === "open" && !slowClosing.has(this)) {
      slowClosing.add(this);
      metrics.slowConsumers.inc();
      logger.warn({ engineConn: conn.id }, "closing slow consumer");
      // Not from inside this send: closing would re-enter the code that is sending (a join's ack,
      // a room's delivery loop) with the connection's session already closed.
      setImmediate(discard, this);
    }
  }
}

/** Connections the slow-consumer guard is closing; the guard fires once per connection. */
const slowClosing = new WeakSet<object>();

/** Discard: a plain close() waits for the buffer to drain, which a reader that stopped never does. */
function discard(conn: { close(discard: boolean): void }): void {
  conn.close(true);
}

function connectError(body: ErrorBody): Error {
  const error = new Error(body.message) as Error & { data: ErrorBody };
  error.data = body;
  return error;
}
