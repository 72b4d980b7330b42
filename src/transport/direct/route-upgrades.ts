import type { Server as HttpServer, IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Socket as TcpSocket } from "node:net";
import type { DirectTransport } from "./direct-transport.js";

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * Hands new Socket.IO WebSocket connections to the direct transport and every other upgrade to
 * the listeners already attached (engine.io's, for upgrades from long-polling; the host
 * application's own, attached before). Call after Socket.IO has attached to the server; the
 * returned function puts the server's listeners back as they were.
 */
export function routeUpgrades(httpServer: HttpServer, direct: DirectTransport): () => void {
  const others = httpServer.listeners("upgrade") as UpgradeListener[];
  const route: UpgradeListener = (req, socket, head) => {
    if (direct.accepts(req)) direct.handleUpgrade(req, socket as TcpSocket, head);
    else for (const listener of others) listener.call(httpServer, req, socket, head);
  };
  for (const listener of others) httpServer.off("upgrade", listener);
  httpServer.prependListener("upgrade", route);
  return () => {
    httpServer.off("upgrade", route);
    for (const listener of others) httpServer.on("upgrade", listener);
  };
}
