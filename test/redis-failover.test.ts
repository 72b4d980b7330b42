import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ChatMessage } from "../src/protocol.js";
import { TestClient } from "./helpers/client.js";
import { clusterFixture } from "./helpers/cluster-fixture.js";

/** How long after its master's SIGKILL a room must work again, at most (promotion takes 2-3 s here). */
const RECOVERY_BOUND_MS = 20_000;
/**
 * How soon after the replica's promotion the room must work again: roomcast re-reads the topology
 * about once a second while a node is down (about 1.2 s at worst here). node-redis's default, a
 * refresh 5 s after a node's connection failed, takes 3 s or more after a 2-3 s promotion.
 */
const AFTER_PROMOTION_MS = 2000;

/**
 * Two roomcast processes on a real Redis Cluster of three masters with a replica each. The master
 * of a busy room is SIGKILLed; its replica takes over, and the room must work again across both
 * processes: sends acked ok, delivered to the other process's member, one gap-free order.
 */
describe("Redis Cluster failover to a replica", () => {
  // An unhandled rejection would end a real process: none may come from the failover.
  const fx = clusterFixture({ cluster: { replicas: 1, nodeTimeoutMs: 1000 }, nodeIds: ["f1", "f2"], server: { redisPrefix: "fo:", redisTimeout: 1000 } });
  const { servers, clients, unhandled } = fx;

  it("a room whose master was killed works again once its replica is promoted, losing nothing acked", async (t) => {
    // The room lives on the seed node (REDIS_URL), so finding the new topology cannot lean on it;
    // another room lives on a shard that stays up.
    let room = "";
    let calm = "";
    for (let i = 0; !room || !calm; i++) {
      const shard = await fx.nodes.nodeOf(`fo:{room${i}}:history`);
      if (shard === 0) room ||= `room${i}`;
      else calm ||= `room${i}`;
    }
    const key = `fo:{${room}}:history`;
    const ann = await TestClient.connect(servers[0]!.url, { name: "ann" });
    const bob = await TestClient.connect(servers[1]!.url, { name: "bob" });
    clients.push(ann, bob);
    for (const name of [room, calm]) {
      await ann.joinOk(name);
      await bob.joinOk(name);
    }

    const acked: Array<{ seq: number; text: string }> = [];
    for (let i = 0; i < 5; i++) acked.push({ seq: (await ann.sendOk(room, `before ${i}`)).seq, text: `before ${i}` });
    await bob.until(() => bob.messagesIn(room).length === 5, "the messages before the kill");

    // Replication is asynchronous: only what the replica has applied can survive the master's
    // death. Wait for it, so that every message acked before the kill must still be there.
    const master = await fx.nodes.nodeOf(key);
    const replica = await fx.nodes.replicaOf(master);
    await fx.nodes.waitForReplication(master, replica);

    const killedAt = Date.now();
    await fx.nodes.kill(master);
    const promoted = fx.nodes.waitForFailover(key, RECOVERY_BOUND_MS).then((owner) => ({ owner, ms: Date.now() - killedAt }));

    // Ann keeps sending; answers are `unavailable` until the room works again.
    let firstOkMs = -1;
    const refused = new Map<string, number>();
    for (let n = 0; firstOkMs < 0; n++) {
      assert.ok(Date.now() - killedAt < RECOVERY_BOUND_MS, `no send was acked ok within ${RECOVERY_BOUND_MS} ms of the kill (refused: ${JSON.stringify([...refused])})`);
      const text = `during ${n}`;
      const ack = await ann.send(room, text);
      if (ack.ok) {
        firstOkMs = Date.now() - killedAt;
        acked.push({ seq: ack.seq, text });
      } else {
        refused.set(ack.error.code, (refused.get(ack.error.code) ?? 0) + 1);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const { owner, ms: promotedMs } = await promoted;
    assert.equal(owner, replica, "the killed master's replica owns the room's slot");
    assert.ok(firstOkMs - promotedMs <= AFTER_PROMOTION_MS, `the room worked again ${firstOkMs - promotedMs} ms after the promotion (${promotedMs} ms after the kill), over ${AFTER_PROMOTION_MS} ms`);

    // The first message acked after the failover reaches the member on the other process.
    const first = acked.at(-1)!;
    await bob.until(() => bob.messagesIn(room).some((m) => m.seq === first.seq), "bob gets the first message after the failover", RECOVERY_BOUND_MS);
    const deliveredMs = Date.now() - killedAt;

    // Both processes publish and receive again, in this room and in one on a shard that stayed up
    // (which, under Redis's default cluster-require-full-coverage, was refused too between the
    // dead master being marked failed and its replica's promotion).
    await ann.sendOk(calm, "calm");
    await bob.until(() => bob.messagesIn(calm).length === 1, "bob gets the calm room's message");
    for (let i = 0; i < 3; i++) acked.push({ seq: (await ann.sendOk(room, `after ${i}`)).seq, text: `after ${i}` });
    const bobs = await bob.sendOk(room, "bob after");
    acked.push({ seq: bobs.seq, text: "bob after" });
    await ann.until(() => ann.messagesIn(room).some((m) => m.seq === bobs.seq), "ann gets bob's message");
    await bob.until(() => bob.messagesIn(room).some((m) => m.seq === bobs.seq), "bob gets his own message");

    t.diagnostic(`promoted after ${promotedMs} ms, first send acked ok after ${firstOkMs} ms, delivered across after ${deliveredMs} ms; refused meanwhile: ${JSON.stringify([...refused])}`);

    // Every message acked ok, before or after the kill, is in history under its seq, and the
    // seqs are one gap-free increasing run: the replica kept what was replicated before the kill.
    const page = await bob.history(room, { limit: 100 });
    assert.ok(page.ok);
    const seqs = page.messages.map((m) => m.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), "history is gap-free from seq 1");
    const stored = new Map(page.messages.map((m) => [m.seq, m.text]));
    for (const { seq, text } of acked) assert.equal(stored.get(seq), text, `acked message ${seq} is in history`);
    assert.deepEqual(acked.map((m) => m.seq), [...acked.map((m) => m.seq)].sort((a, b) => a - b), "acked seqs increase");

    // Each member got every message exactly once, in order (a gap closed from history).
    const view = (messages: ChatMessage[]) => messages.map((m) => [m.seq, m.text]);
    await bob.until(() => bob.messagesIn(room).length === page.messages.length, "bob has the whole history");
    await ann.until(() => ann.messagesIn(room).length === page.messages.length, "ann has the whole history");
    assert.deepEqual(view(bob.messagesIn(room)), view(page.messages));
    assert.deepEqual(view(ann.messagesIn(room)), view(page.messages));
    assert.deepEqual(unhandled, [], "no unhandled promise rejection");
  });

  // Replication is asynchronous: a master can ack a message and die before its replica has it.
  // The promoted replica's seq is then behind what members were delivered; without the publisher's
  // position in publish.lua the next messages reused those seqs and every process dropped them
  // as already delivered, though they were acked ok.
  it("delivers messages acked after a failover that lost the master's last writes, under new seqs", async () => {
    // A room on a shard whose master still has its replica.
    let room = "";
    let master = -1;
    let replica = -1;
    for (let i = 0; replica < 0; i++) {
      master = await fx.nodes.nodeOf(`fo:{gap${i}}:history`);
      replica = await fx.nodes.replicaOf(master).catch(() => -1);
      room = `gap${i}`;
    }
    const cat = await TestClient.connect(servers[0]!.url, { name: "cat" });
    const dan = await TestClient.connect(servers[1]!.url, { name: "dan" });
    clients.push(cat, dan);
    await cat.joinOk(room);
    await dan.joinOk(room);
    for (let i = 0; i < 3; i++) await cat.sendOk(room, `replicated ${i}`);
    await fx.nodes.waitForReplication(master, replica);
    // The replica loses its link and cannot get it back (the master now wants a password that
    // roomcast's open connections do not need): what follows is acked by the master alone.
    await fx.nodes.clients[master]!.sendCommand(["CONFIG", "SET", "requirepass", "keep-the-replica-out"]);
    await fx.nodes.clients[replica]!.sendCommand(["CLIENT", "KILL", "TYPE", "master"]);
    for (let i = 0; i < 2; i++) await cat.sendOk(room, `lost ${i}`);
    await dan.until(() => dan.messagesIn(room).length === 5, "the unreplicated messages, live");
    await fx.nodes.kill(master);
    await fx.nodes.waitForFailover(`fo:{${room}}:history`, RECOVERY_BOUND_MS);
    const after: number[] = [];
    while (after.length < 3) {
      const ack = await cat.send(room, `after ${after.length}`);
      if (ack.ok) after.push(ack.seq);
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(after[0]! > 5, `seqs go on after the delivered ones, got ${after.join(",")}`);
    await dan.until(() => after.every((seq) => dan.messagesIn(room).some((m) => m.seq === seq && m.text.startsWith("after"))), "every message acked after the failover", 3000);
    // Members saw one increasing run; history lost the two unreplicated messages, nothing else.
    for (const member of [cat, dan]) {
      const seqs = member.messagesIn(room).map((m) => m.seq);
      assert.deepEqual(seqs, [...new Set(seqs)].sort((x, y) => x - y));
    }
    const page = await dan.history(room);
    assert.ok(page.ok);
    assert.deepEqual(page.messages.map((m) => m.text), ["replicated 0", "replicated 1", "replicated 2", "after 0", "after 1", "after 2"]);
  });
});
