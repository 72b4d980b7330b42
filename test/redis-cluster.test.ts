import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { TestClient, waitUntilAsync } from "./helpers/client.js";
import { ServerProcess } from "./helpers/cluster.js";
import { RedisProcess } from "./helpers/redis.js";

describe("several processes over Redis", () => {
  let redis: RedisProcess;
  let servers: ServerProcess[];
  const clients: TestClient[] = [];
  const connect = async (server: ServerProcess, name: string) => {
    const client = await TestClient.connect(server.url, { name });
    clients.push(client);
    return client;
  };

  before(async () => {
    redis = await RedisProcess.start();
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: "cluster-test:", MESSAGE_RATE: "1000", MESSAGE_BURST: "1000" };
    servers = await Promise.all(["n1", "n2", "n3"].map((id) => ServerProcess.start(env, id)));
  });
  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(servers.map((s) => s.kill("SIGTERM")));
    await redis.stop();
  });

  it("keeps rooms apart across processes (the three-user scenario)", async () => {
    const u1 = await connect(servers[0]!, "u1");
    const u2 = await connect(servers[0]!, "u2");
    const u3 = await connect(servers[1]!, "u3");
    assert.equal(u1.hello!.node, "n1");
    assert.equal(u3.hello!.node, "n2");
    await u1.joinOk("x-A");
    await u2.joinOk("x-B");
    const joined = await u3.joinOk("x-B");
    assert.deepEqual(joined.members.map((m) => m.name).sort(), ["u2", "u3"]);
    await u2.until(() => u2.received("presence").length === 1, "u2 sees u3 join from the other process");

    await u2.sendOk("x-B", "from u2 on n1");
    await u3.sendOk("x-B", "from u3 on n2");
    await u1.sendOk("x-A", "u1 alone");
    await u2.until(() => u2.messages.length === 2, "u2 gets both");
    await u3.until(() => u3.messages.length === 2, "u3 gets both");
    await u1.until(() => u1.messages.length === 1, "u1 gets its own");
    assert.deepEqual(u2.messages, u3.messages);
    assert.deepEqual(u2.messages.map((m) => m.seq), [1, 2]);
    assert.deepEqual(u1.messages.map((m) => m.text), ["u1 alone"]);
    await u1.sendOk("x-A", "barrier");
    await u1.until(() => u1.messages.length === 2, "barrier");
    assert.ok(u1.messages.every((m) => m.room === "x-A"));
  });

  it("gives every member on three processes the same gap-free order with concurrent senders", async () => {
    const members = await Promise.all(servers.flatMap((s, i) => [connect(s, `s${i}a`), connect(s, `s${i}b`)]));
    for (const m of members) await m.joinOk("order");
    const perSender = 30;
    await Promise.all(
      members.map(async (m, i) => {
        for (let k = 0; k < perSender; k++) await m.sendOk("order", `${i}:${k}`);
      }),
    );
    const total = perSender * members.length;
    for (const m of members) await m.until(() => m.messagesIn("order").length === total, "all messages", 15_000);
    const reference = members[0]!.messagesIn("order");
    assert.deepEqual(reference.map((m) => m.seq), Array.from({ length: total }, (_, i) => i + 1));
    for (const m of members) assert.deepEqual(m.messagesIn("order"), reference);
  });

  it("subscribes each process to exactly the rooms it serves, after heavy churn", async () => {
    const prefix = "cluster-test:{churn-";
    const pool = await Promise.all(servers.flatMap((s, i) => [0, 1, 2].map((k) => connect(s, `churn${i}${k}`))));
    const rooms = Array.from({ length: 8 }, (_, i) => `churn-${i}`);
    // Random joins and leaves with messages flowing; a deterministic generator keeps it repeatable.
    const membership = new Map<TestClient, Set<string>>();
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 48271) % 2147483647), seed % n);
    await Promise.all(
      pool.map(async (client) => {
        const mine = new Set<string>();
        membership.set(client, mine);
        for (let step = 0; step < 40; step++) {
          const room = rooms[random(rooms.length)]!;
          if (mine.has(room) && random(2) === 0) {
            const ack = await client.request("leave", { room });
            assert.ok(ack.ok);
            mine.delete(room);
          } else if (mine.has(room)) {
            await client.sendOk(room, `step ${step}`);
          } else {
            await client.joinOk(room);
            mine.add(room);
          }
        }
      }),
    );
    // Expected: a process is subscribed to a room iff one of its clients is in it.
    const expected = new Map<string, number>();
    for (const room of rooms) {
      const count = servers.filter((s) => pool.some((c) => c.hello!.node === s.nodeId && membership.get(c)!.has(room))).length;
      if (count > 0) expected.set(`cluster-test:{${room}}:history`, count);
    }
    const actual = await redis.channels(`${prefix}*`);
    assert.deepEqual(sorted(actual), sorted(expected));
    // Everyone leaves: no subscription may be left behind.
    for (const client of pool) client.close();
    await waitUntilAsync(async () => (await redis.channels(`${prefix}*`)).size === 0, "all churn channels unsubscribed");
  });
});

function sorted(map: Map<string, number>): Array<[string, number]> {
  return [...map].sort(([a], [b]) => a.localeCompare(b));
}
