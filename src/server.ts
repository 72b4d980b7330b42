import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { fileURLToPath } from "node:url";
import { pino, type Logger } from "pino";
import { Server } from "socket.io";
import { createBus } from "./bus/create-bus.js";
import { ChatService } from "./chat/chat-service.js";
import type { Session } from "./chat/session.js";
import { defaultOptions, type ChatOptions } from "./config.js";
import { createHttpHandler, type HttpHandler } from "./http/http-handler.js";
import { Metrics } from "./metrics.js";
import { CHAT_NAMESPACE, type Member } from "./protocol.js";
import { createChatEventHandler } from "./transport/chat-events.js";
import { bindChatNamespace } from "./transport/chat-namespace.js";
import type { IdentityOptions } from "./transport/identity.js";
import { releaseHandshakeRequests } from "./transport/connection-memory.js";
import { DirectTransport, type AllowRequest } from "./transport/direct/direct-transport.js";
import { routeUpgrades } from "./transport/direct/route-upgrades.js";
import { SocketGateway } from "./transport/socket-gateway.js";
import { batchWrites } from "./transport/write-batching.js";

export interface CreateChatServerOptions extends Partial<ChatOptions> {
  /** Attach to this server instead of creating one; mount `chat.httpHandler` yourself for /healthz etc. */
  httpServer?: HttpServer;
  logger?: Logger;
  /** Folder of the web client to serve at /; defaults to the one built with the package. */
  webRoot?: string | false;
  /** The application's own admission check for every connection (see IdentityOptions.admit). */
  admit?: IdentityOptions["admit"];
  /**
   * Checks each connection's HTTP request before anything else (Origin, address, cookies), on
   * both transports; false answers 403. Socket.IO's own allowRequest and io.engine middleware
   * see only long-polling clients (and WEBSOCKET_TRANSPORT=socketio).
   */
  allowRequest?: AllowRequest;
}

export interface ChatServer {
  readonly nodeId: string;
  readonly io: Server;
  readonly httpServer: HttpServer;
  readonly httpHandler: HttpHandler;
  readonly logger: Logger;
  /** The chat domain's way to connections of both transports: send, reconnect, group sizes (operators, tests). */
  readonly gateway: SocketGateway;
  /** Open chat connections on this process: connection id (the client's socket.id) and user. */
  connections(): Array<{ id: string; user: Member }>;
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** Graceful: stops taking connections, closes clients so they reconnect elsewhere, leaves presence, closes the bus. */
  close(): Promise<void>;
}

const BUILT_WEB_ROOT = fileURLToPath(new URL("../web", import.meta.url));

