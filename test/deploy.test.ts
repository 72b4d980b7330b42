import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { TestClient, waitUntil } from "./helpers/client.js";
import { freePort, killOnExit, RedisProcess } from "./helpers/redis.js";
import { startServer, type RunningServer } from "./helpers/server.js";

const DEPLOY = fileURLToPath(new URL("../../deploy/", import.meta.url));
const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((path) => existsSync(path));

/** nginx running deploy/nginx-roomcast.conf as it is, with only its addresses changed. */
async function startNginx(backends: number[]): Promise<{ url: string; stop(): void }> {
  assert.ok(NGINX, "nginx is not installed: apt-get install nginx-light (or run .ci/run)");
  const dir = mkdtempSync(join(tmpdir(), "roomcast-nginx-"));
  chmodSync(dir, 0o755); // nginx's workers run as an unprivileged user
  const port = await freePort();
  const recipe = readFileSync(join(DEPLOY, "nginx-roomcast.conf"), "utf8");
  const site = recipe
    .replace("server 127.0.0.1:3000;", `server 127.0.0.1:${backends[0]};`)
    .replace("server 127.0.0.1:3001;", `server 127.0.0.1:${backends[1]};`)
    .replace("listen 80;", `listen 127.0.0.1:${port};`);
  assert.notEqual(site, recipe);
  writeFileSync(join(dir, "roomcast.conf"), site);
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((kind) => `${kind}_temp_path ${dir}/${kind};`).join(" ");
  writeFileSync(
    join(dir, "nginx.conf"),
    `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
     events { worker_connections 1024; }
     http { access_log off; ${temp} include ${dir}/roomcast.conf; }`,
  );
  const child: ChildProcess = spawn(NGINX, ["-p", dir, "-e", `${dir}/error.log`, "-c", join(dir, "nginx.conf")], { stdio: "ignore" });
  killOnExit(child);
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(() => child.exitCode === null && existsSync(join(dir, "nginx.pid")), "nginx started");
  return {
    url,
    stop: () => {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe("deployment recipe: nginx in front of two processes (deploy/nginx-roomcast.conf)", () => {
  let redis: RedisProcess;
  let servers: RunningServer[] = [];
  let nginx: Awaited<ReturnType<typeof startNginx>>;
  const clients: TestClient[] = [];
  before(async () => {
    redis = await RedisProcess.start();
    const shared = { redisUrl: redis.url, redisPrefix: "deploy:" };
    servers = [await startServer({ ...shared, nodeId: "deploy-0" }), await startServer({ ...shared, nodeId: "deploy-1" })];
    nginx = await startNginx(servers.map((s) => Number(new URL(s.url).port)));
  });
  after(async () => {
    for (const client of clients) client.close();
    nginx?.stop();
    for (const server of servers) await server.close();
    await redis?.stop();
  });

  it("answers /healthz and /readyz through nginx", async () => {
    for (const path of ["/healthz", "/readyz"]) assert.equal((await fetch(`${nginx.url}${path}`)).status, 200, path);
  });

  it("carries WebSocket clients; they chat with members on the other process", async () => {
    const ann = await TestClient.connect(nginx.url, { name: "ann" });
    clients.push(ann);
    const other = servers.find((s) => s.server.nodeId !== ann.hello!.node)!;
    const bob = await TestClient.connect(other.url, { name: "bob" });
    clients.push(bob);
    await ann.joinOk("behind-nginx");
    await bob.joinOk("behind-nginx");
    await ann.sendOk("behind-nginx", "through nginx");
    await bob.sendOk("behind-nginx", "straight in");
    for (const client of [ann, bob]) {
      await client.until(() => client.messagesIn("behind-nginx").length === 2, "both messages");
      assert.deepEqual(client.messagesIn("behind-nginx").map((m) => m.text), ["through nginx", "straight in"]);
    }
  });

  it("keeps a long-polling client on one process (ip_hash) until it upgrades, and it chats", async () => {
    const poller = await TestClient.connectUpgraded(nginx.url, { name: "poller" });
    clients.push(poller);
    await poller.joinOk("behind-nginx");
  });
});

describe("deployment recipe: the systemd unit (deploy/roomcast@.service)", () => {
  it("passes systemd-analyze verify", async () => {
    const dir = mkdtempSync(join(tmpdir(), "roomcast-unit-"));
    try {
      copyFileSync(join(DEPLOY, "roomcast@.service"), join(dir, "roomcast@.service"));
      symlinkSync(join(dir, "roomcast@.service"), join(dir, "roomcast@3000.service"));
      const { stderr } = await promisify(execFile)("systemd-analyze", ["verify", join(dir, "roomcast@3000.service")]);
      assert.equal(stderr.trim(), "", "no warnings");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
