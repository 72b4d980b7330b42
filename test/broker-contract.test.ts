import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { DEDUPE_WINDOW_MS, type Broker, type RoomEvent } from "../src/bus/broker.js";
import { MemoryBroker } from "../src/bus/broker-memory.js";
import { trimAt } from "../src/bus/broker-redis.js";
import { createBus, type Bus } from "../src/bus/create-bus.js";
import { defaultOptions } from "../src/config.js";
import { waitUntil } from "./helpers/client.js";
import { RedisProcess } from "./helpers/redis.js";

const HISTORY_LIMIT = 20;
const from = { id: "u1", name: "ann" };

/** One behavioural suite, run against every Broker implementation. */
function brokerContract(name: string, setup: () => Promise<{ broker: Broker; close(): Promise<void> }>): void {
  describe(`Broker contract: ${name}`, () => {
    let broker: Broker;
    let close: () => Promise<void>;
    const received: Array<[string, RoomEvent]> = [];
    before(async () => {
      ({ broker, close } = await setup());
      broker.onEvent((room, event) => received.push([room, event]));
    });
    after(async () => close());

    const publish = (room: string, text: string) => broker.publishMessage(room, { room, ts: Date.now(), from, text });

    it("assigns seq 1, 2, 3... per room and returns the message", async () => {
      const first = await publish("c-seq", "a");
      const second = await publish("c-seq", "b");
      const other = await publish("c-seq-other", "x");
      assert.deepEqual([first.seq, second.seq, other.seq], [1, 2, 1]);
      assert.equal(second.text, "b");
      assert.deepEqual(second.from, from);
    });

    it("gives each of many messages sent at once, to several rooms, its own seq in order; a resend among them gets the original's", async () => {
      const sends: Array<Promise<{ seq: number; ts: number }>> = [];
      for (let i = 0; i < 30; i++) sends.push(publish(`c-batch-${i % 3}`, `b${i}`));
      const once = { room: "c-batch-0", ts: Date.now(), from, text: "once", clientMsgId: "same" };
      sends.push(broker.publishMessage("c-batch-0", once), broker.publishMessage("c-batch-0", { ...once, ts: once.ts + 5 }));
      const results = await Promise.all(sends);
      for (let room = 0; room < 3; room++) {
        assert.deepEqual(results.slice(0, 30).filter((_, i) => i % 3 === room).map((m) => m.seq), Array.from({ length: 10 }, (_, i) => i + 1));
      }
      const [original, resend] = results.slice(30);
      assert.deepEqual([original!.seq, resend!.seq, resend!.ts], [11, 11, original!.ts]);
      const page = await broker.history("c-batch-0", { after: 0, limit: 100 });
      assert.deepEqual(page.messages.map((m) => m.text), [...Array.from({ length: 10 }, (_, i) => `b${i * 3}`), "once"]);
    });

    it("reads history after a seq (oldest first) and before a seq (newest, oldest first)", async () => {
      for (let i = 1; i <= 10; i++) await publish("c-hist", `m${i}`);
      const after3 = await broker.history("c-hist", { after: 3, limit: 4 });
      assert.deepEqual(after3.messages.map((m) => m.seq), [4, 5, 6, 7]);
      assert.equal(after3.head, 10);
      const before8 = await broker.history("c-hist", { before: 8, limit: 3 });
      assert.deepEqual(before8.messages.map((m) => m.seq), [5, 6, 7]);
      const newest = await broker.history("c-hist", { limit: 2 });
      assert.deepEqual(newest.messages.map((m) => m.seq), [9, 10]);
      assert.deepEqual((await broker.history("c-hist", { limit: 0 })).messages, []);
      assert.deepEqual((await broker.history("c-hist", { after: 10, limit: 5 })).messages, []);
      assert.deepEqual((await broker.history("c-hist", { before: 1, limit: 5 })).messages, []);
      assert.equal(after3.epoch, newest.epoch, "one life of the room keeps its epoch");
    });

    it("keeps only the newest HISTORY_LIMIT messages", async () => {
      for (let i = 1; i <= HISTORY_LIMIT + 15; i++) await publish("c-trim", `m${i}`);
      const all = await broker.history("c-trim", { after: 0, limit: 1000 });
      assert.equal(all.head, HISTORY_LIMIT + 15);
      assert.deepEqual(all.messages.map((m) => m.seq), Array.from({ length: HISTORY_LIMIT }, (_, i) => i + 16));
      const old = await broker.history("c-trim", { before: 10, limit: 5 });
      assert.deepEqual(old.messages, []);
    });

    it("stores a resend with the same clientMsgId from the same sender once, and answers the original seq and ts", async () => {
      const draft = { room: "c-dedupe", ts: 1000, from, text: "once", clientMsgId: "k-1" };
      const first = await broker.publishMessage("c-dedupe", draft);
      const again = await broker.publishMessage("c-dedupe", { ...draft, ts: 2000 });
      assert.deepEqual([again.seq, again.ts], [first.seq, 1000]);
      const otherSender = await broker.publishMessage("c-dedupe", { ...draft, from: { id: "u2", name: "bob" } });
      const otherId = await broker.publishMessage("c-dedupe", { ...draft, clientMsgId: "k-2" });
      const untagged = await broker.publishMessage("c-dedupe", { room: "c-dedupe", ts: 3000, from, text: "no id" });
      assert.deepEqual([otherSender.seq, otherId.seq, untagged.seq], [2, 3, 4]);
      const page = await broker.history("c-dedupe", { after: 0, limit: 10 });
      assert.deepEqual(page.messages.map((m) => m.seq), [1, 2, 3, 4]);
    });

    it("an empty room has head 0 and an epoch", async () => {
      const page = await broker.history("c-empty", { limit: 50 });
      assert.equal(page.head, 0);
      assert.ok(page.epoch.length > 0);
    });

    it("delivers events of subscribed rooms only, in publish order, until unsubscribed", async () => {
      await broker.subscribe("c-sub");
      for (let i = 0; i < 5; i++) await publish("c-sub", `s${i}`);
      await publish("c-unsub", "not for us");
      await broker.publishEphemeral("c-sub", { type: "typing", event: { room: "c-sub", member: from }, origin: "conn-1" });
      await waitUntil(() => received.filter(([room]) => room === "c-sub").length === 6, "six events");
      const events = received.filter(([room]) => room === "c-sub").map(([, e]) => e);
      assert.deepEqual(events.slice(0, 5).map((e) => e.type === "message" && e.message.seq), [1, 2, 3, 4, 5]);
      assert.deepEqual(events[5], { type: "typing", event: { room: "c-sub", member: from }, origin: "conn-1" });
      await broker.unsubscribe("c-sub");
      await publish("c-sub", "after unsubscribe");
      await broker.subscribe("c-barrier");
      await publish("c-barrier", "barrier");
      await waitUntil(() => received.some(([room]) => room === "c-barrier"), "barrier");
      assert.equal(received.filter(([room]) => room === "c-sub").length, 6);
      assert.ok(!received.some(([room]) => room === "c-unsub"));
    });
  });
}

