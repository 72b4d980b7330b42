import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, sep } from "node:path";
import { after, describe, it } from "node:test";
import { createChatServer } from "../src/server.js";
import { TestClient } from "./helpers/client.js";
import { serverFixture } from "./helpers/fixture.js";

describe("http endpoints", () => {
  const fx = serverFixture();

  it("answers /healthz with 200 and JSON", async () => {
    const res = await fetch(`${fx.url}/healthz`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.status, "ok");
    assert.equal(body.node, fx.srv.server.nodeId);
    assert.equal(typeof body.connections, "number");
    assert.equal(typeof body.uptimeSeconds, "number");
  });

  it("answers /readyz with 200 while serving", async () => {
    const res = await fetch(`${fx.url}/readyz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "ready", node: fx.srv.server.nodeId });
  });

  it("exposes roomcast_ metrics in the Prometheus text format", async () => {
    const ann = await fx.connect("ann");
    await ann.joinOk("metrics");
    await ann.sendOk("metrics", "counted");
    assert.equal((await ann.join("bad room")).ok, false);
    const res = await fetch(`${fx.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    const text = await res.text();
    assert.match(text, /^roomcast_connections 1$/m);
    assert.match(text, /^roomcast_local_rooms 1$/m);
    assert.match(text, /^roomcast_messages_sent_total 1$/m);
    assert.match(text, /^roomcast_rejected_total\{code="bad_request"\} 1$/m);
    assert.match(text, /^# TYPE roomcast_bus_errors_total counter$/m);
    assert.match(text, /^roomcast_message_ack_seconds_count 1$/m, "the one ok message, not the refused join");
    assert.match(text, /^roomcast_message_ack_seconds_bucket\{le="2.5"\} 1$/m);
    assert.match(text, /^roomcast_stream_lost_messages_total 0$/m);
    assert.match(text, /^process_cpu_seconds_total /m);
  });

  it("answers 404 to unknown paths and to other methods", async () => {
    const missing = await fetch(`${fx.url}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const posted = await fetch(`${fx.url}/healthz`, { method: "POST" });
    assert.equal(posted.status, 404);
    await posted.body?.cancel();
  });
});

describe("the web client's files", () => {
  const root = mkdtempSync(join(tmpdir(), "roomcast-web-"));
  writeFileSync(join(root, "index.html"), "<!doctype html><title>roomcast</title>");
  writeFileSync(join(root, "app.js"), "console.log('hi')");
  const secret = `${root}-secret.txt`; // next to the folder, so "..%2f" would reach it
  writeFileSync(secret, "secret");
  after(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(secret, { force: true });
  });
  // A trailing separator must not matter.
  const fx = serverFixture({ webRoot: root + sep });

  it("serves index.html at / and other files with their type", async () => {
    const index = await fetch(`${fx.url}/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(await index.text(), /<title>roomcast<\/title>/);
    const app = await fetch(`${fx.url}/app.js?v=1`);
    assert.equal(app.status, 200);
    assert.match(app.headers.get("content-type") ?? "", /^text\/javascript/);
    await app.body?.cancel();
  });

  it("serves nothing outside its folder", async () => {
    for (const path of [`/..%2f${basename(secret)}`, `/../${basename(secret)}`, "/%2e%2e/%2e%2e/etc/passwd", "/%E0%A4%A", "/missing.js"]) {
      const res = await fetch(`${fx.url}${path}`);
      assert.equal(res.status, 404, path);
      await res.body?.cancel();
    }
  });
});

describe("library use", () => {
  it("attaches to an existing http server, with its handler mounted as middleware", async () => {
    let appHits = 0;
    const chatRef: { handler?: (req: never, res: never, next: () => void) => void } = {};
    // The app's own listener: roomcast's handler first, the app's routes after it.
    const httpServer: Server = createServer((req, res) => {
      const app = (): void => {
        appHits++;
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("the app");
      };
      if (chatRef.handler) chatRef.handler(req as never, res as never, app);
      else app();
    });
    const chat = await createChatServer({ httpServer, logLevel: "silent", webRoot: false, unsubscribeDelay: 0 });
    chatRef.handler = chat.httpHandler;
    httpServer.listen(0, "127.0.0.1");
    await once(httpServer, "listening");
    const url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
    const ann = await TestClient.connect(url, { name: "ann" });
    try {
      assert.equal(ann.hello!.node, chat.nodeId);
      await ann.joinOk("attached");
      const { seq } = await ann.sendOk("attached", "through the app's server");
      await ann.until(() => ann.messages.some((m) => m.seq === seq), "echo");

      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      assert.equal(await (await fetch(`${url}/somewhere`)).text(), "the app");
      assert.equal(appHits, 1);

      await chat.close();
      assert.ok(httpServer.listening, "the app's server is the app's to close");
      const draining = await fetch(`${url}/readyz`);
      assert.equal(draining.status, 503, "not ready once closing");
      assert.equal(((await draining.json()) as { status: string }).status, "unavailable");
    } finally {
      ann.close();
      await chat.close();
      httpServer.closeAllConnections();
      await new Promise((resolve) => httpServer.close(resolve));
    }
  });
});
