import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CHAT_NAMESPACE } from "../src/protocol.js";
import { TestClient } from "./helpers/client.js";
import { serverFixture } from "./helpers/fixture.js";

/** The engine.io connections of the server's chat sockets, with what they still hold of the handshake. */
function handshakeRequests(fx: ReturnType<typeof serverFixture>): unknown[] {
  return [...fx.srv.server.io.of(CHAT_NAMESPACE).sockets.values()].map((s) => (s.conn as unknown as { request: unknown }).request);
}

// The Socket.IO transport: long-polling clients, and WebSocket ones with WEBSOCKET_TRANSPORT=socketio
// (the direct transport keeps no request: ws hands over the socket alone).
describe("Socket.IO connections let go of their handshake request", () => {
  const fx = serverFixture({ websocketTransport: "socketio" });

  it("over WebSocket: the request is dropped and the chat works", async () => {
    const ann = await fx.connect("ann");
    const bob = await fx.connect("bob");
    assert.ok(handshakeRequests(fx).length >= 2);
    for (const req of handshakeRequests(fx)) assert.equal(req, null);
    await ann.joinOk("mem-ws");
    await bob.joinOk("mem-ws");
    await ann.sendOk("mem-ws", "hi");
    await bob.until(() => bob.messages.some((m) => m.text === "hi"), "bob gets the message");
  });

  it("over polling upgraded to WebSocket, as browsers connect", async () => {
    const poller = fx.track(await TestClient.connectUpgraded(fx.url, { name: "poller" }));
    assert.equal(poller.hello!.user.name, "poller");
    for (const req of handshakeRequests(fx)) assert.equal(req, null);
    await poller.joinOk("mem-poll");
  });
});
