import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Ack, ErrorEvent } from "../src/protocol.js";
import { waitUntil, type TestClient } from "./helpers/client.js";
import { range, serverFixture, UNLIMITED_RATE } from "./helpers/fixture.js";
import { metricValue } from "./helpers/metrics.js";
import { RawPollingClient } from "./helpers/raw-polling.js";

const codeOf = (ack: Ack<object>): string | undefined => (ack.ok ? undefined : ack.error.code);

/** Retries `attempt` until it succeeds, within a bounded time; returns how many attempts failed first. */
async function retryUntilOk(attempt: () => Promise<Ack<object>>, what: string, timeoutMs = 3000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (let failures = 0; ; failures++) {
    const ack = await attempt();
    if (ack.ok) return failures;
    assert.equal(ack.error.code, "rate_limited", what);
    if (Date.now() > deadline) throw new Error(`${what}: still rate limited after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20)); // polling interval, not a wait for an outcome
  }
}

/** Sends a message and waits for its echo: everything the server sent `client` before it has arrived. */
async function barrier(client: TestClient, room: string): Promise<void> {
  const { seq } = await client.sendOk(room, "barrier");
  await client.until(() => client.messagesIn(room).some((m) => m.seq === seq), "barrier echo");
}

describe("ROOM_CAPACITY", () => {
  const fx = serverFixture({ ...UNLIMITED_RATE, roomCapacity: 2 });

  it("makes a one-to-one room: the third gets room_full and nothing changes", async () => {
    const [ann, bob, cat] = [await fx.connect("ann"), await fx.connect("bob"), await fx.connect("cat")];
    await ann.joinOk("pair");
    await bob.joinOk("pair");
    const full = await cat.join("pair");
    assert.equal(codeOf(full), "room_full");

    await barrier(ann, "pair");
    await barrier(bob, "pair");
    assert.deepEqual(ann.received("presence"), [{ room: "pair", event: "join", member: bob.hello!.user }], "ann heard bob only");
    assert.deepEqual(bob.received("presence"), [], "bob heard nothing of cat");
    const again = await ann.joinOk("pair"); // already a member: the current state
    assert.deepEqual(again.members.map((m) => m.name).sort(), ["ann", "bob"]);
    assert.equal(codeOf(await cat.send("pair", "let me in")), "not_in_room");
    assert.equal(cat.messagesIn("pair").length, 0);

    // A place frees up when someone leaves.
    assert.deepEqual(await bob.request("leave", { room: "pair" }), { ok: true });
    const joined = await cat.joinOk("pair");
    assert.deepEqual(joined.members.map((m) => m.name).sort(), ["ann", "cat"]);
  });

  it("never overfills a room when many join at once", async () => {
    const clients = await Promise.all(range(1, 6).map((i) => fx.connect(`rush${i}`)));
    const acks = await Promise.all(clients.map((c) => c.join("rush")));
    assert.equal(acks.filter((a) => a.ok).length, 2);
    assert.deepEqual(acks.filter((a) => !a.ok).map(codeOf), ["room_full", "room_full", "room_full", "room_full"]);
  });
});

describe("MAX_ROOMS_PER_CONNECTION", () => {
  const fx = serverFixture({ ...UNLIMITED_RATE, maxRoomsPerConnection: 3 });

  it("answers too_many_rooms past the limit, and counts a left room out again", async () => {
    const ann = await fx.connect("ann");
    for (const room of ["r1", "r2", "r3"]) await ann.joinOk(room);
    assert.equal(codeOf(await ann.join("r4")), "too_many_rooms");
    await ann.joinOk("r2"); // a room it is already in does not count twice
    assert.equal(codeOf(await ann.send("r4", "hi")), "not_in_room", "the refused room was not joined");
    assert.deepEqual(await ann.request("leave", { room: "r1" }), { ok: true });
    await ann.joinOk("r4");
  });

  it("holds when one connection joins many rooms at once", async () => {
    const bob = await fx.connect("bob");
    const acks = await Promise.all(range(1, 6).map((i) => bob.join(`many${i}`)));
    assert.equal(acks.filter((a) => a.ok).length, 3);
    assert.equal(acks.filter((a) => codeOf(a) === "too_many_rooms").length, 3);
  });
});

describe("rate limits", () => {
  const fx = serverFixture({ messageRate: 5, messageBurst: 3, typingRate: 5, typingBurst: 2, joinRate: 5, joinBurst: 3, historyRate: 5, historyBurst: 3 });

  it("answers rate_limited past the join burst, changing nothing, and refills", async () => {
    const ann = await fx.connect("ann");
    const acks = await Promise.all(range(1, 5).map((n) => ann.join(`rl-join-${n}`)));
    assert.deepEqual(acks.map(codeOf), [undefined, undefined, undefined, "rate_limited", "rate_limited"]);
    const refused = await ann.send("rl-join-4", "not a member");
    assert.equal(codeOf(refused), "not_in_room");
    await retryUntilOk(() => ann.join("rl-join-4"), "join after refill");
    await ann.sendOk("rl-join-4", "now a member");
  });

  it("answers rate_limited past the history burst, counting joins of a room already joined, and refills", async () => {
    const ann = await fx.connect("ann");
    await ann.joinOk("rl-history"); // a first join is a join, not a history read
    await ann.sendOk("rl-history", "kept");
    const reads = await Promise.all([ann.history("rl-history"), ann.join("rl-history", { since: 0 }), ann.history("rl-history"), ann.history("rl-history"), ann.join("rl-history")]);
    assert.deepEqual(reads.map(codeOf), [undefined, undefined, undefined, "rate_limited", "rate_limited"]);
    assert.ok(ann.socket.connected);
    await ann.sendOk("rl-history", "messages have their own allowance");
    await retryUntilOk(() => ann.history("rl-history"), "history after refill");
    const first = reads[0]!;
    assert.deepEqual(first.ok && "messages" in first && first.messages.map((m) => m.text), ["kept"], "what was answered is whole");
  });

  it("answers rate_limited past the message burst, keeps the connection, and refills", async () => {
    const ann = await fx.connect("ann");
    const bob = await fx.connect("bob");
    await ann.joinOk("rl");
    await bob.joinOk("rl");
    const acks = await Promise.all(range(1, 5).map((n) => ann.send("rl", `m${n}`)));
    assert.deepEqual(acks.map(codeOf), [undefined, undefined, undefined, "rate_limited", "rate_limited"]);
    assert.ok(ann.socket.connected);
    // Another connection has its own bucket.
    await bob.sendOk("rl", "bob is fine");
    await retryUntilOk(() => ann.send("rl", "again"), "ann after refill");
    await bob.until(() => bob.messagesIn("rl").length === 5, "bob gets 3 + 1 + ann's retry");
    assert.deepEqual(bob.messagesIn("rl").map((m) => m.text), ["m1", "m2", "m3", "bob is fine", "again"]);
  });

  it("answers rate_limited past the typing burst, with an error event when there is no ack", async () => {
    const ann = await fx.connect("ann");
    const bob = await fx.connect("bob");
    await ann.joinOk("rl-typing");
    await bob.joinOk("rl-typing");
    for (let i = 0; i < 3; i++) ann.socket.emit("typing", { room: "rl-typing" });
    await ann.until(() => ann.received("error").length === 1, "error event");
    assert.deepEqual(
      { ...(ann.received("error")[0] as ErrorEvent), message: "" },
      { code: "rate_limited", message: "", event: "typing" },
    );
    await bob.until(() => bob.received("typing").length === 2, "two typing events");
    assert.ok(ann.socket.connected);
    // With an ack callback, success is acknowledged too.
    await retryUntilOk(() => ann.request("typing", { room: "rl-typing" }), "typing after refill");
    await bob.until(() => bob.received("typing").length === 3, "the third typing event");
  });
});

describe("MAX_MESSAGE_LENGTH", () => {
  const fx = serverFixture({ ...UNLIMITED_RATE, maxMessageLength: 10 });

  it("answers too_large past the limit, counting characters, not UTF-16 units", async () => {
    const ann = await fx.connect("ann");
    await ann.joinOk("long");
    await ann.sendOk("long", "a".repeat(10));
    assert.equal(codeOf(await ann.send("long", "a".repeat(11))), "too_large");
    await ann.sendOk("long", "😀".repeat(10));
    assert.equal(codeOf(await ann.send("long", "😀".repeat(11))), "too_large");
    assert.equal(codeOf(await ann.send("long", "x".repeat(100_000))), "too_large");
    await ann.until(() => ann.messagesIn("long").length === 2, "the two accepted messages");
    const history = await ann.history("long");
    assert.ok(history.ok);
    assert.deepEqual(history.messages.map((m) => m.text), ["a".repeat(10), "😀".repeat(10)]);
  });
});

describe("MAX_BUFFERED_PACKETS", () => {
  const fx = serverFixture({ ...UNLIMITED_RATE, maxBufferedPackets: 20 });

  it("closes a connection that stops reading, and it leaves its rooms", async () => {
    const ann = await fx.connect("ann");
    await ann.joinOk("slow");
    const slow = await RawPollingClient.connect(fx.url, { name: "slow" });
    const joined = (await slow.request("join", { room: "slow" })) as Ack<object>;
    assert.equal(joined.ok, true);
    await ann.until(() => ann.received("presence").length === 1, "slow joins");

    // The slow client no longer polls: every message to it piles up on the server.
    for (let i = 0; i < 30; i++) await ann.sendOk("slow", `m${i}`);
    await ann.until(() => ann.received("presence").length === 2, "slow is closed and leaves");
    assert.deepEqual(ann.received("presence")[1], { room: "slow", event: "leave", member: { id: (ann.received("presence")[0] as { member: { id: string } }).member.id, name: "slow" } });
    assert.ok(ann.socket.connected, "the reading connection stays");
    await waitUntil(() => fx.srv.server.connections().length === 1, "only ann is left");
    const metrics = await (await fetch(`${fx.url}/metrics`)).text();
    assert.match(metrics, /^roomcast_slow_consumers_total 1$/m);
  });

  it("keeps a connection that reads, through a burst of more packets than the limit in one turn", async () => {
    const slowConsumers = () => metricValue(fx.url, "roomcast_slow_consumers_total");
    const closedBefore = await slowConsumers();
    const bob = await fx.connect("bob");
    const gateway = fx.srv.server.gateway as unknown as { send(connId: string, event: string, payload: unknown): void };
    // One synchronous burst (as a catch-up after a Redis outage sends): 50 packets, limit 20.
    for (let i = 0; i < 50; i++) gateway.send(bob.socket.id!, "burst", i);
    await bob.until(() => bob.events.filter((e) => e.event === "burst").length === 50, "the whole burst");
    assert.deepEqual(bob.events.filter((e) => e.event === "burst").map((e) => e.payload), range(0, 49));
    assert.ok(bob.socket.connected);
    assert.equal(await slowConsumers(), closedBefore);
  });
});
