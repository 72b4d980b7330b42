import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SignJWT } from "jose";
import { io } from "socket.io-client";
import { CHAT_NAMESPACE, type Ack, type ErrorBody, type ErrorEvent } from "../src/protocol.js";
import { TestClient } from "./helpers/client.js";
import { serverFixture, UNLIMITED_RATE } from "./helpers/fixture.js";
import { startServer } from "./helpers/server.js";

const HUGE = "x".repeat(100_000);
const NON_OBJECTS: unknown[] = [null, 42, true, [], ["room"], "room", ""];

/** For each event: payloads that must be refused with bad_request (besides the non-objects). */
const BAD_PAYLOADS: Record<string, unknown[]> = {
  join: [
    {},
    { room: 5 },
    { room: "" },
    { room: "has space" },
    { room: "a/b" },
    { room: "x".repeat(65) },
    { room: HUGE },
    { room: "ok", since: -1 },
    { room: "ok", since: 1.5 },
    { room: "ok", since: "3" },
    { room: "ok", since: null },
    { room: "ok", epoch: 7 },
    { room: "ok", epoch: HUGE },
  ],
  leave: [{}, { room: null }, { room: ["garbage"] }, { room: HUGE }, { room: "é" }],
  message: [
    {},
    { room: "garbage" },
    { text: "no room" },
    { room: "garbage", text: 5 },
    { room: "garbage", text: null },
    { room: "garbage", text: { toString: "hi" } },
    { room: "garbage", text: Buffer.from("binary") },
    { room: "garbage", text: "" },
    { room: "garbage", text: " \n\t " },
    { room: "garbage", text: "hi", clientMsgId: "" },
    { room: "garbage", text: "hi", clientMsgId: 1 },
    { room: "garbage", text: "hi", clientMsgId: "c".repeat(65) },
    { room: HUGE, text: "hi" },
  ],
  history: [
    {},
    { room: 1 },
    { room: "garbage", before: -5 },
    { room: "garbage", before: "10" },
    { room: "garbage", before: 2.5 },
    { room: "garbage", limit: 0 },
    { room: "garbage", limit: 101 },
    { room: "garbage", limit: "50" },
    { room: HUGE },
  ],
  typing: [{}, { room: 3 }, { room: "" }, { room: HUGE }],
};

