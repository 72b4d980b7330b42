import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { TestClient, waitUntil } from "./helpers/client.js";
import { UNLIMITED_RATE } from "./helpers/fixture.js";
import { startServer, type RunningServer } from "./helpers/server.js";

/** Counts the writes to the kernel on the server's TCP socket for a client (net.Socket's _write and _writev). */
function countServerWrites(srv: RunningServer, client: TestClient): { count: number } {
  const socket = srv.server.io.of("/chat").sockets.get(client.socket.id!);
  assert.ok(socket, "the client's server-side socket");
  const transport = socket.conn.transport as unknown as { name: string; socket: { _socket: Record<string, (...args: unknown[]) => unknown> } };
  assert.equal(transport.name, "websocket");
  const tcp = transport.socket._socket;
  const counter = { count: 0 };
  for (const method of ["_write", "_writev"]) {
    const original = tcp[method]!;
    tcp[method] = function (this: unknown, ...args: unknown[]) {
      counter.count++;
      return original.apply(this, args);
    };
  }
  return counter;
}

describe("write batching", () => {
  let srv: RunningServer;
  before(async () => (srv = await startServer(UNLIMITED_RATE)));
  after(() => srv.close());

  it("sends a message's ack and its echo to the sender in one TCP write, ack and echo both intact", async () => {
    const ann = await TestClient.connect(srv.url, { name: "ann" });
    await ann.joinOk("batch");
    const writes = countServerWrites(srv, ann);
    const sent = await ann.sendOk("batch", "hello");
    await waitUntil(() => ann.messagesIn("batch").length === 1, "the echo");
    assert.equal(ann.messagesIn("batch")[0]!.seq, sent.seq);
    assert.equal(ann.messagesIn("batch")[0]!.text, "hello");
    // Two Socket.IO packets (the "message" event and the ack), one write.
    assert.equal(writes.count, 1, `expected one write to the kernel, got ${writes.count}`);
    ann.socket.close();
  });

  it("keeps a connection's packets in order across turns", async () => {
    const [ann, bob] = await Promise.all([TestClient.connect(srv.url, { name: "ann" }), TestClient.connect(srv.url, { name: "bob" })]);
    await ann.joinOk("order");
    await bob.joinOk("order");
    const seqs = await Promise.all(Array.from({ length: 50 }, (_, i) => ann.sendOk("order", `m${i}`)));
    await waitUntil(() => bob.messagesIn("order").length === 50, "50 messages");
    const got = bob.messagesIn("order").map((m) => m.seq);
    assert.deepEqual(got, [...got].sort((a, b) => a - b));
    assert.deepEqual(new Set(got), new Set(seqs.map((s) => s.seq)));
    ann.socket.close();
    bob.socket.close();
  });
});
