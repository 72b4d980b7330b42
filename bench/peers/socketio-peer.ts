/**
 * The peers roomcast is measured against: a minimal Socket.IO 4.8 chat server, what a user would
 * write instead. Namespace /chat; `join` {room} joins the Socket.IO room and acks; `message`
 * {room, text, clientMsgId?} broadcasts `message` to the room (sender included) and acks.
 *
 * PEER_ADAPTER picks the scale-out:
 * - classic: @socket.io/redis-adapter `createAdapter` (one PSUBSCRIBE per process: every process
 *   receives every room's messages);
 * - sharded: `createShardedAdapter` with subscriptionMode "dynamic" (SSUBSCRIBE per room);
 * - plain: no Redis, one process on its own (the reference).
 * PORT and REDIS_URL as for roomcast. Answers GET /readyz with 200 once ready.
 */
import { createServer } from "node:http";
import { createClient } from "@redis/client";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { Server, type Socket } from "socket.io";

type Adapter = "classic" | "sharded" | "plain";
type Ack = (res: unknown) => void;

const mode = (process.env.PEER_ADAPTER ?? "plain") as Adapter;
if (!["classic", "sharded", "plain"].includes(mode)) throw new Error(`PEER_ADAPTER must be classic, sharded or plain, got ${mode}`);
const port = Number(process.env.PORT ?? 3000);

let ready = false;
const httpServer = createServer((req, res) => {
  res.writeHead(req.url === "/readyz" && ready ? 200 : 503).end();
});
const io = new Server(httpServer, { serveClient: false });
const redisClients: Array<{ close(): Promise<unknown> }> = [];

if (mode !== "plain") {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error("REDIS_URL is required with PEER_ADAPTER=" + mode);
  const pub = createClient({ url });
  const sub = pub.duplicate();
  for (const client of [pub, sub]) client.on("error", (err: Error) => console.error(`peer redis: ${err.message}`));
  await Promise.all([pub.connect(), sub.connect()]);
  redisClients.push(pub, sub);
  io.adapter(mode === "classic" ? createAdapter(pub, sub) : createShardedAdapter(pub, sub, { subscriptionMode: "dynamic" }));
}

const nsp = io.of("/chat");
nsp.on("connection", (socket: Socket) => {
  const auth = socket.handshake.auth as { name?: unknown };
  const user = { id: socket.id, name: typeof auth.name === "string" ? auth.name.slice(0, 32) : "guest" };

  socket.on("join", (req: { room?: unknown }, ack?: Ack) => {
    if (typeof req?.room !== "string") return ack?.({ ok: false, error: { code: "bad_request" } });
    void socket.join(req.room);
    ack?.({ ok: true, room: req.room });
  });

  socket.on("message", (req: { room?: unknown; text?: unknown; clientMsgId?: unknown }, ack?: Ack) => {
    const { room, text, clientMsgId } = req ?? {};
    if (typeof room !== "string" || typeof text !== "string") return ack?.({ ok: false, error: { code: "bad_request" } });
    if (!socket.rooms.has(room)) return ack?.({ ok: false, error: { code: "not_in_room" } });
    // The same fields roomcast sends, less seq: the payload sizes stay comparable.
    const message = { room, ts: Date.now(), from: user, text, ...(typeof clientMsgId === "string" && { clientMsgId }) };
    nsp.to(room).emit("message", message);
    ack?.({ ok: true, ts: message.ts });
  });
});

await new Promise<void>((resolve) => httpServer.listen(port, "127.0.0.1", resolve));
ready = true;

const shutdown = (): void => {
  io.close();
  void Promise.allSettled(redisClients.map((client) => client.close())).then(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref(); // never hang the bench on a stuck close
};
process.once("SIGTERM", shutdown);
process.once("SIGINT", shutdown);
