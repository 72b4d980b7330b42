import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { RedisConnection } from "../src/bus/redis-connection.js";
import { RedisKeys } from "../src/bus/redis-keys.js";
import { RedisScript } from "../src/bus/redis-scripts.js";
import type { ChatMessage } from "../src/protocol.js";
import { TestClient, waitUntilAsync } from "./helpers/client.js";
import { clusterFixture } from "./helpers/cluster-fixture.js";

const PREFIX = "rs:";
/** Longest wait for anything to settle after a move: it takes well under a second here. */
const SETTLE_MS = 8000;

interface SendStats {
  refused: Map<string, number>;
  slowestMs: number;
}

interface Acked {
  seq: number;
  text: string;
  clientMsgId: string;
}

/**
 * Two roomcast processes on a real three-master Redis Cluster while a busy room's slot is moved to
 * another master, the way `redis-cli --cluster reshard` does it (SETSLOT IMPORTING / MIGRATING,
 * MIGRATE, SETSLOT NODE). Members on both processes must get every acked message once, in order,
 * and the room's subscriptions must follow the slot to its new master.
 */
describe("Redis Cluster resharding", () => {
  // An unhandled rejection would end a real process: none may come from a reshard.
  const fx = clusterFixture({ nodeIds: ["r1", "r2"], server: { redisPrefix: PREFIX } });
  const { servers, clients, unhandled } = fx;

  /** A room of its own with a member on each process, and where its slot is. */
  async function busyRoom(name: string) {
    const channel = `${PREFIX}{${name}}:history`;
    const slot = await fx.nodes.slotOf(channel);
    const from = await fx.nodes.nodeOf(channel);
    const to = (from + 1) % fx.nodes.ports.length;
    const ann = await TestClient.connect(servers[0]!.url, { name: `ann-${name}` });
    const bob = await TestClient.connect(servers[1]!.url, { name: `bob-${name}` });
    clients.push(ann, bob);
    await ann.joinOk(name);
    await bob.joinOk(name);
    return { channel, slot, from, to, ann, bob };
  }

  /** Sends until `stop()`, each message with a clientMsgId and resent until acked ok. */
  async function keepSending(client: TestClient, room: string, who: string, acked: Acked[], stats: SendStats, stop: () => boolean) {
    const { refused } = stats;
    for (let i = 0; !stop(); i++) {
      const text = `${who} ${i}`;
      const clientMsgId = `${who}-${i}`;
      for (let attempt = 0; ; attempt++) {
        const sentAt = Date.now();
        const ack = await client.send(room, text, { clientMsgId });
        stats.slowestMs = Math.max(stats.slowestMs, Date.now() - sentAt);
        if (ack.ok) {
          acked.push({ seq: ack.seq, text, clientMsgId });
          break;
        }
        refused.set(ack.error.code, (refused.get(ack.error.code) ?? 0) + 1);
        assert.ok(attempt < 100, `${text} still refused (${ack.error.code}) after 100 attempts`);
        await sleep(20);
      }
      await sleep(2);
    }
  }

  /** History holds every acked message under its seq, and each member got it all once, in order. */
  async function assertDelivered(room: string, members: TestClient[], acked: Acked[]) {
    const page = { messages: [] as ChatMessage[] };
    for (let before: number | undefined; before !== 1; ) {
      const older = await members[0]!.history(room, before === undefined ? { limit: 100 } : { limit: 100, before });
      assert.ok(older.ok, `history before ${before}`);
      if (older.messages.length === 0) break;
      page.messages.unshift(...older.messages);
      before = older.messages[0]!.seq;
    }
    const seqs = page.messages.map((m) => m.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), "history is gap-free from seq 1");
    const stored = new Map(page.messages.map((m) => [m.seq, m.text]));
    for (const { seq, text } of acked) assert.equal(stored.get(seq), text, `acked message ${seq} is in history`);
    assert.equal(page.messages.length, acked.length, "history holds each acked message once");
    for (const member of members) {
      await member.until(() => member.messagesIn(room).length >= page.messages.length, `${member.hello!.user.name} gets all ${page.messages.length}`, SETTLE_MS);
      assert.deepEqual(member.messagesIn(room).map((m) => [m.seq, m.text]), page.messages.map((m) => [m.seq, m.text]));
    }
  }

  /** Both processes' subscriptions to `channel` are on `owner` and on no other node. */
  async function assertSubscribedOn(channel: string, owner: number) {
    await waitUntilAsync(async () => {
      for (let i = 0; i < fx.nodes.ports.length; i++) {
        if ((await fx.nodes.shardSubscribers(i, channel)) !== (i === owner ? 2 : 0)) return false;
      }
      return true;
    }, `both processes subscribed to ${channel} on its new master only`, SETTLE_MS);
  }

  it("a busy room keeps one gap-free order across processes while its slot moves, and its subscriptions follow", async (t) => {
    const { channel, slot, from, to, ann, bob } = await busyRoom("busy");
    assert.equal(await fx.nodes.shardSubscribers(from, channel), 2);
    const acked: Acked[] = [];
    const stats: SendStats = { refused: new Map(), slowestMs: 0 };
    let moved = false;
    let ackedAtMove = 0;
    const stop = () => moved && acked.length >= ackedAtMove + 40;
    const senders = Promise.all([keepSending(ann, "busy", "ann", acked, stats, stop), keepSending(bob, "busy", "bob", acked, stats, stop)]);

    await ann.until(() => acked.length >= 40, "messages flowing before the move");
    const startedAt = Date.now();
    const keys = await fx.nodes.moveSlot(slot, from, to, { pauseMs: 20 });
    const moveMs = Date.now() - startedAt;
    ackedAtMove = acked.length;
    moved = true;
    // The room's data moved whole: meta, history and the two resend (dedupe) hashes.
    for (const suffix of ["meta", "history", "sent", "sent:old"]) assert.ok(keys.includes(`${PREFIX}{busy}:${suffix}`), `${suffix} key migrated`);
    assert.equal(Number(await fx.nodes.clients[from]!.sendCommand(["CLUSTER", "COUNTKEYSINSLOT", String(slot)])), 0);
    assert.equal(await fx.nodes.nodeOf(channel), to);

    await Promise.race([senders, sleep(20_000, undefined, { ref: false }).then(() => assert.fail("senders stalled after the move"))]);
    await assertSubscribedOn(channel, to);
    t.diagnostic(`moved ${keys.length} keys in ${moveMs} ms with ${ackedAtMove} acked; slowest ack ${stats.slowestMs} ms; refused: ${JSON.stringify([...stats.refused])}`);
    // Sends while the slot was half moved (Redis: TRYAGAIN) waited for it instead of failing.
    assert.deepEqual([...stats.refused], [], "no send refused during the move");

    await assertDelivered("busy", [ann, bob], acked);
    // A resend from before the move is still recognised: its dedupe key moved with the room.
    const first = acked.find((a) => a.clientMsgId === "ann-0")!;
    const resent = await ann.send("busy", first.text, { clientMsgId: first.clientMsgId });
    assert.ok(resent.ok && resent.seq === first.seq, "a resend after the move gets the original seq");
    // Both processes publish and receive on the new shard.
    const last = await bob.sendOk("busy", "after the move");
    await ann.until(() => ann.messagesIn("busy").some((m) => m.seq === last.seq), "ann gets bob's message on the new shard");
    assert.deepEqual(unhandled, [], "no unhandled promise rejection");
  });

  // A publish that waits for a migration still counts as in flight, and a process refuses every
  // new message while its oldest publish has waited past a quarter of REDIS_TIMEOUT: a long move
  // must not make the process refuse its other rooms.
  it("a long move delays or refuses only the moving room's messages, never another room's on the same process", async () => {
    const { slot, from, to, ann } = await busyRoom("long");
    let other = "";
    for (let i = 0; !other; i++) if ((await fx.nodes.nodeOf(`${PREFIX}{other-${i}}:history`)) !== from) other = `other-${i}`;
    const cat = await TestClient.connect(servers[0]!.url, { name: "cat" });
    clients.push(cat);
    await cat.joinOk(other);
    const moving: Acked[] = [];
    const bystander: Acked[] = [];
    const movingStats: SendStats = { refused: new Map(), slowestMs: 0 };
    const bystanderStats: SendStats = { refused: new Map(), slowestMs: 0 };
    let moved = false;
    const senders = Promise.all([
      keepSending(ann, "long", "ann", moving, movingStats, () => moved),
      keepSending(cat, other, "cat", bystander, bystanderStats, () => moved),
    ]);
    await ann.until(() => moving.length >= 20, "messages flowing before the move");
    const startedAt = Date.now();
    // A room has a handful of keys (meta, history, two resend hashes, presence): one per batch.
    await fx.nodes.moveSlot(slot, from, to, { batch: 1, pauseMs: 250 });
    const moveMs = Date.now() - startedAt;
    moved = true;
    await senders;
    assert.ok(moveMs >= 1000, `the move took ${moveMs} ms: long enough to matter`);
    assert.deepEqual([...bystanderStats.refused], [], `another room's sends while ${moveMs} ms of moving (moving room: ${JSON.stringify([...movingStats.refused])})`);
    assert.deepEqual(unhandled, [], "no unhandled promise rejection");
  });

  it("a subscription still on the old master follows the slot when its connection comes back (MOVED on resubscribe)", async (t) => {
    const { channel, slot, from, to, ann, bob } = await busyRoom("away");
    await ann.sendOk("away", "before");
    await bob.until(() => bob.messagesIn("away").length === 1, "the first message");
    // Both processes' subscriber connections to the owner are cut and kept out (no new connection
    // is let in) while the slot moves: they miss its SUNSUBSCRIBE and come back subscribed to a
    // channel whose slot is elsewhere now, so their resubscribe is answered MOVED.
    const acked: Acked[] = [{ seq: 1, text: "before", clientMsgId: "" }];
    try {
      const killed = await fx.nodes.keepSubscribersOut(from);
      assert.ok(killed >= 2, `both processes' subscriber connections (${killed})`);
      await fx.nodes.moveSlot(slot, from, to);
      for (let i = 0; i < 3; i++) {
        const ack = await ann.sendOk("away", `while away ${i}`);
        acked.push({ seq: ack.seq, text: `while away ${i}`, clientMsgId: "" });
      }
    } finally {
      await fx.nodes.letIn(from);
    }
    const backAt = Date.now();
    await assertSubscribedOn(channel, to);
    t.diagnostic(`subscriptions on the new master ${Date.now() - backAt} ms after the old one let connections in again`);
    // What was published while the subscriptions were away arrives from history, and live
    // delivery works on the new shard.
    for (let i = 0; i < 3; i++) {
      const ack = await bob.sendOk("away", `after ${i}`);
      acked.push({ seq: ack.seq, text: `after ${i}`, clientMsgId: "" });
    }
    await assertDelivered("away", [ann, bob], acked);
    assert.deepEqual(unhandled, [], "no unhandled promise rejection");
  });

  it("a room moved while connected keeps working after its old master's connections drop", async () => {
    const { channel, slot, from, to, ann, bob } = await busyRoom("dropped");
    await ann.sendOk("dropped", "before");
    await fx.nodes.moveSlot(slot, from, to);
    await assertSubscribedOn(channel, to);
    await fx.nodes.clients[from]!.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]);
    await fx.nodes.clients[from]!.sendCommand(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    await fx.nodes.clients[to]!.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]);
    await assertSubscribedOn(channel, to);
    const acked: Acked[] = [{ seq: 1, text: "before", clientMsgId: "" }];
    for (let i = 0; i < 3; i++) {
      const sender = i % 2 ? bob : ann;
      let ack = await sender.send("dropped", `after ${i}`);
      for (let attempt = 0; !ack.ok && attempt < 100; attempt++) {
        await sleep(20);
        ack = await sender.send("dropped", `after ${i}`);
      }
      assert.ok(ack.ok, `after ${i} acked`);
      acked.push({ seq: ack.seq, text: `after ${i}`, clientMsgId: "" });
    }
    await assertDelivered("dropped", [ann, bob], acked);
    assert.deepEqual(unhandled, [], "no unhandled promise rejection");
  });

  // redis-cli --cluster reshard gives the slot to the target before the source. A message that a
  // process publishes on the target in between (its slot map already says so) reaches no one
  // live: every subscription is still on the source. The source then tells its subscribers the
  // slot is gone and node-redis moves them on its own. Here the source is stopped for that moment
  // (on its own it hears of the move within milliseconds, which a test cannot aim at), and the
  // message is published on the target as a roomcast process would, by publish.lua.
  it("a message published on the new master before the old one gave up the slot reaches both members without another message", async () => {
    const { channel, slot, from, to, ann, bob } = await busyRoom("window");
    // Both processes already hold a subscriber connection to the target (a room lives there), so
    // following the slot needs no new connection, hence no reconnect and no catch-up on that account.
    let neighbour = "";
    for (let i = 0; !neighbour; i++) if ((await fx.nodes.nodeOf(`${PREFIX}{near-${i}}:history`)) === to) neighbour = `near-${i}`;
    await ann.joinOk(neighbour);
    await bob.joinOk(neighbour);
    await ann.sendOk("window", "before");
    await bob.until(() => bob.messagesIn("window").length === 1, "the first message");
    // New subscriber connections schedule a catch-up of every room (100 ms later): let it pass.
    await sleep(500);
    const publish = new RedisScript("publish", { HISTORY_LIMIT: 1000, TRIM_AT: 1100, EXPIRE_MS: 3_600_000, REFRESH_MS: 60_000, DEDUPE_MS: 60_000, SHARDED: 1 });
    const onTarget = { send: (_key: string, args: string[]) => fx.nodes.clients[to]!.sendCommand(args) } as unknown as RedisConnection;
    const keys = new RedisKeys(PREFIX);
    let seq = 0;
    await fx.nodes.moveSlot(slot, from, to, {
      whenTargetOwns: async () => {
        fx.nodes.pause(from);
        try {
          const draft = { room: "window", ts: Date.now(), from: { id: "carol", name: "carol" }, text: "in the window" };
          seq = Number(await publish.run(onTarget, [keys.meta("window"), keys.history("window")], [JSON.stringify(draft).slice(1), draft.ts]));
        } finally {
          fx.nodes.resume(from);
        }
      },
    });
    assert.equal(seq, 2);
    await assertSubscribedOn(channel, to);
    for (const member of [ann, bob]) {
      await member.until(() => member.messagesIn("window").length === 2, `${member.hello!.user.name} gets the message from the window`, 3000);
    }
    await assertDelivered("window", [ann, bob], [{ seq: 1, text: "before", clientMsgId: "" }, { seq: 2, text: "in the window", clientMsgId: "" }]);
    assert.deepEqual(unhandled, [], "no unhandled promise rejection");
  });

  // node-redis answers a resubscribe's MOVED by re-reading the topology and only then handing the
  // node's subscriptions on; if that read fails, its listener's rejection was unhandled (ending a
  // real process) and the subscriptions were dropped for good. Here CLUSTER SLOTS is refused on
  // every node (an ACL rule), standing in for a topology read that fails at that moment: every
  // node refusing new connections, or this process briefly cut off from them.
  it("a subscription answered MOVED on resubscribe follows the slot even when the topology cannot be read right then", async (t) => {
    const { channel, slot, from, to, ann, bob } = await busyRoom("unread");
    await ann.sendOk("unread", "before");
    await bob.until(() => bob.messagesIn("unread").length === 1, "the first message");
    const acked: Acked[] = [{ seq: 1, text: "before", clientMsgId: "" }];
    const connected = await fx.nodes.connectionCount(from);
    const setTopologyReadable = (readable: boolean) =>
      Promise.all(fx.nodes.clients.map((c) => c.sendCommand(["ACL", "SETUSER", "default", ...(readable ? ["+@all"] : ["-cluster|slots", "-cluster|shards", "-cluster|nodes"])])));
    try {
      assert.ok((await fx.nodes.keepSubscribersOut(from)) >= 2, "both processes' subscriber connections cut");
      await fx.nodes.moveSlot(slot, from, to);
      for (let i = 0; i < 2; i++) {
        const ack = await ann.sendOk("unread", `while away ${i}`);
        acked.push({ seq: ack.seq, text: `while away ${i}`, clientMsgId: "" });
      }
      await setTopologyReadable(false);
      // The subscriber connections come back, resubscribe, are answered MOVED and cannot find
      // where the slot went; they reconnect with nothing subscribed.
      await fx.nodes.letIn(from);
      await waitUntilAsync(async () => (await fx.nodes.connectionCount(from)) >= connected, "the subscriber connections back", SETTLE_MS);
      await sleep(500);
    } finally {
      await fx.nodes.letIn(from);
      await setTopologyReadable(true);
    }
    const readableAt = Date.now();
    await assertSubscribedOn(channel, to);
    t.diagnostic(`subscriptions on the new master ${Date.now() - readableAt} ms after the topology was readable again`);
    for (let i = 0; i < 2; i++) {
      const ack = await bob.sendOk("unread", `after ${i}`);
      acked.push({ seq: ack.seq, text: `after ${i}`, clientMsgId: "" });
    }
    await assertDelivered("unread", [ann, bob], acked);
    assert.deepEqual(unhandled, [], "no unhandled promise rejection");
  });
});