describe("garbage from clients", () => {
  const fx = serverFixture(UNLIMITED_RATE);
  let mal: TestClient;
  let ann: TestClient;
  let bob: TestClient;
  const room = "garbage";

  before(async () => {
    [mal, ann, bob] = [await fx.connect("mal"), await fx.connect("ann"), await fx.connect("bob")];
    for (const c of [mal, ann, bob]) await c.joinOk(room);
  });

  /** Runs `body` (mal's garbage) while ann keeps chatting; then checks bob got every message and all are still connected. */
  async function alongsideChat(body: () => Promise<void>): Promise<void> {
    let running = true;
    let sent = 0;
    const start = bob.messagesIn(room).length;
    const loop = (async () => {
      for (; running; sent++) await ann.sendOk(room, `still here ${sent}`);
    })();
    try {
      await body();
    } finally {
      running = false;
      await loop;
    }
    await bob.until(() => bob.messagesIn(room).length >= start + sent, "bob gets everything ann sent");
    assert.ok(sent > 0, "ann sent while the garbage flowed");
    assert.ok(mal.socket.connected && ann.socket.connected && bob.socket.connected, "every connection stays up");
  }

  for (const [event, payloads] of Object.entries(BAD_PAYLOADS)) {
    it(`answers bad_request to every malformed ${event}`, () =>
      alongsideChat(async () => {
        for (const payload of [...NON_OBJECTS, ...payloads, undefined]) {
          const ack = await mal.request(event, payload);
          assert.equal(ack.ok, false, `${event} ${JSON.stringify(payload)?.slice(0, 60)}`);
          assert.equal((ack as { error: ErrorBody }).error.code, "bad_request", `${event} ${JSON.stringify(payload)?.slice(0, 60)}`);
          assert.equal(typeof (ack as { error: ErrorBody }).error.message, "string");
        }
        // Extra positional arguments, and no arguments at all.
        assert.equal(codeOf(await mal.request(event, { room }, "extra")), "bad_request", `${event} with two arguments`);
        assert.equal(codeOf(await mal.request(event)), "bad_request", `${event} with no payload`);
      }),
    );
  }

  it("answers too_large, not bad_request, to a text past MAX_MESSAGE_LENGTH (default 4000)", async () => {
    assert.equal(codeOf(await mal.send(room, "y".repeat(4001))), "too_large");
    assert.equal(codeOf(await mal.send(room, HUGE)), "too_large");
    await mal.sendOk(room, "y".repeat(4000));
  });

  it("answers an unknown event with bad_request", async () => {
    const ack = await mal.request("shout", { room, text: "hi" });
    assert.equal(codeOf(ack), "bad_request");
    assert.match((ack as { error: ErrorBody }).error.message, /shout/);
    assert.equal(codeOf(await mal.request("__proto__", {})), "bad_request");
  });

  it("reports a failure of an event sent without an ack as an error event naming the event", () =>
    alongsideChat(async () => {
      const errorsBefore = mal.received("error").length;
      const sent: Array<[string, unknown]> = [
        ["join", { room: 1 }],
        ["leave", null],
        ["message", { room }],
        ["message", { room, text: HUGE }],
        ["history", { room, limit: 1000 }],
        ["typing", []],
        ["bogus", { room }],
      ];
      for (const [event, payload] of sent) (mal.socket as unknown as { emit(e: string, p: unknown): void }).emit(event, payload);
      await mal.until(() => mal.received("error").length === errorsBefore + sent.length, "one error event per bad event");
      const errors = mal.received("error").slice(errorsBefore) as ErrorEvent[];
      // Validation answers at once, the length check after a turn of the event loop: compare as sets.
      const key = ([event, code]: [string, string]): string => `${event} ${code}`;
      assert.deepEqual(
        errors.map((e): [string, string] => [e.event, e.code]).map(key).sort(),
        sent.map(([event, payload]): [string, string] => [event, (payload as { text?: unknown })?.text === HUGE ? "too_large" : "bad_request"]).map(key).sort(),
      );
      for (const e of errors) assert.equal(typeof e.message, "string");
    }));

  it("still serves the garbage sender afterwards", async () => {
    const ack = await mal.sendOk(room, "I behave now");
    await bob.until(() => bob.messagesIn(room).some((m) => m.seq === ack.seq && m.from.name === "mal"), "mal's message");
    const joined = await mal.joinOk(room);
    assert.deepEqual(joined.members.map((m) => m.name).sort(), ["ann", "bob", "mal"]);
  });
});

function codeOf(ack: Ack<object>): string | undefined {
  return ack.ok ? undefined : ack.error.code;
}

/** Connects and resolves with the connect_error's data; fails if the connection is accepted. */
function connectError(url: string, auth: unknown): Promise<ErrorBody> {
  return new Promise((resolve, reject) => {
    const socket = io(`${url}${CHAT_NAMESPACE}`, { auth: auth as Record<string, unknown>, transports: ["websocket"], reconnection: false, forceNew: true });
    socket.on("connect_error", (err) => {
      socket.disconnect();
      resolve((err as Error & { data: ErrorBody }).data);
    });
    socket.on("connect", () => {
      socket.disconnect();
      reject(new Error(`connected with ${JSON.stringify(auth)}`));
    });
  });
}

describe("handshake", () => {
  const fx = serverFixture();

  it("refuses a bad name with connect_error bad_request", async () => {
    for (const name of ["n".repeat(33), "", "   ", "bell\u0007", "two\nlines", "tab\tname", "line\u2028sep", "x".repeat(100_000), 42, null, { first: "a" }]) {
      const data = await connectError(fx.url, { name });
      assert.equal(data?.code, "bad_request", `name ${JSON.stringify(name)?.slice(0, 40)}`);
      assert.equal(typeof data.message, "string");
    }
    for (const auth of [{ token: 5 }, { token: "t".repeat(9000) }]) {
      assert.equal((await connectError(fx.url, auth))?.code, "bad_request", JSON.stringify(auth).slice(0, 40));
    }
  });

  it("accepts a name of 32 characters (emoji count once) and trims it", async () => {
    const long = await fx.connect("😀".repeat(32));
    assert.equal(long.hello!.user.name, "😀".repeat(32));
    const spaced = await fx.connect(`  ${"n".repeat(32)}  `);
    assert.equal(spaced.hello!.user.name, "n".repeat(32));
  });

  it("ignores a token when no JWT secret is set", async () => {
    const guest = await fx.connect("guest", { token: "anything" });
    assert.match(guest.id, /^u-/);
  });
});

