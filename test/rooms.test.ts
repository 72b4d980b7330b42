import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { TestClient } from "./helpers/client.js";
import { startServer, type RunningServer } from "./helpers/server.js";

describe("rooms on one process", () => {
  let srv: RunningServer;
  const clients: TestClient[] = [];
  const connect = async (name?: string) => {
    const client = await TestClient.connect(srv.url, name ? { name } : {});
    clients.push(client);
    return client;
  };
  before(async () => (srv = await startServer()));
  after(async () => {
    for (const c of clients) c.close();
    await srv.close();
  });

  it("greets with hello: a user id, the given name or a guest name, and the node id", async () => {
    const ann = await connect("  ann  ");
    assert.equal(ann.hello!.user.name, "ann");
    assert.equal(ann.hello!.node, srv.server.nodeId);
    const guest = await connect();
    assert.match(guest.hello!.user.name, /^guest-[0-9a-f]{4}$/);
    assert.notEqual(ann.id, guest.id);
  });

  it("delivers a room's messages to its members only (the three-user scenario)", async () => {
    const [u1, u2, u3] = [await connect("u1"), await connect("u2"), await connect("u3")];
    await u1.joinOk("three-A");
    await u2.joinOk("three-B");
    const joined = await u3.joinOk("three-B");
    assert.deepEqual(joined.members.map((m) => m.name).sort(), ["u2", "u3"]);

    await u2.sendOk("three-B", "hi from 2");
    await u3.sendOk("three-B", "hi from 3");
    await u1.sendOk("three-A", "alone in A");
    await u2.until(() => u2.messages.length === 2, "u2 gets both B messages");
    await u3.until(() => u3.messages.length === 2, "u3 gets both B messages");
    await u1.until(() => u1.messages.length === 1, "u1 gets its own A message");

    for (const c of [u2, u3]) {
      assert.deepEqual(c.messages.map((m) => [m.room, m.from.name, m.text]), [
        ["three-B", "u2", "hi from 2"],
        ["three-B", "u3", "hi from 3"],
      ]);
    }
    assert.deepEqual(u1.messages.map((m) => m.text), ["alone in A"]);
    // A round trip after the sends proves nothing else was on its way to u1.
    await u1.sendOk("three-A", "barrier");
    await u1.until(() => u1.messages.length === 2, "barrier");
    assert.ok(u1.messages.every((m) => m.room === "three-A"));
  });

  it("acks a message with its seq and ts, and echoes it to the sender with the same fields", async () => {
    const ann = await connect("ann");
    await ann.joinOk("echo");
    const before = Date.now();
    const ack = await ann.send("echo", "hello", { clientMsgId: "c-1" });
    assert.ok(ack.ok);
    assert.equal(ack.seq, 1);
    assert.ok(ack.ts >= before && ack.ts <= Date.now());
    await ann.until(() => ann.messages.length === 1, "echo");
    assert.deepEqual(ann.messages[0], { room: "echo", seq: 1, ts: ack.ts, from: ann.hello!.user, text: "hello", clientMsgId: "c-1" });
  });

  it("delivers a message resent with the same clientMsgId once, and acks it with the original seq", async () => {
    const ann = await connect("ann");
    const bob = await connect("bob");
    await ann.joinOk("resend");
    await bob.joinOk("resend");
    const first = await ann.send("resend", "only once", { clientMsgId: "retry-1" });
    const again = await ann.send("resend", "only once", { clientMsgId: "retry-1" });
    assert.ok(first.ok && again.ok);
    assert.deepEqual([again.seq, again.ts], [first.seq, first.ts]);
    await bob.sendOk("resend", "barrier");
    await bob.until(() => bob.messagesIn("resend").length === 2, "barrier");
    assert.deepEqual(bob.messagesIn("resend").map((m) => m.text), ["only once", "barrier"]);
  });

  it("ends as a member after join, leave, join sent at once, and is in the room once after two joins at once", async () => {
    const ann = await connect("ann");
    const acks = await Promise.all([ann.join("flip"), ann.request("leave", { room: "flip" }), ann.join("flip")]);
    assert.ok(acks.every((ack) => ack.ok));
    await ann.sendOk("flip", "still here");
    await ann.until(() => ann.messagesIn("flip").length === 1, "the echo: a real member");
    const [first, second] = await Promise.all([ann.join("twice"), ann.join("twice")]);
    assert.ok(first.ok && second.ok);
    await ann.sendOk("twice", "once");
    await ann.sendOk("flip", "barrier");
    await ann.until(() => ann.messagesIn("flip").length === 2, "barrier");
    assert.equal(ann.messagesIn("twice").length, 1, "one membership, one copy");
  });

  it("tells the other members when someone joins, leaves or disconnects", async () => {
    const ann = await connect("ann");
    const bob = await connect("bob");
    await ann.joinOk("pres");
    await bob.joinOk("pres");
    await ann.until(() => ann.received("presence").length === 1, "join event");
    assert.deepEqual(ann.received("presence")[0], { room: "pres", event: "join", member: bob.hello!.user });

    assert.deepEqual(await bob.request("leave", { room: "pres" }), { ok: true });
    await ann.until(() => ann.received("presence").length === 2, "leave event");
    assert.deepEqual(ann.received("presence")[1], { room: "pres", event: "leave", member: bob.hello!.user });

    const cat = await connect("cat");
    await cat.joinOk("pres");
    await ann.until(() => ann.received("presence").length === 3, "cat joins");
    cat.close();
    await ann.until(() => ann.received("presence").length === 4, "cat's disconnect");
    assert.deepEqual(ann.received("presence")[3], { room: "pres", event: "leave", member: cat.hello!.user });
    const rejoined = await ann.joinOk("pres");
    assert.deepEqual(rejoined.members, [ann.hello!.user]);
    // Nobody is told about their own join.
    assert.equal(bob.received("presence").length, 0);
  });

  it("relays typing to the other members, never to the typist, and never stores it", async () => {
    const ann = await connect("ann");
    const bob = await connect("bob");
    await ann.joinOk("typing-room");
    await bob.joinOk("typing-room");
    ann.socket.emit("typing", { room: "typing-room" });
    await bob.until(() => bob.received("typing").length === 1, "typing");
    assert.deepEqual(bob.received("typing")[0], { room: "typing-room", member: ann.hello!.user });
    const history = await bob.history("typing-room");
    assert.ok(history.ok);
    assert.equal(history.messages.length, 0);
    await ann.sendOk("typing-room", "barrier");
    await ann.until(() => ann.messages.length === 1, "barrier");
    assert.equal(ann.received("typing").length, 0);
  });

  it("answers not_in_room for a room the connection has not joined, and leaving twice", async () => {
    const ann = await connect("ann");
    const sent = await ann.send("nowhere", "hi");
    assert.equal(!sent.ok && sent.error.code, "not_in_room");
    const history = await ann.history("nowhere");
    assert.equal(!history.ok && history.error.code, "not_in_room");
    const left = await ann.request("leave", { room: "nowhere" });
    assert.equal(!left.ok && left.error.code, "not_in_room");
  });

  it("removes a connection from the room's delivery group when it leaves", async () => {
    const ann = await connect("ann");
    await ann.joinOk("lifecycle");
    assert.equal(srv.server.gateway.groupSize("lifecycle"), 1);
    await ann.request("leave", { room: "lifecycle" });
    assert.equal(srv.server.gateway.groupSize("lifecycle"), 0);
  });
});
