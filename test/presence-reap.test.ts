import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { createBus, type Bus } from "../src/bus/create-bus.js";
import { defaultOptions } from "../src/config.js";
import { waitUntil, waitUntilAsync } from "./helpers/client.js";
import { RedisProcess } from "./helpers/redis.js";

const PREFIX = "reap:";
const TIMEOUT = 2000; // PRESENCE_TIMEOUT: heartbeats every 400 ms, an entry expires 1 s after one
const ROOMS = 50;
const ENTRIES = 10_000;

/**
 * A process that died holding many users: the survivor that reaps it must keep heartbeating
 * meanwhile, or the others take the survivor for dead too and its users leave and rejoin.
 */
describe("Redis presence: reaping a dead process with many users", () => {
  let redis: RedisProcess;
  let bus: Bus;
  /** The process's presence id: its NODE_ID ("alive") and a part new at every start. */
  let alive: string;
  before(async () => {
    redis = await RedisProcess.start();
    bus = await createBus(defaultOptions({ redisUrl: redis.url, redisPrefix: PREFIX, presenceTimeout: TIMEOUT }), "alive", pino({ level: "silent" }));
    const ids = (await redis.client.sendCommand(["ZRANGE", `${PREFIX}nodes`, "0", "-1"])) as string[];
    assert.equal(ids.length, 1);
    assert.match(ids[0]!, /^alive\.[0-9a-f]{8}$/);
    alive = ids[0]!;
  });
  after(async () => {
    await bus.presence.close();
    await bus.close();
    await redis.stop();
  });

  /** What presence-add.lua and the process index hold for `ENTRIES` connections of process "ghost". */
  async function plantGhost(): Promise<void> {
    const send = (args: string[]) => redis.client.sendCommand(args);
    for (let start = 0; start < ENTRIES; start += 500) {
      const writes: Array<Promise<unknown>> = [];
      for (let i = start; i < start + 500; i++) {
        const room = `r${i % ROOMS}`;
        const user = `u${i}`;
        writes.push(
          send(["HSET", `${PREFIX}{${room}}:users`, user, `user ${i}`]),
          send(["HSET", `${PREFIX}{${room}}:conns`, `ghost/c${i}`, user]),
          send(["HINCRBY", `${PREFIX}{${room}}:counts`, user, "1"]),
          send(["HSET", `${PREFIX}node:{ghost}:entries`, `${room}\nc${i}`, user]),
        );
      }
      await Promise.all(writes);
    }
    // Its heartbeat ran out just now.
    await send(["ZADD", `${PREFIX}nodes`, String(Date.now() - 1), "ghost"]);
  }

  it("removes every entry, reports each leave once, and never lets its own heartbeat lapse", async () => {
    const left = new Map<string, number>();
    bus.presence.onChange((room, kind, member) => {
      if (kind === "leave") left.set(`${room}/${member.id}`, (left.get(`${room}/${member.id}`) ?? 0) + 1);
    });
    await plantGhost();
    // Sample this process's heartbeat expiry while the reap runs: it must stay in the future.
    const lapses: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const score = Number(await redis.client.sendCommand(["ZSCORE", `${PREFIX}nodes`, alive]));
        const now = Date.now();
        if (!(score > now)) lapses.push(now - score);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      await waitUntil(() => left.size === ENTRIES, "every ghost user's leave", 20_000);
    } finally {
      sampling = false;
      await sampler;
    }
    assert.deepEqual(lapses, [], "this process's heartbeat expired while it reaped");
    assert.ok([...left.values()].every((count) => count === 1), "each leave reported once");
    await waitUntilAsync(async () => Number(await redis.client.sendCommand(["EXISTS", `${PREFIX}node:{ghost}:entries`])) === 0, "the ghost's index removed");
    assert.equal(await redis.client.sendCommand(["ZSCORE", `${PREFIX}nodes`, "ghost"]), null);
    for (let r = 0; r < ROOMS; r++) {
      for (const key of ["users", "conns", "counts"]) {
        assert.equal(Number(await redis.client.sendCommand(["HLEN", `${PREFIX}{r${r}}:${key}`])), 0, `r${r} ${key}`);
      }
    }
  });

  it("puts its users back when a survivor claimed it and removed some of its entries while it was only late", async () => {
    const entry = (connId: string, id: string) => ({ connId, user: { id, name: id } });
    await bus.presence.add("late", entry("c1", "ada"), 0);
    await bus.presence.add("late", entry("c2", "ben"), 0);
    // What a survivor's claim and a reap that failed after one removal leave behind: the claim's
    // score in the set (so the next heartbeat updates a member that is there) and ada gone.
    await redis.client.sendCommand(["ZADD", `${PREFIX}nodes`, String(Date.now() + 60_000), alive]);
    for (const [key, field] of [["users", "ada"], ["counts", "ada"], ["conns", `${alive}/c1`]] as const) {
      await redis.client.sendCommand(["HDEL", `${PREFIX}{late}:${key}`, field]);
    }
    await waitUntilAsync(async () => (await bus.presence.members("late")).some((m) => m.id === "ada"), "ada back in the room's presence");
    assert.deepEqual((await bus.presence.members("late")).map((m) => m.id).sort(), ["ada", "ben"]);
    assert.equal(await redis.client.sendCommand(["HGET", `${PREFIX}{late}:conns`, `${alive}/c1`]), "ada");
  });
});
