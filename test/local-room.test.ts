import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { MemoryBroker } from "../src/bus/broker-memory.js";
import type { Gateway } from "../src/chat/gateway.js";
import { LocalRoom } from "../src/chat/local-room.js";
import type { ChatMessage, MembersEvent, PresenceEvent } from "../src/protocol.js";
import { waitUntil } from "./helpers/client.js";

/**
 * LocalRoom's ordering rules, driven directly. The races these cover (a message arriving while a
 * join is in flight, a history read ahead of the stream) happen over Redis only rarely and not
 * on demand, so the end-to-end tests cannot force them. The gateway records instead of sending:
 * the port is the domain's own boundary, and what crosses it is what is checked.
 */
class RecordingGateway implements Gateway {
  readonly groups = new Map<string, Set<string>>();
  /** What each connection received, in order, from sends and from broadcasts alike: a message's seq, or an event's name. */
  readonly received = new Map<string, Array<number | string>>();
  readonly reconnected: string[] = [];

  send(connId: string, event: string, payload: unknown): void {
    this.push(connId, event, payload);
  }
  broadcast(room: string, event: string, payload: unknown, exceptConnId?: string): void {
    for (const connId of this.groups.get(room) ?? []) if (connId !== exceptConnId) this.push(connId, event, payload);
  }
  addToGroup(connId: string, room: string): void {
    if (!this.groups.has(room)) this.groups.set(room, new Set());
    this.groups.get(room)!.add(connId);
  }
  removeFromGroup(connId: string, room: string): void {
    this.groups.get(room)?.delete(connId);
  }
  reconnect(connId: string): void {
    this.reconnected.push(connId);
  }
  seqs(connId: string): number[] {
    return (this.received.get(connId) ?? []).filter((item): item is number => typeof item === "number");
  }
  private push(connId: string, event: string, payload: unknown): void {
    if (!this.received.has(connId)) this.received.set(connId, []);
    const describe = (): string => {
      if (event === "members") return `members ${(payload as MembersEvent).members.map((m) => m.name).join(",")}`;
      const { member, event: kind } = payload as PresenceEvent;
      return `${event} ${kind} ${member.name}`;
    };
    this.received.get(connId)!.push(event === "message" ? (payload as ChatMessage).seq : describe());
  }
}