describe("handshake with a JWT secret", () => {
  const secret = "test-secret-of-32-characters-xx!";
  const fx = serverFixture({ ...UNLIMITED_RATE, jwtSecret: secret });
  const sign = (claims: Record<string, unknown>, key = secret, expires = "1h") => {
    const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime(expires);
    if (typeof claims.sub === "string") jwt.setSubject(claims.sub);
    return jwt.sign(new TextEncoder().encode(key));
  };
  const extra: TestClient[] = [];
  after(() => extra.forEach((c) => c.close()));

  it("refuses a missing or invalid token with connect_error unauthorized", async () => {
    const cases: Array<[string, unknown]> = [
      ["no token", { name: "ann" }],
      ["garbage", { token: "not.a.jwt" }],
      ["wrong secret", { token: await sign({ sub: "ann" }, "another-secret-of-32-characters!!") }],
      ["expired", { token: await sign({ sub: "ann" }, secret, "-1m") }],
      ["no subject", { token: await sign({ name: "ann" }) }],
    ];
    for (const [what, auth] of cases) assert.equal((await connectError(fx.url, auth))?.code, "unauthorized", what);
  });

  it("connects a valid HS256 token with id = sub, and takes the name from auth or the token", async () => {
    const fromAuth = await fx.connect("Ann", { token: await sign({ sub: "user-ann", name: "Annie" }) });
    assert.deepEqual(fromAuth.hello!.user, { id: "user-ann", name: "Ann" });
    const fromToken = await fx.connect(undefined, { token: await sign({ sub: "user-bob", name: "Bobby" }) });
    assert.deepEqual(fromToken.hello!.user, { id: "user-bob", name: "Bobby" });
    const guest = await fx.connect(undefined, { token: await sign({ sub: "user-cat" }) });
    assert.equal(guest.id, "user-cat");
    assert.match(guest.hello!.user.name, /^guest-/);
  });

  it("counts two connections of one user once in members and presence", async () => {
    const watcher = await fx.connect("watcher", { token: await sign({ sub: "watcher" }) });
    await watcher.joinOk("twice");
    const token = await sign({ sub: "dan", name: "dan" });
    const [phone, laptop] = [await fx.connect(undefined, { token }), await fx.connect(undefined, { token })];
    await phone.joinOk("twice");
    const second = await laptop.joinOk("twice");
    assert.deepEqual(second.members.map((m) => m.id).sort(), ["dan", "watcher"]);

    // Both connections of dan receive the room's messages.
    const { seq } = await watcher.sendOk("twice", "hi dan");
    for (const c of [phone, laptop]) await c.until(() => c.messagesIn("twice").some((m) => m.seq === seq), "hi dan");
    assert.deepEqual(watcher.received("presence"), [{ room: "twice", event: "join", member: { id: "dan", name: "dan" } }]);

    phone.close(); // dan is still there on the laptop: no leave
    const joined = await watcher.joinOk("twice");
    assert.deepEqual(joined.members.map((m) => m.id).sort(), ["dan", "watcher"]);
    assert.equal(watcher.received("presence").length, 1);

    assert.deepEqual(await laptop.request("leave", { room: "twice" }), { ok: true });
    await watcher.until(() => watcher.received("presence").length === 2, "dan leaves");
    assert.deepEqual(watcher.received("presence")[1], { room: "twice", event: "leave", member: { id: "dan", name: "dan" } });
    const alone = await watcher.joinOk("twice");
    assert.deepEqual(alone.members.map((m) => m.id), ["watcher"]);
  });

  it("counts one user once against ROOM_CAPACITY", async () => {
    const srv = await startServer({ jwtSecret: secret, roomCapacity: 2 });
    after(() => srv.close());
    const connect = async (sub: string) => {
      const c = await TestClient.connect(srv.url, { token: await sign({ sub }) });
      extra.push(c);
      return c;
    };
    const [a1, a2, b, c] = [await connect("a"), await connect("a"), await connect("b"), await connect("c")];
    for (const client of [a1, a2, b]) await client.joinOk("cap");
    assert.equal(codeOf(await c.join("cap")), "room_full");
  });
});
