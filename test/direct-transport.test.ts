import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { CHAT_NAMESPACE, type Hello } from "../src/protocol.js";
import { TestClient, waitUntil } from "./helpers/client.js";
import { serverFixture, UNLIMITED_RATE } from "./helpers/fixture.js";

/** A WebSocket that speaks the Socket.IO wire protocol by hand: what any client library sends. */
class RawClient {
  readonly frames: string[] = [];
  closed = false;
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => this.frames.push(isBinary ? "<binary>" : data.toString()));
    ws.on("close", () => (this.closed = true));
  }

  static async open(url: string, options: { answerPings?: boolean } = {}): Promise<RawClient> {
    const ws = new WebSocket(`${url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
    const client = new RawClient(ws);
    if (options.answerPings !== false) ws.on("message", (data) => data.toString() === "2" && ws.send("3"));
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    return client;
  }

  send(text: string): void {
    this.ws.send(text);
  }

  async frame(match: (frame: string) => boolean, what: string): Promise<string> {
    await waitUntil(() => this.frames.some(match), what);
    return this.frames.find(match)!;
  }

  close(): void {
    this.ws.terminate();
  }
}

describe("direct WebSocket transport", () => {
  const fx = serverFixture({ ...UNLIMITED_RATE, pingInterval: 400, pingTimeout: 300 });

  it("speaks Socket.IO's handshake: open packet, namespaces, hello, acks", async () => {
    const raw = await RawClient.open(fx.url);
    try {
      const open = JSON.parse((await raw.frame((f) => f.startsWith("0"), "open packet")).slice(1)) as Record<string, unknown>;
      assert.equal(typeof open.sid, "string");
      assert.deepEqual(open.upgrades, []);
      assert.equal(open.pingInterval, 400);
      assert.equal(open.pingTimeout, 300);

      // Before the namespace is connected an event goes nowhere, as with Socket.IO.
      raw.send(`42${CHAT_NAMESPACE},1["join",{"room":"early"}]`);
      raw.send("40/nowhere,");
      assert.match(await raw.frame((f) => f.startsWith("44/nowhere,"), "connect_error"), /"message":"Invalid namespace"/);
      raw.send("40");
      assert.match(await raw.frame((f) => /^40\{"sid":"[\w-]+"\}$/.test(f), "main namespace connected"), /sid/);
      raw.send(`40${CHAT_NAMESPACE},{"name":"raw"}`);
      const hello = await raw.frame((f) => f.startsWith(`42${CHAT_NAMESPACE},["hello"`), "hello");
      assert.equal((JSON.parse(hello.slice(`42${CHAT_NAMESPACE},`.length)) as [string, Hello])[1].user.name, "raw");
      assert.ok(raw.frames.some((f) => f.startsWith(`40${CHAT_NAMESPACE},{"sid":`)));
      assert.ok(!raw.frames.some((f) => f.startsWith(`43${CHAT_NAMESPACE},1[`)), "the early event got no answer");

      raw.send(`42${CHAT_NAMESPACE},7["join",{"room":"raw-room"}]`);
      assert.match(await raw.frame((f) => f.startsWith(`43${CHAT_NAMESPACE},7[`), "join ack"), /"ok":true/);
      raw.send(`42${CHAT_NAMESPACE},8["message",{"room":"raw-room","text":"hi"}]`);
      assert.match(await raw.frame((f) => f.startsWith(`43${CHAT_NAMESPACE},8[`), "message ack"), /^43\/chat,8\[\{"ok":true,"seq":1/);
      assert.match(await raw.frame((f) => f.includes(`["message",{"room":"raw-room"`), "the echo"), /"text":"hi"/);
      raw.send(`42${CHAT_NAMESPACE},9["message",{"room":"raw-room"}]`);
      assert.match(await raw.frame((f) => f.startsWith(`43${CHAT_NAMESPACE},9[`), "error ack"), /"code":"bad_request"/);
      raw.send(`42${CHAT_NAMESPACE},["message",{"room":"raw-room"}]`);
      assert.match(await raw.frame((f) => f.includes(`["error",`), `error event without an ack in ${JSON.stringify(raw.frames.slice(-3))}`), /"event":"message"/);
    } finally {
      raw.close();
    }
  });

  it("closes a connection that sends a malformed packet; everyone else keeps working", async () => {
    const ann = await fx.connect("ann");
    await ann.joinOk("robust");
    for (const garbage of ["4not a packet", "9", `42${CHAT_NAMESPACE},["join"`, "4\u0000"]) {
      const raw = await RawClient.open(fx.url);
      raw.send(`40${CHAT_NAMESPACE},{"name":"bad"}`);
      await raw.frame((f) => f.includes('["hello"'), "hello");
      raw.send(garbage);
      await waitUntil(() => raw.closed, `closed after ${JSON.stringify(garbage)}`);
    }
    await ann.sendOk("robust", "still here");
    await waitUntil(() => fx.srv.server.connections().length === 1, "only ann is left");
  });

  it("pings every PING_INTERVAL and closes a client that stops answering, not one that answers", async () => {
    const silent = await RawClient.open(fx.url, { answerPings: false });
    const polite = await RawClient.open(fx.url);
    const ann = await fx.connect("ann");
    try {
      silent.send(`40${CHAT_NAMESPACE},{"name":"silent"}`);
      polite.send(`40${CHAT_NAMESPACE},{"name":"polite"}`);
      await silent.frame((f) => f === "2", "a ping");
      await waitUntil(() => silent.closed, "the silent client is closed", 3000);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.ok(!polite.closed);
      assert.ok(polite.frames.filter((f) => f === "2").length >= 2, "pinged again and again");
      assert.ok(ann.socket.connected, "socket.io-client answers pings by itself");
      await waitUntil(() => !fx.srv.server.connections().some((c) => c.user.name === "silent"), "silent's session ends");
    } finally {
      polite.close();
    }
  });

  it("serves WebSocket clients itself and long-polling ones through Socket.IO, in the same rooms", async () => {
    const ws = await fx.connect("ws");
    const poller = fx.track(await TestClient.connect(fx.url, { name: "poller" }, { transports: ["polling"] }));
    // Only the poller is a Socket.IO socket; both are chat connections.
    assert.deepEqual([...fx.srv.server.io.of(CHAT_NAMESPACE).sockets.values()].map((s) => s.id), [poller.socket.id]);
    assert.equal(fx.srv.server.connections().filter((c) => ["ws", "poller"].includes(c.user.name)).length, 2);
    await ws.joinOk("mixed");
    await poller.joinOk("mixed");
    await ws.sendOk("mixed", "from ws");
    await poller.sendOk("mixed", "from poller");
    for (const client of [ws, poller]) {
      await client.until(() => client.messagesIn("mixed").length === 2, "both messages");
      assert.deepEqual(client.messagesIn("mixed").map((m) => m.text), ["from ws", "from poller"]);
    }
    await waitUntil(() => ws.received("presence").length === 1, "ws sees the poller join");
    // Closed before the server is: engine.io otherwise holds a polling transport's close for 30 s.
    poller.close();
    await waitUntil(() => fx.srv.server.io.of(CHAT_NAMESPACE).sockets.size === 0, "the poller is gone");
  });
});

describe("direct transport: heartbeat timing", () => {
  // An interval that is not a whole number of seconds, and a timeout shorter than it.
  const fx = serverFixture({ pingInterval: 1500, pingTimeout: 300 });

  it("pings exactly every PING_INTERVAL and ends a silent client PING_TIMEOUT after a ping", async () => {
    const ann = await fx.connect("ann");
    const silent = await RawClient.open(fx.url, { answerPings: false });
    silent.send(`40${CHAT_NAMESPACE},{"name":"silent"}`);
    const opened = Date.now();
    await silent.frame((f) => f === "2", "a ping");
    await waitUntil(() => silent.closed, "the silent client is closed", 3000);
    const closedAfter = Date.now() - opened;
    assert.ok(closedAfter >= 1500 + 300 - 100 && closedAfter < 1500 + 300 + 1000, `closed ${closedAfter} ms after opening`);
    // socket.io-client gives up after interval + timeout without a ping: it must still be here.
    await new Promise((resolve) => setTimeout(resolve, 3500 - (Date.now() - opened)));
    assert.ok(ann.socket.connected, "socket.io-client still connected after two ping intervals");
    await ann.joinOk("still");
  });
});

describe("allowRequest and admit, on both transports", () => {
  const fx = serverFixture({
    allowRequest: (req) => req.headers["x-ticket"] !== "refused",
    admit: (user) => {
      if (user.name === "thrower") throw new Error("admit bug");
      return user.name === "banned" ? { code: "unauthorized", message: "banned here" } : undefined;
    },
  });

  for (const transports of [["websocket"], ["polling"]] as const) {
    it(`${transports[0]}: refuses a request allowRequest rejects, and users admit refuses; a bug in admit harms no one else`, async () => {
      const attempt = (auth: Record<string, unknown>, headers: Record<string, string> = {}) =>
        new Promise<{ message: string; data?: { code?: string } }>((resolve, reject) => {
          const socket = io(`${fx.url}${CHAT_NAMESPACE}`, { auth, transports: [...transports], extraHeaders: headers, reconnection: false, forceNew: true });
          socket.on("connect", () => {
            socket.close();
            reject(new Error("connected"));
          });
          socket.on("connect_error", (err: Error & { data?: { code?: string } }) => {
            socket.close();
            resolve({ message: err.message, data: err.data });
          });
        });
      assert.ok((await attempt({ name: "ok" }, { "x-ticket": "refused" })).message.length > 0);
      const banned = await attempt({ name: "banned" });
      assert.deepEqual([banned.message, banned.data?.code], ["banned here", "unauthorized"]);
      assert.equal((await attempt({ name: "thrower" })).message, "internal error");
      const ann = await fx.connect("ann", {}, { transports: [...transports] });
      await ann.joinOk("admitted");
      // Closed before the server is: engine.io otherwise holds a polling transport's close for 30 s.
      ann.close();
      await waitUntil(() => fx.srv.server.io.engine.clientsCount === 0, "every engine.io client gone");
    });
  }
});

describe("WEBSOCKET_TRANSPORT=socketio", () => {
  const fx = serverFixture({ websocketTransport: "socketio" });

  it("serves WebSocket clients through Socket.IO", async () => {
    const ann = await fx.connect("ann");
    assert.equal(fx.srv.server.io.of(CHAT_NAMESPACE).sockets.get(ann.socket.id!)?.conn.transport.name, "websocket");
    await ann.joinOk("sio");
    await ann.sendOk("sio", "hi");
  });
});

describe("direct transport: a client that stops reading", () => {
  const fx = serverFixture({ ...UNLIMITED_RATE, maxBufferedPackets: 20, maxMessageLength: 60_000 });

  it("is closed once its unsent frames pass MAX_BUFFERED_PACKETS, and leaves its rooms", async () => {
    const ann = await fx.connect("ann");
    const slow = fx.track(await TestClient.connect(fx.url, { name: "slow" }));
    await ann.joinOk("flood");
    await slow.joinOk("flood");
    // The slow client's TCP socket stops reading: the kernel's buffers fill, then the server's.
    const slowTcp = (slow.socket.io.engine.transport as unknown as { ws: { _socket: { pause(): void; destroy(): void } } }).ws._socket;
    slowTcp.pause();
    const big = "x".repeat(60_000);
    for (let i = 0; i < 400 && fx.srv.server.connections().length === 2; i++) await ann.sendOk("flood", big);
    await waitUntil(() => fx.srv.server.connections().length === 1, "the slow client is closed");
    assert.ok(ann.socket.connected, "the reading connection stays");
    const metrics = await (await fetch(`${fx.url}/metrics`)).text();
    assert.match(metrics, /^roomcast_slow_consumers_total 1$/m);
    slowTcp.destroy(); // a paused socket never sees the close: its client would wait 30 s for it
  });

  it("keeps a reading client through a burst of one turn far past the limit and the high-water mark", async () => {
    const bob = await fx.connect("bob");
    const gateway = fx.srv.server.gateway as unknown as { send(connId: string, event: string, payload: unknown): void };
    // 200 frames of 1 KB in one turn: 200 KB behind the cork, limit 20 frames.
    for (let i = 0; i < 200; i++) gateway.send(bob.socket.id!, "burst", `${i} ${"y".repeat(1000)}`);
    await bob.until(() => bob.events.filter((e) => e.event === "burst").length === 200, "the whole burst");
    assert.ok(bob.socket.connected);
    const metrics = await (await fetch(`${fx.url}/metrics`)).text();
    assert.match(metrics, /^roomcast_slow_consumers_total 1$/m, "only the stopped reader of the test before");
  });
});

describe("direct transport: socket.io-client with its defaults", () => {
  const fx = serverFixture();

  it("connects over polling, upgrades through Socket.IO, and chats", async () => {
    const client = fx.track(await TestClient.connectUpgraded(fx.url, { name: "browserish" }));
    await client.joinOk("upgraded");
  });
});
