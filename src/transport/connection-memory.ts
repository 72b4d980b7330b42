import { ServerResponse, type IncomingMessage } from "node:http";
import type { Server } from "socket.io";

type EngineServer = Server["engine"];
type EngineSocket = Parameters<Parameters<EngineServer["on"]>[1]>[0];

type Request = IncomingMessage;
type UpgradeResponse = { req?: unknown };

/**
 * Lets go of the HTTP request that opened each engine.io connection once it is open, as
 * Socket.IO's memory guide advises: the request (its headers, raw headers, streams state) is
 * otherwise held for the connection's whole life. Nothing of roomcast reads it after the
 * handshake: identity comes from the Socket.IO handshake's `auth`, CORS is answered per HTTP
 * request, and polling transports get each request on their own. socket.handshake then has empty
 * headers and query.
 *
 * On a WebSocket upgrade engine.io also keeps the request through the response stand-in it gives
 * middlewares (a listener on the TCP socket holds that one, for the connection's life). The
 * stand-in serves only until the upgrade's response headers are written (engine.io then deletes
 * what it wrote into), so from the "headers" event on it drops the request too: this covers the
 * upgrade of a polling connection as well as a connection that opens as a WebSocket.
 */
export function releaseHandshakeRequests(engine: EngineServer): void {
  // An upgrade's response stand-in, from the middleware (which sees it) to the "headers" event (which does not).
  const standIns = new WeakMap<Request, UpgradeResponse>();
  engine.use((req: Request, res: unknown, next: (err?: unknown) => void) => {
    // A plain HTTP request (polling) gets a real ServerResponse; an upgrade gets engine.io's stand-in.
    if (!(res instanceof ServerResponse) && typeof res === "object" && res !== null) standIns.set(req, res as UpgradeResponse);
    next();
  });
  engine.on("headers", (_headers: unknown, req: Request) => {
    const res = standIns.get(req);
    if (res) {
      standIns.delete(req);
      res.req = undefined;
    }
  });
  engine.on("connection", (socket: EngineSocket) => {
    (socket as unknown as { request: Request | null }).request = null;
  });
}
