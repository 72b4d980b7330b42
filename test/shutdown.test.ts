import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createChatServer } from "../src/server.js";
import { TestClient, waitUntil } from "./helpers/client.js";
import { freePort, RedisProcess } from "./helpers/redis.js";
import { AdmissionGate, startServer } from "./helpers/server.js";

const CLI = fileURLToPath(new URL("../src/cli.js", import.meta.url));

/** Starts `roomcast` as its own process and resolves once it logged that it listens. */
async function startProcess(port: number): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [CLI], {
    env: { PATH: process.env.PATH ?? "", PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info", UNSUBSCRIBE_DELAY: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  await waitUntil(() => output.includes(`roomcast listening on http://127.0.0.1:${port}`) || child.exitCode !== null, "the listening log line", 10_000);
  assert.equal(child.exitCode, null, `roomcast did not start: ${output}`);
  return { child, output: () => output };
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  describe(`graceful shutdown on ${signal}`, () => {
    it("exits 0 and closes clients so that they reconnect, to whichever process serves next", async () => {
      const port = await freePort();
      const { child, output } = await startProcess(port);
      const url = `http://127.0.0.1:${port}`;
      const clients = [
        await TestClient.connect(url, { name: "ann" }, { reconnection: true }),
        await TestClient.connect(url, { name: "bob" }, { reconnection: true }),
      ];
      const reasons: string[][] = clients.map(() => []);
      clients.forEach((c, i) => c.socket.on("disconnect", (reason) => reasons[i]!.push(reason)));
      try {
        for (const c of clients) await c.joinOk("lobby");
        await clients[0]!.sendOk("lobby", "before the end");
        assert.equal((await fetch(`${url}/readyz`)).status, 200);

        const exited = once(child, "exit") as Promise<[number | null, string | null]>;
        child.kill(signal);
        const [code] = await exited;
        assert.equal(code, 0, `exit code; output:\n${output()}`);
        assert.match(output(), new RegExp(`"signal":"${signal}"`));
        assert.match(output(), /"msg":"closed"/);

        for (const [i, c] of clients.entries()) {
          await waitUntil(() => reasons[i]!.length > 0, "disconnect");
          assert.deepEqual(reasons[i], ["transport close"], "a transport close, not an io server disconnect");
          assert.equal(c.socket.active, true, "the client keeps trying to reconnect");
        }

        // The next server on the same address takes the clients back without their doing anything.
        const next = await createChatServer({ logLevel: "silent", webRoot: false });
        try {
          await next.listen(port, "127.0.0.1");
          for (const c of clients) await c.until(() => c.received("hello").length === 2, "reconnected", 10_000);
          assert.equal(clients[0]!.received("hello").at(-1) && (clients[0]!.received("hello").at(-1) as { node: string }).node, next.nodeId);
        } finally {
          for (const c of clients) c.close();
          await next.close();
        }
      } finally {
        for (const c of clients) c.close();
        if (child.exitCode === null) child.kill("SIGKILL");
      }
    });
  });
}

describe("graceful shutdown with a join in flight", () => {
  it("lets the join roll back before leaving Redis: no presence entry outlives the process", async () => {
    const redis = await RedisProcess.start();
    try {
      const srv = await startServer({ redisUrl: redis.url, redisPrefix: "bye:", redisTimeout: 5000, nodeId: "leaving" });
      const ann = await TestClient.connect(srv.url, { name: "ann" });
      redis.pause();
      // The join waits on the stalled Redis while the server starts to close.
      const join = ann.join("inflight").catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const closed = srv.close();
      await new Promise((resolve) => setTimeout(resolve, 200));
      redis.resume();
      await closed;
      await join;
      // The process's own index is named by its presence id (NODE_ID plus a part new at each start).
      const indexes = await redis.client.keys("bye:node:{leaving.*}:entries");
      for (const key of ["bye:{inflight}:users", "bye:{inflight}:conns", ...indexes]) {
        assert.deepEqual(await redis.client.hGetAll(key), {}, key);
      }
    } finally {
      await redis.stop();
    }
  });
});

describe("graceful shutdown with a connection still at the door", () => {
  for (const transports of [["polling"], ["websocket"]] as const) {
    it(`sends away a connection admitted while the server closes, with no session (${transports[0]})`, async () => {
      const redis = await RedisProcess.start();
      const gate = new AdmissionGate();
      try {
        const srv = await startServer({ redisUrl: redis.url, redisPrefix: "door:", redisTimeout: 5000, admit: gate.admit });
        const ann = await TestClient.connect(srv.url, { name: "ann" });
        await ann.joinOk("door");
        const release = gate.hold("late");
        const late = new TestClient(srv.url, { name: "late" }, { transports: [...transports] });
        const reasons: string[] = [];
        late.socket.on("disconnect", (reason) => reasons.push(reason));
        late.socket.on("connect_error", (err) => reasons.push(`connect_error ${err.message}`));
        await new Promise((resolve) => setTimeout(resolve, 200)); // late's handshake waits at the door
        redis.pause(); // ann's leave waits on Redis: the shutdown takes a while
        const closed = srv.close();
        release();
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.deepEqual(srv.server.connections().map((c) => c.user.name), ["ann"], "ann's session still leaving, and none opened for late");
        redis.resume();
        await closed;
        assert.equal(late.hello, undefined, "late was never greeted");
        assert.equal(late.socket.connected, false);
        late.close();
        ann.close();
      } finally {
        await redis.stop();
      }
    });
  }
});