/** Creates a roomcast server: the library entry point the command line is a thin layer over. */
export async function createChatServer(input: CreateChatServerOptions = {}): Promise<ChatServer> {
  const { httpServer: givenServer, logger: givenLogger, webRoot: givenWebRoot, admit, allowRequest, ...overrides } = input;
  const options = defaultOptions(overrides);
  const nodeId = options.nodeId || `${hostname()}-${randomBytes(3).toString("hex")}`;
  const logger = givenLogger ?? pino({ level: options.logLevel, base: { node: nodeId } });
  const metrics = new Metrics({ processMetrics: true });
  const bus = await createBus(options, nodeId, logger);
  const { broker, presence } = bus;
  let draining = false;

  const webRoot = givenWebRoot === false ? undefined : (givenWebRoot ?? (existsSync(BUILT_WEB_ROOT) ? BUILT_WEB_ROOT : undefined));
  const httpHandler = createHttpHandler({
    nodeId,
    metrics,
    webRoot,
    readiness: () => (draining ? "unavailable" : broker.readiness()),
    connections: () => service.sessionCount,
  });
  // The request listener must exist before Socket.IO attaches: it wraps the listeners it finds.
  const httpServer = givenServer ?? createServer(httpHandler);
  const origins = options.corsOrigin ? options.corsOrigin.split(",").map((o) => o.trim()) : undefined;
  const io = new Server(httpServer, {
    serveClient: false,
    pingInterval: options.pingInterval,
    pingTimeout: options.pingTimeout,
    ...(allowRequest && {
      allowRequest: (req: IncomingMessage, callback: (err: string | null | undefined, success: boolean) => void) => {
        Promise.resolve()
          .then(() => allowRequest(req))
          .then((allowed) => callback(allowed ? null : "Forbidden", allowed), (err: unknown) => callback(String(err), false));
      },
    }),
    ...(origins && { cors: { origin: origins.length === 1 && origins[0] === "*" ? "*" : origins } }),
  });
  batchWrites(io.engine);
  releaseHandshakeRequests(io.engine);
  const nsp = io.of(CHAT_NAMESPACE);
  const handle = createChatEventHandler({ logger, metrics });
  const connectionOptions = { nodeId, maxBufferedPackets: options.maxBufferedPackets, jwtSecret: options.jwtSecret || undefined, admit };
  const direct: DirectTransport | undefined =
    options.websocketTransport === "direct"
      ? new DirectTransport(
          (connId, user): Session => service.openSession(connId, user),
          {
            ...connectionOptions,
            allowRequest,
            path: `${io.path()}/`,
            pingInterval: options.pingInterval,
            pingTimeout: options.pingTimeout,
            connectTimeout: io.connectTimeout(),
            maxPayload: io.engine.opts.maxHttpBufferSize ?? 1e6,
          },
          { logger, metrics, handle },
        )
      : undefined;
  const unrouteUpgrades = direct ? routeUpgrades(httpServer, direct) : undefined;
  const gateway = new SocketGateway(nsp, direct);
  const service = new ChatService({
    broker,
    presence,
    gateway,
    unsubscribeDelayMs: options.unsubscribeDelay,
    limits: {
      maxMessageLength: options.maxMessageLength,
      maxRoomsPerConnection: options.maxRoomsPerConnection,
      roomCapacity: options.roomCapacity,
      messageRate: { perSecond: options.messageRate, burst: options.messageBurst },
      typingRate: { perSecond: options.typingRate, burst: options.typingBurst },
      joinRate: { perSecond: options.joinRate, burst: options.joinBurst },
      historyRate: { perSecond: options.historyRate, burst: options.historyBurst },
    },
    streams: metrics.streams,
    onBusError: (err, context) => {
      metrics.busErrors.inc({ op: context.split(" ")[0] });
      logger.warn({ err, context }, "bus operation failed");
    },
  });
  bindChatNamespace(nsp, service, connectionOptions, { logger, metrics, handle });
  metrics.roomCount = () => service.rooms.size;

  let closing: Promise<void> | undefined;
  return {
    nodeId,
    io,
    httpServer,
    httpHandler,
    logger,
    gateway,
    connections: () => service.connections(),
    listen(port = options.port, host = options.host || undefined) {
      return new Promise((resolve, reject) => {
        httpServer.once("error", reject);
        httpServer.listen(port, host, () => {
          httpServer.off("error", reject);
          resolve(httpServer.address() as AddressInfo);
        });
      });
    },
    close() {
      closing ??= (async () => {
        draining = true;
        // A server we were given belongs to the caller: we only detach from it.
        const ours = !givenServer && httpServer.listening;
        const stopped = new Promise<void>((resolve) => (ours ? httpServer.close(() => resolve()) : resolve()));
        // Closing the transport (not a Socket.IO disconnect) makes clients reconnect, to another process if there is one.
        for (const socket of nsp.sockets.values()) socket.conn.close();
        direct?.close();
        await service.close();
        await Promise.allSettled([broker.close(), presence.close()]);
        await bus.close();
        io.engine.close();
        direct?.terminate();
        unrouteUpgrades?.();
        if (ours) httpServer.closeAllConnections();
        await stopped;
        logger.info("closed");
      })();
      return closing;
    },
  };
}