describe("LocalRoom: delivery order, the join states and gap filling", () => {
  let broker: MemoryBroker;
  let gateway: RecordingGateway;
  let room: LocalRoom;
  let epoch: string;
  const errors: unknown[] = [];

  /** Stores a message in the room's history without delivering it: as if pub/sub had not brought it yet. */
  const store = async (): Promise<ChatMessage> =>
    broker.publishMessage("r", { room: "r", ts: Date.now(), from: { id: "u", name: "u" }, text: "x" });

  beforeEach(async () => {
    broker = new MemoryBroker({ historyLimit: 100, historyTtlMs: 60_000 });
    gateway = new RecordingGateway();
    room = new LocalRoom("r", gateway, (after, limit) => broker.history("r", { after, limit }), (err) => errors.push(err));
    epoch = (await broker.history("r", { limit: 0 })).epoch;
    room.initialize(0, epoch);
  });

  it("buffers what arrives while a join is in flight and sends it after the ack, past the ack's head", async () => {
    const [m1, m2, m3] = [await store(), await store(), await store()];
    room.beginJoin("c1");
    room.receive(m1, epoch);
    room.receive(m2, epoch);
    room.receive(m3, epoch);
    assert.deepEqual(gateway.seqs("c1"), [], "nothing before the ack");
    room.activate("c1", 1); // the ack covered seq 1
    assert.deepEqual(gateway.seqs("c1"), [2, 3]);
    room.receive(await store(), epoch);
    assert.deepEqual(gateway.seqs("c1"), [2, 3, 4], "then live");
    assert.ok(gateway.groups.get("r")!.has("c1"));
  });

  it("sends a joining or catching-up member the presence events it would have missed, but not its own", async () => {
    const presence = (kind: "join" | "leave", name: string, origin: string) =>
      room.relay({ type: "presence", event: { room: "r", event: kind, member: { id: name, name } }, origin });
    const m1 = await store();
    room.beginJoin("c1");
    presence("join", "c1", "c1"); // its own join: announced to the others only
    room.receive(m1, epoch);
    presence("leave", "bob", "b1"); // after its member read, maybe: the ack may still list bob
    assert.deepEqual(gateway.received.get("c1") ?? [], [], "nothing before the ack");
    room.activate("c1", 0);
    assert.deepEqual(gateway.received.get("c1"), [1, "presence leave bob"], "in the order they came, after the ack");

    room.beginJoin("c2");
    room.activate("c2", 3); // ahead of the stream: catching up
    presence("join", "cat", "c3");
    assert.deepEqual(gateway.received.get("c2"), ["presence join cat"], "catching up, it hears presence at once");
    assert.deepEqual(gateway.received.get("c1"), [1, "presence leave bob", "presence join cat"], "and live members as before");

    // A member list after a resubscribe reaches both, and would reach nobody in a room of joiners.
    assert.equal(room.hasActiveMembers(), true);
    room.sendMembers({ room: "r", members: [{ id: "cat", name: "cat" }] });
    assert.deepEqual(gateway.received.get("c2"), ["presence join cat", "members cat"]);
    assert.equal(gateway.received.get("c1")!.at(-1), "members cat");
    room.remove("c1");
    room.remove("c2");
    room.beginJoin("c4");
    assert.equal(room.hasActiveMembers(), false, "a joining member's ack brings its own list");
  });

  it("holds a member whose ack is ahead of the stream until the stream reaches it, then makes it live", async () => {
    const [m1, m2, m3] = [await store(), await store(), await store()];
    room.beginJoin("c1");
    room.activate("c1", 3); // its history read saw seq 3 before pub/sub brought 1..3
    assert.ok(!gateway.groups.get("r")?.has("c1"), "not live yet: the stream is behind");
    room.receive(m1, epoch);
    room.receive(m2, epoch);
    room.receive(m3, epoch);
    assert.deepEqual(gateway.seqs("c1"), [], "1..3 were in its ack");
    assert.ok(gateway.groups.get("r")!.has("c1"), "live once the stream reached 3");
    room.receive(await store(), epoch);
    assert.deepEqual(gateway.seqs("c1"), [4]);
  });

  it("fills a gap from history before delivering, and drops what was already delivered", async () => {
    room.beginJoin("c1");
    room.activate("c1", 0);
    const [m1, , , m4] = [await store(), await store(), await store(), await store()];
    room.receive(m1, epoch);
    room.receive(m4, epoch); // 2 and 3 never came by pub/sub
    await waitUntil(() => gateway.seqs("c1").length === 4, "the gap filled");
    room.receive(m1, epoch); // a late duplicate
    room.receive(await store(), epoch);
    assert.deepEqual(gateway.seqs("c1"), [1, 2, 3, 4, 5]);
  });

  it("reports to its observer what history recovered, what it no longer held, and a restart", async () => {
    const counts = { recovered: 0, lost: 0, restarted: 0 };
    const observer = { recovered: (n: number) => void (counts.recovered += n), lost: (n: number) => void (counts.lost += n), restarted: () => void counts.restarted++ };
    const short = new MemoryBroker({ historyLimit: 2, historyTtlMs: 60_000 });
    const observed = new LocalRoom("s", gateway, (after, limit) => short.history("s", { after, limit }), (err) => errors.push(err), observer);
    const shortEpoch = (await short.history("s", { limit: 0 })).epoch;
    observed.initialize(0, shortEpoch);
    observed.beginJoin("c1");
    observed.activate("c1", 0);
    const sent: ChatMessage[] = [];
    for (let i = 0; i < 5; i++) sent.push(await short.publishMessage("s", { room: "s", ts: Date.now(), from: { id: "u", name: "u" }, text: "x" }));
    observed.receive(sent[4]!, shortEpoch); // 1..4 never came by pub/sub; history keeps only 4 and 5
    await waitUntil(() => gateway.seqs("c1").length === 2, "4 from history, then 5");
    assert.deepEqual(gateway.seqs("c1"), [4, 5]);
    assert.deepEqual(counts, { recovered: 1, lost: 3, restarted: 0 });
    observed.receive({ ...sent[0]!, seq: 1 }, "another-epoch");
    assert.deepEqual(counts, { recovered: 1, lost: 3, restarted: 1 }, "a new life is a restart, not a loss");
  });

  it("ignores a history page read before the sequence started over, and goes on with the new life", async () => {
    let restarts = 0;
    const observer = { recovered: () => {}, lost: () => {}, restarted: () => void restarts++ };
    let answer: (page: { head: number; epoch: string; messages: ChatMessage[] }) => void = () => {};
    const stale = new LocalRoom("s", gateway, () => new Promise((resolve) => (answer = resolve)), (err) => errors.push(err), observer);
    stale.initialize(0, "E1");
    stale.beginJoin("c1");
    stale.activate("c1", 0);
    const old = (seq: number): ChatMessage => ({ room: "s", seq, ts: Date.now(), from: { id: "u", name: "u" }, text: "old" });
    stale.receive(old(3), "E1"); // 1 and 2 missing: a history read starts
    stale.receive({ ...old(1), text: "new life" }, "E2"); // meanwhile the room starts over
    assert.equal(restarts, 1);
    answer({ head: 3, epoch: "E1", messages: [old(1), old(2), old(3)] }); // the read answers with the old life
    await waitUntil(() => gateway.seqs("c1").length === 1, "the new life's first message");
    assert.deepEqual(gateway.seqs("c1"), [1]);
    assert.equal(restarts, 1, "the stale page is not a second restart");
    assert.deepEqual(gateway.reconnected, ["c1"], "c1 sent to reconnect once");
  });

  it("catches up from history on a resync, when nothing new arrives to reveal the gap", async () => {
    room.beginJoin("c1");
    room.activate("c1", 0);
    await store();
    await store();
    room.catchUp();
    await waitUntil(() => gateway.seqs("c1").length === 2, "caught up");
    assert.deepEqual(gateway.seqs("c1"), [1, 2]);
  });

  it("drops a message of the old life when a gap fill finds the sequence started over, and goes on with the new", async () => {
    let reborn = false;
    const reader = async (after: number, limit: number) =>
      reborn ? { head: 0, epoch: "E2", messages: [] } : broker.history("r", { after, limit });
    const room2 = new LocalRoom("r2", gateway, reader, (err) => errors.push(err));
    room2.initialize(0, epoch);
    room2.beginJoin("c1");
    room2.activate("c1", 0);
    gateway.addToGroup("c1", "r2");
    const m1 = await store();
    room2.receive(m1, epoch);
    reborn = true;
    room2.receive({ ...m1, seq: 3 }, epoch); // 2 never came; the fill finds epoch E2
    await waitUntil(() => gateway.reconnected.includes("c1"), "c1 sent to reconnect");
    room2.receive({ ...m1, seq: 1, text: "new life" }, "E2");
    await waitUntil(() => gateway.seqs("c1").length === 2, "the new life's first message");
    assert.deepEqual(gateway.seqs("c1"), [1, 1], "seq 3 of the old life is never delivered");
  });

  it("sends every member to reconnect when the room's sequence started over under a new epoch", async () => {
    room.beginJoin("c1");
    room.activate("c1", 0);
    room.beginJoin("c2");
    room.receive(await store(), epoch);
    const reborn = { room: "r", seq: 1, ts: Date.now(), from: { id: "u", name: "u" }, text: "new life" };
    room.receive(reborn, "another-epoch");
    assert.deepEqual(gateway.reconnected.sort(), ["c1", "c2"]);
    assert.deepEqual(errors, []);
  });
});
