import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ChatMessage, JoinResult } from "../src/protocol.js";
import { RoomState, TYPING_SHOW_MS } from "../src/clients/shared/room-state.js";

const ann = { id: "a1", name: "ann" };
const bob = { id: "b1", name: "bob" };
const msg = (seq: number, text = `m${seq}`, extra: Partial<ChatMessage> = {}): ChatMessage => ({ room: "r", seq, ts: 1000 + seq, from: bob, text, ...extra });
const ack = (head: number, epoch: string, messages: ChatMessage[], extra: Partial<JoinResult> = {}): JoinResult => ({ room: "r", head, epoch, members: [ann, bob], messages, ...extra });
const shown = (room: RoomState) => room.items.map((i) => (i.kind === "message" ? i.message.text : `[${i.topic}]`));

describe("client room state", () => {
  it("keeps messages in seq order, each once, however they arrive", () => {
    const room = new RoomState("r");
    room.applyJoin(ack(3, "e1", [msg(2), msg(3)]));
    assert.equal(room.applyLive(msg(4)), true);
    assert.equal(room.applyLive(msg(4)), false, "a duplicate is dropped");
    room.applyHistory([msg(1), msg(2)], 50);
    assert.deepEqual(shown(room), ["m1", "m2", "m3", "m4"]);
    assert.equal(room.lastSeq, 4);
    assert.equal(room.olderBefore(), undefined, "seq 1 is the start");
  });

  it("asks to rejoin with since and epoch, and merges what it missed", () => {
    const room = new RoomState("r");
    assert.deepEqual(room.joinRequest(), { room: "r" });
    room.applyJoin(ack(2, "e1", [msg(1), msg(2)]));
    room.disconnected();
    assert.equal(room.status, "rejoining");
    assert.deepEqual(room.joinRequest(), { room: "r", since: 2, epoch: "e1" });
    const outcome = room.applyJoin(ack(5, "e1", [msg(3), msg(4), msg(5)], { recovered: true }));
    assert.deepEqual(outcome.added.map((m) => m.seq), [3, 4, 5]);
    assert.equal(outcome.rejoin, true);
    assert.equal(outcome.reset || outcome.gap, false);
    assert.deepEqual(shown(room), ["m1", "m2", "m3", "m4", "m5"]);
  });

  it("says so when history no longer reaches back, and when it started over", () => {
    const room = new RoomState("r");
    room.applyJoin(ack(2, "e1", [msg(1), msg(2)]));
    const gap = room.applyJoin(ack(9, "e1", [msg(8), msg(9)], { recovered: false }));
    assert.equal(gap.gap, true);
    assert.deepEqual(shown(room), ["m1", "m2", "[recovery]", "m8", "m9"]);

    // A new epoch: seq 1 again is a different message; the old ones stay above the notice.
    const reset = room.applyJoin(ack(1, "e2", [msg(1, "new 1")], { recovered: false }));
    assert.equal(reset.reset, true);
    room.applyLive(msg(2, "new 2"));
    assert.deepEqual(shown(room), ["m1", "m2", "[recovery]", "m8", "m9", "[recovery]", "new 1", "new 2"]);
    assert.equal(room.lastSeq, 2);
    assert.deepEqual(room.messages().map((m) => m.text), ["new 1", "new 2"]);
  });

  it("settles a pending message by its ack or by its echo, whichever comes first", () => {
    const room = new RoomState("r");
    room.applyJoin(ack(0, "e1", []));
    room.addPending("hello", "c1");
    room.addPending("again", "c2");
    room.applyLive(msg(1, "hello", { from: ann, clientMsgId: "c1" }));
    assert.deepEqual(room.pending.map((p) => p.clientMsgId), ["c2"]);
    room.applySent(msg(3, "again", { from: ann, clientMsgId: "c2" }));
    assert.deepEqual(room.pending, []);
    assert.equal(room.lastSeq, 1, "an ack alone does not move since: seq 2 may still be on its way");
    room.applyLive(msg(2, "from bob"));
    assert.equal(room.applyLive(msg(3, "again", { from: ann, clientMsgId: "c2" })), false, "the echo after the ack");
    assert.deepEqual(shown(room), ["hello", "from bob", "again"]);
    assert.equal(room.lastSeq, 3);
  });

  it("puts messages in flight back in the queue on disconnect, and settles them from recovery", () => {
    const room = new RoomState("r");
    room.applyJoin(ack(0, "e1", []));
    const p = room.addPending("in flight", "c9");
    p.status = "sending";
    room.disconnected();
    assert.equal(p.status, "queued");
    room.applyJoin(ack(1, "e1", [msg(1, "in flight", { clientMsgId: "c9" })], { recovered: true }));
    assert.deepEqual(room.pending, [], "the server had it: not sent twice");
  });

  it("shows typing for a while, without the typist's own, until their message", () => {
    const room = new RoomState("r");
    room.applyJoin(ack(0, "e1", []));
    room.applyTyping(bob, 0);
    room.applyTyping(ann, 0);
    assert.deepEqual(room.typingNames(ann.id, 10), ["bob"]);
    assert.deepEqual(room.typingNames(ann.id, TYPING_SHOW_MS + 1), []);
    room.applyTyping(bob, 0);
    room.applyLive(msg(1));
    assert.deepEqual(room.typingNames(ann.id, 10), []);
  });

  it("tracks members from the join and from presence events, with notices", () => {
    const room = new RoomState("r");
    room.applyJoin(ack(0, "e1", []));
    room.applyPresence({ room: "r", event: "join", member: { id: "c1", name: "cat" } });
    room.applyPresence({ room: "r", event: "leave", member: bob });
    assert.deepEqual([...room.members.values()].map((m) => m.name), ["ann", "cat"]);
    assert.deepEqual(room.items.map((i) => (i.kind === "notice" ? i.text : "")), ["cat joined", "bob left"]);
  });

  it("takes a whole member list: a notice per change, one in all past three, the client itself kept", () => {
    const room = new RoomState("r");
    room.applyJoin(ack(0, "e1", []));
    const cat = { id: "c1", name: "cat" };
    assert.deepEqual(room.applyMembers([{ id: "b1", name: "bobby" }, cat], "a1"), { joined: [cat], left: [] }, "ann is this client: not dropped");
    assert.deepEqual([...room.members.values()].map((m) => m.name), ["ann", "bobby", "cat"], "a new name is taken silently");
    assert.deepEqual(room.applyMembers([cat]), { joined: [], left: [ann, { id: "b1", name: "bobby" }] });
    assert.deepEqual(room.items.map((i) => (i.kind === "notice" ? i.text : "")), ["cat joined", "ann left", "bobby left"]);
    assert.deepEqual(room.applyMembers([cat]), { joined: [], left: [] }, "the same list changes nothing");

    const crowd = Array.from({ length: 5 }, (_, i) => ({ id: `p${i}`, name: `p${i}` }));
    room.applyMembers(crowd);
    assert.deepEqual([...room.members.keys()], crowd.map((m) => m.id));
    const last = room.items.at(-1);
    assert.equal(last?.kind === "notice" ? last.text : "", "Members updated: p0, p1, p2, p3, p4 joined; cat left");
    assert.equal(room.items.length, 4, "one notice for six changes");
  });

  it("adds no notice for a presence event that changes nothing", () => {
    const room = new RoomState("r");
    room.applyJoin(ack(0, "e1", []));
    assert.equal(room.applyPresence({ room: "r", event: "join", member: bob }), false, "bob is already listed");
    assert.equal(room.applyPresence({ room: "r", event: "leave", member: { id: "c1", name: "cat" } }), false, "cat never was");
    assert.equal(room.items.length, 0);
  });
});
