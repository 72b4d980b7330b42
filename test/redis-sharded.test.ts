import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { TestClient, waitUntilAsync } from "./helpers/client.js";
import { clusterFixture } from "./helpers/cluster-fixture.js";
import { UNLIMITED_RATE } from "./helpers/fixture.js";
import { startServer } from "./helpers/server.js";

/**
 * Two roomcast processes on a real three-master Redis Cluster (REDIS_MODE=cluster): rooms spread
 * over the shards, each room's channel a sharded channel on its own shard.
 */
describe("Redis Cluster with sharded pub/sub", () => {
  const fx = clusterFixture({ nodeIds: ["s1", "s2"], server: { redisPrefix: "sh:", presenceTimeout: 2000 } });
  const { servers, clients } = fx;
  const connect = async (server: number, name: string) => {
    const client = await TestClient.connect(servers[server]!.url, { name });
    clients.push(client);
    return client;
  };


  it("delivers every room's messages across processes, in order, with rooms on every shard", async () => {
    // Rooms whose hash tags land on each of the three masters.
    const rooms: string[] = [];
    const shardsUsed = new Set<number>();
    for (let i = 0; shardsUsed.size < 3 || rooms.length < 6; i++) {
      const room = `room${i}`;
      const shard = await fx.nodes.nodeOf(`sh:{${room}}:history`);
      if (!shardsUsed.has(shard) || rooms.length < 6) {
        shardsUsed.add(shard);
        rooms.push(room);
      }
    }
    const ann = await connect(0, "ann");
    const bob = await connect(1, "bob");
    for (const room of rooms) {
      await ann.joinOk(room);
      await bob.joinOk(room);
    }
    for (let n = 0; n < 5; n++) for (const room of rooms) await ann.sendOk(room, `${room}-${n}`);
    for (const room of rooms) {
      await bob.until(() => bob.messagesIn(room).length === 5, `bob gets ${room}`);
      assert.deepEqual(bob.messagesIn(room).map((m) => [m.seq, m.text]), [1, 2, 3, 4, 5].map((s) => [s, `${room}-${s - 1}`]));
    }
    // Sharded channels, each on its room's shard; no classic channel and no pattern anywhere.
    for (const room of rooms) {
      const shard = await fx.nodes.nodeOf(`sh:{${room}}:history`);
      const channels = (await fx.nodes.clients[shard]!.sendCommand(["PUBSUB", "SHARDCHANNELS", `sh:{${room}}:*`])) as string[];
      assert.deepEqual(channels, [`sh:{${room}}:history`]);
    }
    for (const client of fx.nodes.clients) {
      assert.deepEqual(await client.sendCommand(["PUBSUB", "CHANNELS"]), []);
      assert.equal(Number(await client.sendCommand(["PUBSUB", "NUMPAT"])), 0);
    }
    const page = await bob.history(rooms[0]!, { limit: 10 });
    assert.ok(page.ok);
    assert.deepEqual(page.messages.map((m) => m.seq), [1, 2, 3, 4, 5]);
  });

  it("keeps presence and typing across processes, and a member's leave", async () => {
    const cat = await connect(0, "cat");
    const dan = await connect(1, "dan");
    await cat.joinOk("presence-room");
    const joined = await dan.joinOk("presence-room");
    assert.deepEqual(joined.members.map((m) => m.name).sort(), ["cat", "dan"]);
    await cat.until(() => cat.received("presence").some((p) => (p as { member: { name: string } }).member.name === "dan"), "dan's join");
    dan.socket.emit("typing", { room: "presence-room" });
    await cat.until(() => cat.received("typing").length === 1, "dan typing");
    dan.close();
    await cat.until(() => cat.received("presence").filter((p) => (p as { event: string }).event === "leave").length === 1, "dan's leave");
  });

  it("catches up from history what a shard published while its subscriber connections were down", async () => {
    const ivy = await connect(0, "ivy");
    const jon = await connect(1, "jon");
    await ivy.joinOk("flaky");
    await jon.joinOk("flaky");
    const index = await fx.nodes.nodeOf("sh:{flaky}:history");
    const shard = fx.nodes.clients[index]!;
    await ivy.sendOk("flaky", "before");
    await jon.until(() => jon.messagesIn("flaky").length === 1, "the first message");
    // No new connection is let in, then both processes' sharded subscriber connections are cut:
    // they cannot come back, and what is published meanwhile reaches no one live.
    try {
      const killed = await fx.nodes.keepSubscribersOut(index);
      assert.ok(killed >= 2, `both processes' subscriber connections (${killed})`);
      for (let i = 0; i < 5; i++) await ivy.sendOk("flaky", `during ${i}`);
      const [, subscribers] = (await shard.sendCommand(["PUBSUB", "SHARDNUMSUB", "sh:{flaky}:history"])) as [string, number];
      assert.equal(Number(subscribers), 0, "nobody was subscribed while these were published");
      assert.equal(jon.messagesIn("flaky").length, 1);
    } finally {
      await fx.nodes.letIn(index);
    }
    // Nothing is sent from here on: only the catch-up after the resubscribe can deliver them.
    await jon.until(() => jon.messagesIn("flaky").length === 6, "the missed messages, from history", 10_000);
    assert.deepEqual(jon.messagesIn("flaky").map((m) => m.seq), [1, 2, 3, 4, 5, 6]);
    await ivy.sendOk("flaky", "after");
    await jon.until(() => jon.messagesIn("flaky").length === 7, "live again");
  });

  it("does not make every room catch up when a process opens its first connection to another shard", async () => {
    // Rooms "quiet-*" and "next-*" on two different shards.
    const quiet = "quiet-0";
    let next = "";
    const quietShard = await fx.nodes.nodeOf(`sh:{${quiet}}:history`);
    for (let i = 0; !next; i++) if ((await fx.nodes.nodeOf(`sh:{next-${i}}:history`)) !== quietShard) next = `next-${i}`;
    const fresh = await startServer({ ...UNLIMITED_RATE, redisUrl: fx.nodes.url, redisMode: "cluster", redisPrefix: "sh:", nodeId: "s-fresh" });
    servers.push(fresh);
    const kim = await TestClient.connect(fresh.url, { name: "kim" });
    clients.push(kim);
    await kim.joinOk(quiet);
    // history.lua, which a catch-up runs, sets the room's TTL back to HISTORY_TTL and more: mark
    // the TTL lower, and see whether it comes back up. (Counting scripts on the shard would count
    // the other processes' too.)
    const meta = `sh:{${quiet}}:meta`;
    const shard = fx.nodes.clients[quietShard]!;
    await shard.sendCommand(["PEXPIRE", meta, "1000000"]);
    // This process's first subscriber connection to next's shard opens now. A catch-up of every
    // room would read quiet's history 100 ms after it is ready: nothing marks its absence, so the
    // test waits five times that.
    await kim.joinOk(next);
    await sleep(500);
    const ttl = Number(await shard.sendCommand(["PTTL", meta]));
    assert.ok(ttl > 0 && ttl <= 1_000_000, `quiet's history was not read again (TTL ${ttl} ms)`);
    // A message still goes through, and the room's stream was not restarted.
    const sent = await kim.sendOk(quiet, "still here");
    await kim.until(() => kim.messagesIn(quiet).some((m) => m.seq === sent.seq), "kim's own message");
  });

  it("holds a room's capacity across processes", async () => {
    const capped = [];
    for (const nodeId of ["s3", "s4"]) {
      capped.push(await startServer({ ...UNLIMITED_RATE, redisUrl: fx.nodes.url, redisMode: "cluster", redisPrefix: "sh:", nodeId, roomCapacity: 2 }));
    }
    servers.push(...capped);
    const eve = await TestClient.connect(capped[0]!.url, { name: "eve" });
    const fay = await TestClient.connect(capped[1]!.url, { name: "fay" });
    const gus = await TestClient.connect(capped[1]!.url, { name: "gus" });
    clients.push(eve, fay, gus);
    await eve.joinOk("pair");
    await fay.joinOk("pair");
    const third = await gus.join("pair");
    assert.equal(!third.ok && third.error.code, "room_full");
  });

  // Every process shares the cluster: a load balancer that took them all out of rotation for one
  // shard's outage would stop the rooms on the other shards too.
  it("answers degraded (200) on /readyz while a master is down and serves the other shards' rooms; 503 once none is up", async () => {
    const readyz = async () => {
      const res = await fetch(`${servers[0]!.url}/readyz`);
      return { code: res.status, status: ((await res.json()) as { status: string }).status };
    };
    assert.deepEqual(await readyz(), { code: 200, status: "ready" });
    let room = "";
    for (let i = 0; !room; i++) if ((await fx.nodes.nodeOf(`sh:{up-${i}}:history`)) !== 2) room = `up-${i}`;
    const kim = await connect(0, "kim");
    const lee = await connect(1, "lee");
    await kim.joinOk(room);
    await lee.joinOk(room);
    await fx.nodes.kill(2);
    await waitUntilAsync(async () => (await readyz()).status === "degraded", "degraded", 10_000);
    assert.deepEqual(await readyz(), { code: 200, status: "degraded" });
    const sent = await kim.sendOk(room, "still served");
    await lee.until(() => lee.messagesIn(room).some((m) => m.seq === sent.seq), "the message on a shard that is up");
    await fx.nodes.kill(0);
    await fx.nodes.kill(1);
    await waitUntilAsync(async () => (await readyz()).code === 503, "unavailable", 10_000);
    assert.deepEqual(await readyz(), { code: 503, status: "unavailable" });
    assert.deepEqual(fx.unhandled, [], "no unhandled promise rejection with every master gone");
  });
});
