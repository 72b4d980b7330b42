import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryPresence } from "../src/bus/presence-memory.js";
import type { Gateway } from "../src/chat/gateway.js";
import { RosterRefresh } from "../src/chat/roster-refresh.js";
import type { Member, MembersEvent, PresenceEvent } from "../src/protocol.js";
import { waitUntil } from "./helpers/client.js";

/** Records broadcasts; the domain's port is what is checked. */
class RecordingGateway implements Gateway {
  readonly broadcasts: Array<{ room: string; event: string; payload: unknown }> = [];
  send(): void {}
  broadcast(room: string, event: string, payload: unknown): void {
    this.broadcasts.push({ room, event, payload });
  }
  addToGroup(): void {}
  removeFromGroup(): void {}
  reconnect(): void {}
  lists(): Member[][] {
    return this.broadcasts.map((b) => (b.payload as MembersEvent).members);
  }
}

const ann: Member = { id: "a", name: "ann" };
const bob: Member = { id: "b", name: "bob" };
const cat: Member = { id: "c", name: "cat" };
const presence = (event: "join" | "leave", member: Member, room = "r"): PresenceEvent => ({ room, event, member });

/** A presence store whose member reads stay out until the test answers them, in order. */
function heldStore(): { store: MemoryPresence; reads: string[]; answer: (members: Member[]) => void; fail: (err: Error) => void } {
  const store = new MemoryPresence();
  const reads: string[] = [];
  const open: Array<{ resolve: (m: Member[]) => void; reject: (e: Error) => void }> = [];
  store.members = (room) => {
    reads.push(room);
    return new Promise((resolve, reject) => open.push({ resolve, reject }));
  };
  return { store, reads, answer: (members) => open.shift()!.resolve(members), fail: (err) => open.shift()!.reject(err) };
}

/**
 * The store read and the live presence events come over different connections, so the order in
 * which a process sees them is not the order in which the store applied them. The reads are held
 * open here to put events on either side of them on demand.
 */
describe("RosterRefresh: the member list after missed presence events", () => {
  it("sends the store's members, with the events that arrived during the read applied on top", async () => {
    const { store, reads, answer } = heldStore();
    const gateway = new RecordingGateway();
    const roster = new RosterRefresh(store, gateway, () => true, (err) => assert.fail(String(err)));

    roster.observe(presence("leave", ann)); // before the read: already in what it returns
    roster.refresh(["r"]);
    await waitUntil(() => reads.length === 1, "the read");
    roster.observe(presence("leave", bob)); // applied after the read saw bob
    roster.observe(presence("join", cat));
    roster.observe(presence("join", bob, "other")); // another room's
    answer([ann, bob]); // the store still held bob and not yet cat when it was read
    await waitUntil(() => gateway.broadcasts.length === 1, "the list");
    roster.observe(presence("leave", cat)); // after the answer: delivered live, as any event

    assert.deepEqual(gateway.broadcasts, [{ room: "r", event: "members", payload: { room: "r", members: [ann, cat] } satisfies MembersEvent }]);
  });

  it("lets a user's last event win when a leave and a rejoin both come during overlapping reads", async () => {
    const { store, reads, answer } = heldStore();
    const gateway = new RecordingGateway();
    const roster = new RosterRefresh(store, gateway, () => true, (err) => assert.fail(String(err)));

    roster.refresh(["r"]);
    await waitUntil(() => reads.length === 1, "the first read");
    roster.observe(presence("leave", ann));
    roster.refresh(["r"]); // a second resubscribe while the first read is out
    await waitUntil(() => reads.length === 2, "the second read");
    roster.observe(presence("join", ann));
    answer([]); // read before ann's rejoin reached the store
    answer([bob]); // read between the leave and the rejoin
    await waitUntil(() => gateway.broadcasts.length === 2, "both lists");

    assert.deepEqual(gateway.lists(), [[ann], [bob, ann]]);
  });

  it("reads only once the store has written this process's own entries back", async () => {
    const { store, reads, answer } = heldStore();
    let settle!: () => void;
    store.settled = () => new Promise((resolve) => (settle = resolve));
    const gateway = new RecordingGateway();
    new RosterRefresh(store, gateway, () => true, (err) => assert.fail(String(err))).refresh(["r"]);

    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(reads, [], "no read while the store is re-asserting");
    settle();
    await waitUntil(() => reads.length === 1, "the read after the re-assert");
    answer([ann]);
    await waitUntil(() => gateway.broadcasts.length === 1, "the list");
  });

  it("keeps at most 32 reads out, and skips rooms with no live members here", async () => {
    const { store, reads, answer } = heldStore();
    const gateway = new RecordingGateway();
    const rooms = Array.from({ length: 100 }, (_, i) => `room${i}`);
    const roster = new RosterRefresh(store, gateway, (room) => room !== "room7", (err) => assert.fail(String(err)));
    roster.refresh(rooms);

    await waitUntil(() => reads.length === 32, "the first 32 reads");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(reads.length, 32, "no more until one answers");
    for (let answered = 0; answered < 99; answered++) {
      await waitUntil(() => reads.length > answered, `read ${answered + 1}`);
      answer([ann]);
    }
    await waitUntil(() => gateway.broadcasts.length === 99, "99 lists");
    assert.deepEqual(reads, rooms.filter((room) => room !== "room7"));
  });

  it("reports a failed read, sends nothing, and tries again while the room has live members", async () => {
    const { store, reads, answer, fail } = heldStore();
    const gateway = new RecordingGateway();
    const errors: unknown[] = [];
    const wanted = new Set(["r", "gone"]);
    const roster = new RosterRefresh(store, gateway, (room) => wanted.has(room), (err) => errors.push(err));

    roster.refresh(["r", "gone"]);
    await waitUntil(() => reads.length === 2, "both reads");
    fail(new Error("redis down"));
    fail(new Error("redis down"));
    await waitUntil(() => errors.length === 2, "both failures");
    assert.equal(gateway.broadcasts.length, 0);
    wanted.delete("gone"); // its last live member left: nobody to send a list to
    await waitUntil(() => reads.length === 3, "a retry", 3000);
    assert.equal(reads[2], "r");
    answer([ann]);
    await waitUntil(() => gateway.broadcasts.length === 1, "the list, at the second try");
    assert.equal(gateway.broadcasts[0]!.room, "r");
    await new Promise((resolve) => setTimeout(resolve, 1300));
    assert.equal(reads.length, 3, "no retry for the room nobody is in");
  });
});
