import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChatClient } from "../src/clients/shared/chat-client.js";
import { CHAT_NAMESPACE } from "../src/protocol.js";
import { waitUntil } from "./helpers/client.js";
import { serverFixture } from "./helpers/fixture.js";

describe("the shared client of the web page and the terminal", () => {
  // As a proxy that lets no WebSocket through: every upgrade request is refused.
  const fx = serverFixture({ allowRequest: (req) => req.headers.upgrade === undefined });

  it("falls back to long-polling where no WebSocket gets through, and chats", async () => {
    const client = new ChatClient({ url: fx.url, name: "behind-proxy" });
    try {
      client.connect();
      await waitUntil(() => client.state === "connected", "connected");
      // Over polling it is a Socket.IO socket; the direct transport never saw it.
      assert.equal(fx.srv.server.io.of(CHAT_NAMESPACE).sockets.size, 1);
      assert.equal((await client.join("fallback")).ok, true);
      assert.equal((await client.send("fallback", "over polling")).ok, true);
      const reader = await fx.connect("reader", {}, { transports: ["polling"] });
      await reader.joinOk("fallback");
      const page = await reader.history("fallback");
      assert.ok(page.ok);
      assert.deepEqual(page.messages.map((m) => m.text), ["over polling"]);
      reader.close();
    } finally {
      client.close();
    }
    // Closed before the server is: engine.io otherwise holds a polling transport's close for 30 s.
    await waitUntil(() => fx.srv.server.io.engine.clientsCount === 0, "every engine.io client gone");
  });
});
