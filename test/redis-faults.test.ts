import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Ack, ChatMessage, Member, MembersEvent, SendResult } from "../src/protocol.js";
import { TestClient, waitUntil, waitUntilAsync } from "./helpers/client.js";
import { ServerProcess } from "./helpers/cluster.js";
import { metricValue } from "./helpers/metrics.js";
import { RedisProcess } from "./helpers/redis.js";

describe("Redis scale-out under faults", () => {
  let redis: RedisProcess;
  let servers: ServerProcess[] = [];
  let clients: TestClient[] = [];
  let prefixCount = 0;
  const connect = async (server: ServerProcess, name: string, reconnection = false) => {
    const client = await TestClient.connect(server.url, { name }, { reconnection });
    clients.push(client);
    return client;
  };
  /** Each test gets its own key prefix, so no test sees another's data. */
  const startServers = async (count: number, env: Record<string, string> = {}) => {
    const base = { REDIS_URL: redis.url, REDIS_PREFIX: `faults${++prefixCount}:`, MESSAGE_RATE: "1000", MESSAGE_BURST: "1000", ...env };
    servers = await Promise.all(Array.from({ length: count }, (_, i) => ServerProcess.start(base, `f${prefixCount}-${i + 1}`)));
    return servers;
  };

  /** Two processes, ann on the first and bob on the second, both in `room`, and ann has seen bob join. */
  const annAndBob = async (room: string, env: Record<string, string> = {}) => {
    const [a, b] = await startServers(2, env);
    const ann = await connect(a!, "ann");
    const bob = await connect(b!, "bob");
    await ann.joinOk(room);
    await bob.joinOk(room);
    await ann.until(() => ann.received("presence").length === 1, "bob's join");
    return { a: a!, b: b!, ann, bob };
  };

  before(async () => (redis = await RedisProcess.start()));
  afterEach(async () => {
    for (const c of clients) c.close();
    clients = [];
    await Promise.all(servers.map((s) => s.kill("SIGKILL")));
    servers = [];
  });
  after(async () => redis.stop());

  it("admits exactly two of ten users racing into a room of capacity 2 on three processes", async () => {
    const [a, b, c] = await startServers(3, { ROOM_CAPACITY: "2" });
    const racers = await Promise.all(Array.from({ length: 10 }, (_, i) => connect([a!, b!, c!][i % 3]!, `racer${i}`)));
    const acks = await Promise.all(racers.map((r) => r.join("duel")));
    const admitted = acks.filter((ack) => ack.ok);
    const refused = acks.filter((ack) => !ack.ok);
    assert.equal(admitted.length, 2);
    assert.equal(refused.length, 8);
    for (const ack of refused) assert.equal(!ack.ok && ack.error.code, "room_full");
    const members = await redis.client.hGetAll(`faults${prefixCount}:{duel}:users`);
    assert.equal(Object.keys(members).length, 2);
  });

  it("loses no acknowledged message when Redis restarts mid-conversation: contiguous seq, no duplicates", async () => {
    const { a, b, ann, bob } = await annAndBob("restart");

    const acked: number[] = [];
    const sendSome = async (sender: TestClient, count: number) => {
      for (let i = 0; i < count; i++) {
        const ack = await sender.send("restart", `${sender.hello!.user.name} ${i}`);
        if (ack.ok) acked.push(ack.seq);
        else assert.equal(ack.error.code, "unavailable", "while Redis is down, a send is refused, never dropped");
      }
    };
    await sendSome(ann, 10);
    await redis.kill();
    await sendSome(bob, 3); // refused: Redis is down
    const readyDuring = await fetch(`${a!.url}/readyz`);
    assert.equal(readyDuring.status, 503);
    await redis.launch();
    const ready = async (url: string) => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200;
    await waitUntilAsync(async () => (await ready(a!.url)) && (await ready(b!.url)), "ready again");
    await sendSome(bob, 10);
    await sendSome(ann, 10);

    const expected = acked.length;
    assert.ok(expected >= 30, `expected at least 30 acknowledged messages, got ${expected}`);
    for (const c of [ann, bob]) {
      await c.until(() => c.messagesIn("restart").length >= expected, `${c.hello!.user.name} gets every acked message`, 10_000);
      const seqs = c.messagesIn("restart").map((m) => m.seq);
      assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), "contiguous, in order, no duplicates");
      for (const seq of acked) assert.ok(seqs.includes(seq));
    }
  });

  it("closes the gap for local members from history when the subscriber missed messages", async () => {
    const { b, ann, bob } = await annAndBob("gap");
    // None of the 20 reaches b by pub/sub.
    await whileCutOff(redis, b!.nodeId, async () => {
      for (let i = 0; i < 20; i++) await ann.sendOk("gap", `m${i}`);
    });
    await bob.until(() => bob.messagesIn("gap").length === 20, "bob gets all 20", 10_000);
    assert.deepEqual(bob.messagesIn("gap").map((m) => m.seq), Array.from({ length: 20 }, (_, i) => i + 1));
    // History brought all 20; the operator sees it on b's /metrics.
    assert.equal(await metricValue(b!.url, "roomcast_stream_recovered_messages_total"), 20);
    assert.equal(await metricValue(b!.url, "roomcast_stream_lost_messages_total"), 0);
  });

  it("sends the whole member list to local members after the subscriber missed presence events", async () => {
    const [a, b, c] = await startServers(3);
    const ann = await connect(a!, "ann");
    const bob = await connect(b!, "bob");
    const carol = await connect(c!, "carol");
    for (const client of [ann, bob, carol]) await client.joinOk("roster");
    await bob.until(() => bob.received("presence").length === 1, "carol's join reaches bob");
    let dave: TestClient | undefined;
    // Carol leaves and dave joins while b is cut off: neither event reaches bob by pub/sub.
    await whileCutOff(redis, b!.nodeId, async () => {
      assert.equal((await carol.request("leave", { room: "roster" })).ok, true);
      dave = await connect(a!, "dave");
      await dave.joinOk("roster");
      await ann.until(() => ann.received("presence").length === 4, `carol's leave and dave's join reach ann: ${JSON.stringify(ann.received("presence"))}`);
    });
    const sorted = (members: Member[]) => [...members].sort((x, y) => x.name.localeCompare(y.name));
    await bob.until(() => bob.received("members").length === 1, "bob gets the member list after b resubscribes", 10_000);
    assert.equal(bob.received("presence").length, 1, "the missed events are not replayed one by one");
    const { room, members } = bob.received("members")[0] as MembersEvent;
    assert.equal(room, "roster");
    assert.deepEqual(sorted(members), sorted([ann.hello!.user, bob.hello!.user, dave!.hello!.user]));
    // Processes that missed nothing are sent nothing.
    assert.equal(ann.received("members").length, 0);
    assert.equal(dave!.received("members").length, 0);
  });

  it("lists a process's own users in the member list it sends after it was cut off long enough to be reaped", async () => {
    const { b, ann, bob } = await annAndBob("reaped", { PRESENCE_TIMEOUT: "2s" });
    await whileCutOff(redis, b!.nodeId, async () => {
      await ann.until(() => ann.received("presence").length === 2, "bob's join, then his leave: a took b for dead", 5000);
    });
    await bob.until(() => bob.received("members").length === 1, "bob gets the member list after b resubscribes", 10_000);
    const { members } = bob.received("members")[0] as MembersEvent;
    // Read before b had written bob back, the list would have told bob that he left.
    assert.deepEqual([...members].sort((x, y) => x.name.localeCompare(y.name)), [ann.hello!.user, bob.hello!.user]);
    await ann.until(() => ann.received("presence").length === 3, "bob back for ann");
    assert.deepEqual(ann.received("presence")[2], { room: "reaped", event: "join", member: bob.hello!.user });
  });

  it("announces a leave whose removal Redis ran only after the wait for it gave up", async () => {
    const { b, ann, bob } = await annAndBob("stall", { REDIS_TIMEOUT: "500ms" });
    redis.pause();
    try {
      bob.close(); // b sends the removal into the stalled Redis, and stops waiting after 500 ms
      await sleep(1200);
    } finally {
      redis.resume();
    }
    await ann.until(() => ann.received("presence").length === 2, "bob's leave, once Redis ran the removal", 5000);
    assert.deepEqual(ann.received("presence")[1], { room: "stall", event: "leave", member: bob.hello!.user });
    assert.deepEqual((await ann.joinOk("stall")).members, [ann.hello!.user]);
  });

  it("removes a killed process's users from presence within the timeout, with leave events", async () => {
    const { b, ann, bob } = await annAndBob("crash", { PRESENCE_TIMEOUT: "2s" });
    const killedAt = Date.now();
    await b!.kill("SIGKILL");
    await ann.until(() => ann.received("presence").length === 2, "bob's leave", 5000);
    const elapsed = Date.now() - killedAt;
    assert.deepEqual(ann.received("presence")[1], { room: "crash", event: "leave", member: bob.hello!.user });
    assert.ok(elapsed <= 2500, `left after ${elapsed} ms`);
    const rejoin = await ann.joinOk("crash");
    assert.deepEqual(rejoin.members, [ann.hello!.user]);
    // The survivor keeps serving.
    await ann.sendOk("crash", "still here");
  });

  it("removes a crashed process's users when it comes back at once under the same NODE_ID", async () => {
    const { b, ann, bob } = await annAndBob("restart-same-id", { PRESENCE_TIMEOUT: "2s" });
    await b!.kill("SIGKILL");
    // As systemd's Restart=on-failure does: the same NODE_ID, a moment later. Its heartbeat must
    // not keep its predecessor's entries alive.
    const again = await ServerProcess.start({ REDIS_URL: redis.url, REDIS_PREFIX: `faults${prefixCount}:`, PRESENCE_TIMEOUT: "2s" }, b!.nodeId);
    servers.push(again);
    await ann.until(() => ann.received("presence").length === 2, "bob's leave", 5000);
    assert.deepEqual(ann.received("presence")[1], { room: "restart-same-id", event: "leave", member: bob.hello!.user });
    const bob2 = await connect(again, "bob");
    assert.deepEqual((await bob2.joinOk("restart-same-id")).members.map((m) => m.name).sort(), ["ann", "bob"], "one bob: the new one");
  });

  // Every process's heartbeat stops while Redis does: after it comes back, the first process to
  // tick must not take the others for dead before they have had the chance to heartbeat again.
  // Both outages outlast every heartbeat's expiry (half the timeout). Stalled, the heartbeats queue
  // and land together when Redis resumes. Restarted (from its AOF) after more than two timeouts,
  // the processes reconnect and find the others' heartbeats long expired.
  const outages = [
    { timeout: "2s", what: "stalled", outage: async () => { redis.pause(); await sleep(2500); redis.resume(); } },
    { timeout: "2s", what: "restarted", outage: async () => { await redis.kill(); await sleep(4500); await redis.launch(); } },
  ];
  for (const { timeout, what, outage } of outages) it(`keeps everyone in presence across a Redis outage longer than the heartbeat, with no leave and rejoin (${what}, PRESENCE_TIMEOUT ${timeout})`, async () => {
    const [a, b, c] = await startServers(3, { PRESENCE_TIMEOUT: timeout });
    const ann = await connect(a!, "ann");
    const bob = await connect(b!, "bob");
    const cat = await connect(c!, "cat");
    for (const client of [ann, bob, cat]) await client.joinOk("outage");
    await ann.until(() => ann.received("presence").length === 2, "bob's and cat's joins");
    // cat's process dies just before Redis stalls: its users must still leave afterwards, which
    // also shows that reaping resumed.
    await c!.kill("SIGKILL");
    await outage();
    await ann.until(() => ann.received("presence").length === 3, "cat's leave", 10_000);
    await bob.until(() => bob.received("presence").length === 2, "cat's leave, on bob's process too");
    assert.deepEqual(ann.received("presence")[2], { room: "outage", event: "leave", member: cat.hello!.user });
    const events = (client: TestClient) => client.received("presence").map((p) => `${(p as { event: string }).event} ${(p as { member: { name: string } }).member.name}`);
    assert.deepEqual(events(ann).sort(), ["join bob", "join cat", "leave cat"], "bob never left or rejoined");
    assert.deepEqual(events(bob).sort(), ["join cat", "leave cat"], "ann never left or rejoined");
    assert.deepEqual((await ann.joinOk("outage")).members.map((m) => m.name).sort(), ["ann", "bob"]);
  });

  it("on SIGTERM, a process's users leave presence at once and its clients reconnect to another process", async () => {
    const { b, ann, bob } = await annAndBob("drain", { PRESENCE_TIMEOUT: "60s" });
    const disconnected = new Promise<string>((resolve) => bob.socket.once("disconnect", resolve));
    assert.equal(await b!.kill("SIGTERM"), 0);
    assert.equal(await disconnected, "transport close", "a transport close makes Socket.IO clients reconnect");
    // Long before the 60 s presence timeout: the process said goodbye itself.
    await ann.until(() => ann.received("presence").length === 2, "bob's leave", 3000);
    assert.deepEqual(ann.received("presence")[1], { room: "drain", event: "leave", member: bob.hello!.user });
  });

  it("leaves a removal that failed at shutdown to the survivors, who reap it", async () => {
    const { b, ann, bob } = await annAndBob("stuck", { PRESENCE_TIMEOUT: "2s" });
    // Make every removal from the room fail (a shard down would, on a cluster) while b shuts down.
    const conns = `faults${prefixCount}:{stuck}:conns`;
    const saved = await redis.client.hGetAll(conns);
    await redis.client.del(conns);
    await redis.client.set(conns, "not a hash");
    await b!.kill("SIGTERM");
    await redis.client.del(conns);
    await redis.client.hSet(conns, saved);
    // b could not remove bob and must not have taken itself off the list the reapers read.
    await ann.until(() => ann.received("presence").length === 2, "bob's leave, from a's reap", 5000);
    assert.deepEqual(ann.received("presence")[1], { room: "stuck", event: "leave", member: bob.hello!.user });
    assert.deepEqual((await ann.joinOk("stuck")).members, [ann.hello!.user]);
  });

  it("puts a live process's users back in presence after it was reaped as dead", async () => {
    const [a] = await startServers(1, { PRESENCE_TIMEOUT: "1s" });
    const ann = await connect(a!, "ann");
    await ann.joinOk("lazarus");
    const prefix = `faults${prefixCount}:`;
    // What a survivor does to a process whose heartbeat came too late.
    const [presenceId] = (await redis.client.zRange(`${prefix}nodes`, 0, -1)).filter((id) => id.startsWith(`${a!.nodeId}.`));
    assert.ok(presenceId, "the process heartbeats under its NODE_ID and a part new at this start");
    await redis.client.zRem(`${prefix}nodes`, presenceId);
    await redis.client.del([`${prefix}{lazarus}:users`, `${prefix}{lazarus}:conns`, `${prefix}{lazarus}:counts`]);
    await waitUntilAsync(async () => (await redis.client.hGetAll(`${prefix}{lazarus}:users`))[ann.id] === "ann", "ann back in presence", 5000);
  });

  it("drops a malformed payload on a room's channel and keeps serving", async () => {
    const [a] = await startServers(1);
    const ann = await connect(a!, "ann");
    await ann.joinOk("noise");
    await redis.client.publish(`faults${prefixCount}:{noise}:history`, "m not json");
    await redis.client.publish(`faults${prefixCount}:{noise}:history`, "p{");
    await ann.sendOk("noise", "still fine");
    await ann.until(() => ann.messagesIn("noise").length === 1, "the real message");
    assert.equal(ann.messagesIn("noise")[0]!.text, "still fine");
  });

  it("lets a client that lost its process recover everything on the other process with since", async () => {
    const [a, b] = await startServers(2);
    const ann = await connect(a!, "ann");
    const bob = await connect(b!, "bob");
    const joined = await ann.joinOk("move");
    await bob.joinOk("move");
    for (let i = 0; i < 5; i++) await bob.sendOk("move", `before ${i}`);
    await ann.until(() => ann.messagesIn("move").length === 5, "first five");
    const lastSeen = ann.messagesIn("move").at(-1)!.seq;
    ann.close();
    for (let i = 0; i < 7; i++) await bob.sendOk("move", `missed ${i}`);
    const back = await connect(b!, "ann again");
    const recovered = await back.joinOk("move", { since: lastSeen, epoch: joined.epoch });
    assert.equal(recovered.recovered, true);
    assert.deepEqual(recovered.messages.map((m: ChatMessage) => m.text), Array.from({ length: 7 }, (_, i) => `missed ${i}`));
    assert.equal(recovered.head, 12);
  });

  it("sends members to reconnect when Redis lost the room's data, and the rejoin says history was lost", async () => {
    const [a, b] = await startServers(2);
    const ann = await connect(a!, "ann", true);
    const bob = await connect(b!, "bob");
    const joined = await ann.joinOk("amnesia");
    await bob.joinOk("amnesia");
    for (let i = 0; i < 3; i++) await bob.sendOk("amnesia", `old ${i}`);
    await ann.until(() => ann.messagesIn("amnesia").length === 3, "old messages");
    await redis.client.flushAll();
    // bob is a member too: his process may send him to reconnect before his ack goes out.
    const sent = await bob.send("amnesia", "new life", { clientMsgId: "n-1" }).catch(() => undefined);
    if (sent) assert.equal(sent.ok && sent.seq, 1, "the room's sequence started over");
    // ann's process sees seq 1 of another epoch: ann is sent to reconnect instead of missing it.
    await ann.until(() => ann.received("hello").length === 2, "ann reconnected", 10_000);
    const rejoined = await ann.joinOk("amnesia", { since: 3, epoch: joined.epoch });
    assert.equal(rejoined.recovered, false);
    assert.notEqual(rejoined.epoch, joined.epoch);
    assert.deepEqual(rejoined.messages.map((m) => [m.seq, m.text]), [[1, "new life"]]);
    assert.ok((await metricValue(a!.url, "roomcast_room_restarts_total")) >= 1, "a's /metrics counts the restart");
  });

  it("refuses publishes at once while the oldest in flight has waited past a quarter of REDIS_TIMEOUT", async () => {
    const [a] = await startServers(1, { REDIS_TIMEOUT: "4s" });
    const ann = await connect(a!, "ann");
    await ann.joinOk("busy");
    redis.pause();
    let admitted: Array<Promise<Ack<SendResult>>> = [];
    let refused: Array<Ack<SendResult>>;
    try {
      admitted = Array.from({ length: 20 }, (_, i) => ann.send("busy", `m${i}`));
      // Redis is stalled: once the first has waited over 1 s, new messages are refused without waiting.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const started = Date.now();
      refused = await Promise.all(Array.from({ length: 5 }, (_, i) => ann.send("busy", `late${i}`)));
      assert.ok(Date.now() - started < 1000, "refused at once, not after the timeout");
    } finally {
      redis.resume();
    }
    for (const ack of refused) assert.equal(!ack.ok && ack.error.code, "unavailable");
    // The admitted ones waited for Redis and went through once it was back; the refused were never stored.
    const accepted = await Promise.all(admitted);
    assert.ok(accepted.every((ack) => ack.ok));
    const page = await ann.history("busy", { limit: 30 });
    assert.ok(page.ok);
    assert.deepEqual(page.messages.map((m) => m.text), Array.from({ length: 20 }, (_, i) => `m${i}`));
  });

  it("stays unready while a long script blocks Redis, though Redis answers every command at once with BUSY", async () => {
    const [a] = await startServers(1, { REDIS_TIMEOUT: "500ms", PRESENCE_TIMEOUT: "2s" });
    const readiness = async () => (await fetch(`${a!.url}/readyz`)).status;
    assert.equal(await readiness(), 200);
    await redis.client.sendCommand(["CONFIG", "SET", "busy-reply-threshold", "300"]);
    try {
      // 3 s of Lua: past 300 ms Redis answers everything else BUSY, which is no sign of health.
      const script = "local t = redis.call('TIME') while true do local n = redis.call('TIME') if (n[1] - t[1]) * 1000000 + n[2] - t[2] > 3000000 then return 1 end end";
      const startedAt = Date.now();
      const blocking = redis.client.sendCommand(["EVAL", script, "0"]);
      await waitUntilAsync(async () => (await readiness()) === 503, "unready once a wait ran out", 2500);
      const seen: number[] = [];
      while (Date.now() - startedAt < 2700) {
        seen.push(await readiness());
        await sleep(100);
      }
      assert.deepEqual([...new Set(seen)], [503], "unready for as long as the script runs");
      await blocking;
    } finally {
      await redis.client.sendCommand(["CONFIG", "SET", "busy-reply-threshold", "5000"]);
    }
    await waitUntilAsync(async () => (await readiness()) === 200, "ready again once commands succeed", 5000);
    // The health-check PING failed with BUSY on a connection that stayed up: no loss to log.
    assert.doesNotMatch(a!.logs, /redis connection lost/);
  });

  it("answers unavailable, not silence, while Redis is paused, and bounds the wait", async () => {
    const [a] = await startServers(1, { REDIS_TIMEOUT: "500ms" });
    const ann = await connect(a!, "ann");
    await ann.joinOk("paused");
    const readiness = async () => (await fetch(`${a!.url}/readyz`)).status;
    assert.equal(await readiness(), 200);
    redis.pause();
    try {
      const started = Date.now();
      const ack = await ann.send("paused", "into the void");
      assert.equal(!ack.ok && ack.error.code, "unavailable");
      assert.ok(Date.now() - started < 3000);
      // The connection is still up, but Redis answers nothing: not ready, so a load balancer
      // stops sending new users here.
      assert.equal(await readiness(), 503);
    } finally {
      redis.resume();
    }
    await waitUntilAsync(async () => (await ann.send("paused", "back").catch(() => undefined))?.ok === true, "sending works again");
    assert.equal(await readiness(), 200);
  });
});

/**
 * Kills every Redis connection of the process and keeps it out (no room for a new connection)
 * while `during` runs. The process must then reconnect, resubscribe and catch up by itself.
 */
async function whileCutOff(redis: RedisProcess, nodeId: string, during: () => Promise<void>): Promise<void> {
  const connected = ((await redis.client.sendCommand(["CLIENT", "LIST"])) as string).trim().split("\n");
  const ofNode = connected.filter((line) => line.includes(` name=roomcast-${nodeId} `)).length;
  await redis.client.sendCommand(["CONFIG", "SET", "maxclients", String(connected.length - ofNode)]);
  try {
    await killConnectionsOf(redis, nodeId);
    await during();
  } finally {
    await redis.client.sendCommand(["CONFIG", "SET", "maxclients", "10000"]);
  }
}

async function killConnectionsOf(redis: RedisProcess, nodeId: string): Promise<void> {
  const list = (await redis.client.sendCommand(["CLIENT", "LIST"])) as string;
  for (const line of list.split("\n")) {
    const id = /id=(\d+)/.exec(line)?.[1];
    if (id && line.includes(` name=roomcast-${nodeId} `)) await redis.client.sendCommand(["CLIENT", "KILL", "ID", id]);
  }
}
