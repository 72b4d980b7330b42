import type { Namespace, Socket } from "socket.io";
import type { Logger } from "pino";
import type { ChatService } from "../chat/chat-service.js";
import type { Session } from "../chat/session.js";
import { failure } from "../errors.js";
import type { Metrics } from "../metrics.js";
import { CLIENT_EVENTS, type Ack, type ClientEventName, type ErrorBody, type Member } from "../protocol.js";
import { identify, type IdentityOptions } from "./identity.js";

export interface ChatNamespaceOptions extends IdentityOptions {
  nodeId: string;
  /** A connection whose unsent packets pass this is closed; its client reconnects and recovers. */
  maxBufferedPackets: number;
}

type AnyAck = Ack<object>;
type EngineSocket = Socket["conn"];
/** What a chat socket carries: the user from the handshake, then its Session. */
interface SocketData {
  user: Member;
  session?: Session;
}
type Handler<E extends ClientEventName> = (
  session: Session,
  req: ReturnType<(typeof CLIENT_EVENTS)[E]["parse"]>,
  reply: (ack: AnyAck) => void,
) => void | Promise<void>;

const HANDLERS: { [E in ClientEventName]: Handler<E> } = {
  join: (session, req, reply) => session.join(req, reply),
  leave: async (session, req, reply) => reply(await session.leave(req)),
  message: async (session, req, reply) => reply(await session.send(req)),
  history: async (session, req, reply) => reply(await session.history(req)),
  // No ack is needed, but a client that passes one must get an answer, not a timeout.
  typing: (session, req, reply) => reply(session.typing(req) ?? { ok: true }),
};

/** Binds Socket.IO events of the chat namespace to the chat domain: validate, call, acknowledge. */
export function bindChatNamespace(
  nsp: Namespace,
  service: ChatService,
  options: ChatNamespaceOptions,
  deps: { logger: Logger; metrics: Metrics },
): void {
  const { logger, metrics } = deps;

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
      (err: unknown) => next(err instanceof Error ? err : new Error(String(err))),
    );
  });

  // Every socket shares one listener per kind (`this` is the socket, or its engine.io connection)
  // and finds its Session in socket.data: a connection costs no closures, and its emitter holds
  // two listeners, not one per event.
  nsp.on("connection", (socket: Socket) => {
    const data = socket.data as SocketData;
    data.session = service.openSession(socket.id, data.user);
    metrics.connections.inc();
    socket.conn.on("packetCreate", guardWriteBuffer);
    socket.emit("hello", { user: data.user, node: options.nodeId });
    socket.onAny(onEvent);
    socket.on("disconnect", onDisconnect);
  });

  function onEvent(this: Socket, event: unknown, ...args: unknown[]): void {
    if (typeof event === "string" && Object.hasOwn(HANDLERS, event)) {
      // A tick later and only if still connected, as Socket.IO calls a listener of the event.
      process.nextTick(dispatchIfConnected, this, event as ClientEventName, args);
      return;
    }
    const ack = typeof args.at(-1) === "function" ? (args.at(-1) as (res: AnyAck) => void) : undefined;
    respond(this, String(event), ack, failure("bad_request", `unknown event ${JSON.stringify(String(event)).slice(0, 80)}`));
  }

  function dispatchIfConnected(socket: Socket, event: ClientEventName, args: unknown[]): void {
    if (socket.connected) dispatch(socket, (socket.data as SocketData).session!, event, args);
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

  function dispatch(socket: Socket, session: Session, event: ClientEventName, args: unknown[]): void {
    const ack = typeof args.at(-1) === "function" ? (args.pop() as (res: AnyAck) => void) : undefined;
    const reply = (res: AnyAck): void => respond(socket, event, ack, res);
    const parsed = CLIENT_EVENTS[event].safeParse(args[0]);
    if (!parsed.success || args.length > 1) {
      reply(failure("bad_request", describe(parsed.success ? undefined : parsed.error.issues)));
      return;
    }
    try {
      const done = (HANDLERS[event] as Handler<typeof event>)(session, parsed.data as never, reply);
      if (done) done.catch((err: unknown) => bug(err, reply));
    } catch (err) {
      bug(err, reply);
    }
  }

  function respond(socket: Socket, event: string, ack: ((res: AnyAck) => void) | undefined, res: AnyAck): void {
    if (!res.ok) metrics.reject(res.error.code);
    else if (event === "message") metrics.messages.inc();
    if (ack) ack(res);
    else if (!res.ok) socket.emit("error", { ...res.error, event });
  }

  function bug(err: unknown, reply: (res: AnyAck) => void): void {
    logger.error({ err }, "handler failed");
    reply(failure("unavailable", "internal error"));
  }
}

function describe(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> | undefined): string {
  if (!issues) return "expected one payload object and an optional ack callback";
  const first = issues[0];
  if (!first) return "malformed payload";
  const where = first.path.length > 0 ? `${first.path.map(String).join(".")}: ` : "";
  return `${where}${first.message}`.slice(0, 200);
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
