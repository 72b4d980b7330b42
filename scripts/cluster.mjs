// A local roomcast cluster for trying it by hand: redis-server on a free port, and two roomcast
// processes on 3000 and 3001 (BASE_PORT and PROCESSES change that). SHARDS=3 starts a Redis
// Cluster of three masters instead, and the processes run with REDIS_MODE=cluster. Ctrl-C stops
// everything.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const basePort = Number(process.env.BASE_PORT ?? 3000);
const count = Number(process.env.PROCESSES ?? 2);
const shards = Number(process.env.SHARDS ?? 0);

if (spawnSync("redis-server", ["--version"]).status !== 0) {
  console.error("cluster: redis-server is not installed (apt-get install redis-server)");
  process.exit(1);
}
const freePort = () =>
  new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
// A cluster node also listens on its port + 10000.
const ports = [];
while (ports.length < Math.max(1, shards)) {
  const port = await freePort();
  if (port < 55_000) ports.push(port);
}
const dir = mkdtempSync(join(tmpdir(), "roomcast-cluster-"));
const children = [];
const run = (name, command, args, env = {}) => {
  // Detached: Ctrl-C reaches only this script, which stops the servers before Redis.
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding("utf8");
    stream.on("data", (text) => text.split("\n").filter(Boolean).forEach((line) => console.log(`[${name}] ${line}`)));
  }
  child.on("exit", (code, signal) => {
    if (!stopping) console.log(`[${name}] exited (${signal ?? code})`);
  });
  children.push(child);
  return child;
};

let stopping = false;
const exited = (child) => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once("exit", r)));
const stop = async () => {
  if (stopping) return;
  stopping = true;
  try {
    console.log("cluster: stopping");
  } catch {
    // stdout is gone (its reader closed): stop quietly
  }
  const redises = children.slice(0, ports.length);
  const servers = children.slice(ports.length);
  for (const child of servers) child.kill("SIGTERM");
  await Promise.all(servers.map(exited));
  for (const redis of redises) redis.kill("SIGTERM");
  await Promise.all(redises.map(exited));
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
// Closing the terminal (SIGHUP) or the reader of a pipe must stop the children too: they are
// detached, so nothing else would.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, stop);
for (const stream of [process.stdout, process.stderr]) stream.on("error", stop);

// Redis logs to a file in its folder: its start-up banner is noise next to the servers' logs.
const clusterArgs = (port) => (shards > 0 ? ["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`] : []);
for (const port of ports) {
  run(`redis:${port}`, "redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfilename", `appendonly-${port}.aof`, "--loglevel", "warning", "--logfile", join(dir, `redis-${port}.log`), ...clusterArgs(port)]);
}
await Promise.all(
  ports.map(
    (port) =>
      new Promise((resolve) => {
        const poll = setInterval(() => {
          if (spawnSync("redis-cli", ["-p", String(port), "ping"]).stdout?.toString().trim() === "PONG") {
            clearInterval(poll);
            resolve();
          }
        }, 100);
      }),
  ),
);
if (shards > 0) {
  const created = spawnSync("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"]);
  if (created.status !== 0) {
    console.error(`cluster: redis-cli --cluster create failed: ${created.stderr}`);
    await stop();
  }
  while (!ports.every((p) => spawnSync("redis-cli", ["-p", String(p), "cluster", "info"]).stdout?.toString().includes("cluster_state:ok"))) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
const redisUrl = `redis://127.0.0.1:${ports[0]}`;
const mode = shards > 0 ? "cluster" : "single";
console.log(shards > 0 ? `cluster: Redis Cluster of ${shards} masters on ${ports.join(", ")}` : `cluster: redis on ${redisUrl}`);
for (let i = 0; i < count; i++) {
  run(`n${i + 1}`, process.execPath, ["dist/src/cli.js"], { REDIS_URL: redisUrl, REDIS_MODE: mode, PORT: String(basePort + i), NODE_ID: `n${i + 1}` });
}
console.log(`cluster: open ${Array.from({ length: count }, (_, i) => `http://localhost:${basePort + i}`).join(" and ")}; Ctrl-C stops all`);
