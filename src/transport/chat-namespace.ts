import type { Namespace, Socket } from "socket.io";
import type { Logger } from "pino";
import type { ChatService } from "../chat/chat-service.js";
import type { Session } from "../chat/session.js";
import { failure } from "../errors.js";
import type { Metrics } from "../metrics.js";
import { CLIENT_EVENTS, type Ack, type ClientEventName, type ErrorBody } from "../protocol.js";
import { identify, type IdentityOptions } from "./identity.js";

export interface ChatNamespaceOptions extends IdentityOptions {
  nodeId: string;
  /** A connection whose unsent packets pass this is closed; its client reconnects and recovers. */
  maxBufferedPackets: number;
}

type AnyAck = Ack<object>;
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

  nsp.on("connection", (socket: Socket) => {
    const session = service.openSession(socket.id, socket.data.user);
    metrics.connections.inc();
    guardWriteBuffer(socket, options.maxBufferedPackets, () => {
      metrics.slowConsumers.inc();
      logger.warn({ conn: socket.id }, "closing slow consumer");
    });
    socket.emit("hello", { user: session.user, node: options.nodeId });

    for (const event of Object.keys(HANDLERS) as ClientEventName[]) {
      socket.on(event, (...args: unknown[]) => dispatch(socket, session, event, args));
    }
    socket.onAny((event: unknown, ...args: unknown[]) => {
      if (typeof event === "string" && Object.hasOwn(HANDLERS, event)) return;
      const ack = typeof args.at(-1) === "function" ? (args.at(-1) as (res: AnyAck) => void) : undefined;
      respond(socket, String(event), ack, failure("bad_request", `unknown event ${JSON.stringify(String(event)).slice(0, 80)}`));
    });
    socket.on("disconnect", () => {
      metrics.connections.dec();
      session.close().catch((err: unknown) => logger.error({ err }, "session close failed"));
    });
  });

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

function connectError(body: ErrorBody): Error {
  const error = new Error(body.message) as Error & { data: ErrorBody };
  error.data = body;
  return error;
}

/** Bounds what the server holds for a connection that does not read (engine.io's write buffer). */
function guardWriteBuffer(socket: Socket, maxPackets: number, onClose: () => void): void {
  const conn = socket.conn;
  // engine.io keeps the buffer private; it is the one place unsent packets pile up.
  const buffered = conn as unknown as { writeBuffer: unknown[] };
  conn.on("packetCreate", () => {
    if (buffered.writeBuffer.length > maxPackets && conn.readyState === "open") {
      onClose();
      // Discard: a plain close() waits for the buffer to drain, which a reader that stopped never does.
      conn.close(true);
    }
  });
}
