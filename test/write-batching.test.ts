import assert from "node:assert/strict";
import { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { TestClient, waitUntil } from "./helpers/client.js";
import { UNLIMITED_RATE } from "./helpers/fixture.js";
import { startServer, type RunningServer } from "./helpers/server.js";

/**
 * Counts the writes to the kernel on the server's TCP socket for a client (net.Socket's _write and
 * _writev), whichever transport serves it: the server's socket is the one whose peer port is the
 * client's local port.
 */
function countServerWrites(client: TestClient): { count: number; restore(): void } {
  const transport = client.socket.io.engine.transport as unknown as { name: string; ws: { _socket: Socket } };
  assert.equal(transport.name, "websocket");
  const clientPort = transport.ws._socket.localPort;
  const proto = Socket.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const counter = { count: 0, restore: () => {} };
  const originals = ["_write", "_writev"].map((method) => [method, proto[method]!] as const);
  for (const [method, original] of originals) {
    proto[method] = function (this: Socket, ...args: unknown[]) {
      if (this.remotePort === clientPort) counter.count++;
      return original.apply(this, args);
    };
  }
  counter.restore = () => {
    for (const [method, original] of originals) proto[method] = original;
  };
  return counter;
}

for (const websocketTransport of ["direct", "socketio"] as const)
describe(`write batching (${websocketTransport} WebSocket transport)`, () => {
  let srv: RunningServer;
  before(async () => (srv = await startServer({ ...UNLIMITED_RATE, websocketTransport })));
  after(() => srv.close());

  it("sends a message's ack and its echo to the sender in one TCP write, ack and echo both intact", async () => {
    const ann = await TestClient.connect(srv.url, { name: "ann" });
    await ann.joinOk("batch");
    const writes = countServerWrites(ann);
    const sent = await ann.sendOk("batch", "hello");
    await waitUntil(() => ann.messagesIn("batch").length === 1, "the echo");
    writes.restore();
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