brokerContract("memory", async () => {
  const broker = new MemoryBroker({ historyLimit: HISTORY_LIMIT, historyTtlMs: 60_000 });
  return { broker, close: () => broker.close() };
});

let redis: RedisProcess | undefined;
brokerContract("redis", async () => {
  redis = await RedisProcess.start();
  const options = defaultOptions({ redisUrl: redis.url, redisPrefix: "contract:", historyLimit: HISTORY_LIMIT });
  const bus: Bus = await createBus(options, "contract-node", pino({ level: "silent" }));
  return {
    broker: bus.broker,
    close: async () => {
      await bus.presence.close();
      await bus.close();
      await redis!.stop();
    },
  };
});

describe("Redis broker: what publish.lua keeps in Redis", () => {
  let redis: RedisProcess;
  let bus: Bus;
  const HISTORY_TTL = 600_000; // ttlRefreshMs: a tenth, at most a minute
  before(async () => {
    redis = await RedisProcess.start();
    const options = defaultOptions({ redisUrl: redis.url, redisPrefix: "ttl:", historyLimit: 5, historyTtl: HISTORY_TTL });
    bus = await createBus(options, "ttl-node", pino({ level: "silent" }));
  });
  after(async () => {
    await bus.presence.close();
    await bus.close();
    await redis.stop();
  });
  const draft = (ts: number, text: string) => ({ room: "r", ts, from, text });
  const pttl = async (key: string) => Number(await redis.client.sendCommand(["PTTL", key]));

  it("refreshes the TTL at most once a refresh interval, and never below HISTORY_TTL from the newest message", async () => {
    const now = Date.now();
    await bus.broker.publishMessage("r", draft(now, "a"));
    const expire = HISTORY_TTL + 2 * 60_000;
    for (const key of ["ttl:{r}:meta", "ttl:{r}:history"]) {
      const left = await pttl(key);
      assert.ok(left > expire - 5_000 && left <= expire, `${key}: ${left}`);
    }
    // Within the interval: no refresh (the TTL only runs down), yet it covers ts + HISTORY_TTL.
    await redis.client.sendCommand(["PEXPIRE", "ttl:{r}:meta", String(HISTORY_TTL + 60_000)]);
    await bus.broker.publishMessage("r", draft(now + 59_000, "b"));
    assert.ok((await pttl("ttl:{r}:meta")) <= HISTORY_TTL + 60_000);
    // Past it: both keys are refreshed.
    await redis.client.sendCommand(["PEXPIRE", "ttl:{r}:history", "1000000"]);
    await bus.broker.publishMessage("r", draft(now + 61_000, "c"));
    for (const key of ["ttl:{r}:meta", "ttl:{r}:history"]) assert.ok((await pttl(key)) > expire - 5_000, key);
  });

  it("refreshes the TTL when a process whose clock ran ahead left a keep beyond one interval", async () => {
    const now = Date.now();
    await bus.broker.publishMessage("k", draft(now, "a"));
    // As if a process 1 h ahead had refreshed last: its keep would block refreshes for an hour.
    await redis.client.sendCommand(["HSET", "ttl:{k}:meta", "keep", String(now + 3_600_000)]);
    await redis.client.sendCommand(["PEXPIRE", "ttl:{k}:meta", "1000000"]);
    await redis.client.sendCommand(["PEXPIRE", "ttl:{k}:history", "1000000"]);
    await bus.broker.publishMessage("k", draft(now + 1_000, "b"));
    const expire = HISTORY_TTL + 2 * 60_000;
    for (const key of ["ttl:{k}:meta", "ttl:{k}:history"]) assert.ok((await pttl(key)) > expire - 5_000, key);
    assert.equal(Number(await redis.client.sendCommand(["HGET", "ttl:{k}:meta", "keep"])), now + 1_000 + 60_000);
  });

  it("stores each entry as published, trims in batches, and history reads back exactly the newest HISTORY_LIMIT", async () => {
    const limit = 5;
    const most = trimAt(limit);
    assert.ok(most > limit, "trimAt leaves room for a batch");
    const lengths = new Set<number>();
    for (let seq = 1; seq <= 3 * most; seq++) {
      await bus.broker.publishMessage("s", draft(Date.now(), `m${seq}`));
      const stored = (await redis.client.sendCommand(["LRANGE", "ttl:{s}:history", "0", "-1"])) as string[];
      lengths.add(stored.length);
      assert.ok(stored.length <= most, `${stored.length} entries stored after seq ${seq}`);
      const page = await bus.broker.history("s", { limit: 10 });
      assert.equal(page.head, seq);
      assert.ok(stored.every((entry) => entry.startsWith(`m${page.epoch} {"seq":`)));
      const kept = Array.from({ length: Math.min(seq, limit) }, (_, i) => seq - Math.min(seq, limit) + 1 + i);
      assert.deepEqual(page.messages.map((m) => [m.seq, m.text]), kept.map((s) => [s, `m${s}`]));
      // Reads that start before or inside the entries kept past the limit see only the newest five.
      assert.deepEqual((await bus.broker.history("s", { after: 0, limit: 2 })).messages.map((m) => m.seq), kept.slice(0, 2));
      assert.deepEqual((await bus.broker.history("s", { before: seq, limit: 10 })).messages.map((m) => m.seq), kept.slice(0, -1));
    }
    assert.ok(lengths.has(most) && lengths.has(limit), `the list grew past the limit and was trimmed back: ${[...lengths]}`);
  });

  it("remembers clientMsgIds in two hashes per room, rotated by Redis's clock, never in a key per message", async () => {
    const window = DEDUPE_WINDOW_MS;
    const lifetime = 2 * window + 60_000; // of a generation, from its first entry
    const send = (id: string, ts = Date.now()) => bus.broker.publishMessage("d", { ...draft(ts, id), clientMsgId: id });
    const fields = async (key: string) => Object.keys((await redis.client.sendCommand(["HGETALL", key])) as Record<string, string>).sort();
    const field = (id: string) => `${from.id.length}:${from.id}${id}`;
    const assertLifetime = async () => {
      for (const key of ["ttl:{d}:sent", "ttl:{d}:sent:old"]) {
        const left = await pttl(key);
        assert.ok(left > lifetime - 5_000 && left <= lifetime, `${key}: ${left}`);
      }
    };
    // As if the current generation had taken entries for a whole window.
    const windowLater = () => redis.client.sendCommand(["PEXPIRE", "ttl:{d}:sent", String(window + 59_000)]);
    const c = await Promise.all(["c1", "c2", "c3"].map((id) => send(id)));
    assert.deepEqual(((await redis.client.sendCommand(["KEYS", "ttl:{d}:*"])) as string[]).sort(), ["ttl:{d}:history", "ttl:{d}:meta", "ttl:{d}:sent", "ttl:{d}:sent:old"]);
    assert.deepEqual(await fields("ttl:{d}:sent"), ["c1", "c2", "c3"].map(field).sort());
    assert.deepEqual(await fields("ttl:{d}:sent:old"), [""], "the previous generation exists, empty, so every key of the room is there during a slot migration");
    await assertLifetime();
    const resent = await send("c3", Date.now() + 5);
    assert.deepEqual([resent.seq, resent.ts], [c[2]!.seq, c[2]!.ts]);
    assert.equal((await bus.broker.history("d", { limit: 10 })).head, 3, "a resend is not stored again");
    // Senders' clocks do not rotate generations: a message stamped an hour ahead or behind joins the current one.
    assert.equal((await send("ahead", Date.now() + 3_600_000)).seq, 4);
    assert.equal((await send("behind", Date.now() - 3_600_000)).seq, 5);
    assert.deepEqual(await fields("ttl:{d}:sent"), ["c1", "c2", "c3", "ahead", "behind"].map(field).sort());
    // A window later the current generation becomes the previous one, kept as long as the new one.
    await windowLater();
    assert.equal((await send("c6")).seq, 6);
    assert.deepEqual(await fields("ttl:{d}:sent"), [field("c6")]);
    assert.deepEqual(await fields("ttl:{d}:sent:old"), ["c1", "c2", "c3", "ahead", "behind"].map(field).sort());
    await assertLifetime();
    assert.equal((await send("c2")).seq, c[1]!.seq, "remembered in the previous generation");
    // Another window on, the oldest generation is dropped: c1 is a new message now.
    await windowLater();
    assert.equal((await send("c7")).seq, 7);
    assert.deepEqual(await fields("ttl:{d}:sent:old"), [field("c6")]);
    assert.equal((await send("c1")).seq, 8);
    // A hash that lost its TTL (written by something else) is rotated and gets one again.
    await redis.client.sendCommand(["PERSIST", "ttl:{d}:sent"]);
    await send("c9");
    assert.deepEqual(await fields("ttl:{d}:sent"), [field("c9")]);
    await assertLifetime();
  });

  it("keeps seqs after the publisher's newest delivered message when it also sends a clientMsgId", async () => {
    const first = await bus.broker.publishMessage("n", { ...draft(Date.now(), "a"), clientMsgId: "n1" });
    const { epoch } = await bus.broker.history("n", { limit: 1 });
    // The publisher delivered seq 10 of this epoch (a promoted replica lost 2..10): the next is 11.
    const tagged = { ...draft(Date.now(), "b"), clientMsgId: "n2" };
    const sent = await bus.broker.publishMessage("n", tagged, { epoch, seq: 10 });
    assert.deepEqual([first.seq, sent.seq], [1, 11]);
    const again = await bus.broker.publishMessage("n", tagged, { epoch, seq: 11 });
    assert.deepEqual([again.seq, again.ts], [11, tagged.ts], "the resend is recognised");
    const untagged = await bus.broker.publishMessage("n", draft(Date.now(), "c"), { epoch, seq: 20 });
    assert.equal(untagged.seq, 21);
  });

  it("reads history entries stored by older versions (bare JSON)", async () => {
    const old = (seq: number) => JSON.stringify({ seq, room: "o", ts: 1, from, text: `old ${seq}` });
    await redis.client.sendCommand(["HSET", "ttl:{o}:meta", "seq", "2", "epoch", "e1"]);
    await redis.client.sendCommand(["RPUSH", "ttl:{o}:history", old(1), old(2)]);
    const sent = await bus.broker.publishMessage("o", draft(Date.now(), "new"));
    assert.equal(sent.seq, 3);
    const page = await bus.broker.history("o", { limit: 10 });
    assert.equal(page.epoch, "e1");
    assert.deepEqual(page.messages.map((m) => m.text), ["old 1", "old 2", "new"]);
  });
});
