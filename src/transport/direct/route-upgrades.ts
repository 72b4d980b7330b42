import type { Server as HttpServer, IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Socket as TcpSocket } from "node:net";
import type { DirectTransport } from "./direct-transport.js";

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * Hands new Socket.IO WebSocket connections to the direct transport and every other upgrade to
 * the listeners already attached (engine.io's, for upgrades from long-polling; the host
 * application's own). Call after Socket.IO has attached to the server.
 */
export function routeUpgrades(httpServer: HttpServer, direct: DirectTransport): void {
  const others = httpServer.listeners("upgrade") as UpgradeListener[];
  httpServer.removeAllListeners("upgrade");
  httpServer.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (direct.accepts(req)) direct.handleUpgrade(req, socket as TcpSocket, head);
    else for (const listener of others) listener.call(httpServer, req, socket, head);
  });
}
