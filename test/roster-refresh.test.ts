import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryPresence } from "../src/bus/presence-memory.js";
import { RosterRefresh, type RosterTarget } from "../src/chat/roster-refresh.js";
import type { Member, MembersEvent, PresenceEvent } from "../src/protocol.js";
import { waitUntil } from "./helpers/client.js";

/** Records the lists sent; the domain's own port is what is checked. */
class RecordingTarget implements RosterTarget {
  readonly sent: MembersEvent[] = [];
  constructor(readonly wanted: (room: string) => boolean = () => true) {}
  send(_room: string, event: MembersEvent): void {
    this.sent.push(event);
  }
  lists(): Member[][] {
    return this.sent.map((event) => event.members);
  }
}

const ann: Member = { id: "a", name: "ann" };
const bob: Member = { id: "b", name: "bob" };
const cat: Member = { id: "c", name: "cat" };
const presence = (event: "join" | "leave", member: Member, room = "r"): PresenceEvent => ({ room, event, member });
const noErrors = (err: unknown) => assert.fail(String(err));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
    const target = new RecordingTarget();
    const roster = new RosterRefresh(store, target, noErrors);

    roster.observe(presence("leave", ann)); // before the read: already in what it returns
    roster.refresh(["r"]);
    await waitUntil(() => reads.length === 1, "the read");
    roster.observe(presence("leave", bob)); // applied after the read saw bob
    roster.observe(presence("join", cat));
    roster.observe(presence("join", bob, "other")); // another room's
    answer([ann, bob]); // the store still held bob and not yet cat when it was read
    await waitUntil(() => target.sent.length === 1, "the list");
    roster.observe(presence("leave", cat)); // after the answer: delivered live, as any event

    assert.deepEqual(target.sent, [{ room: "r", members: [ann, cat] }]);
  });

  it("lets a user's last event win when a leave and a rejoin both come during overlapping reads", async () => {
    const { store, reads, answer } = heldStore();
    const target = new RecordingTarget();
    const roster = new RosterRefresh(store, target, noErrors);

    roster.refresh(["r"]);
    await waitUntil(() => reads.length === 1, "the first read");
    roster.observe(presence("leave", ann));
    roster.refresh(["r"]); // a second resubscribe while the first read is out
    await waitUntil(() => reads.length === 2, "the second read");
    roster.observe(presence("join", ann));
    answer([]); // read before ann's rejoin reached the store
    answer([bob]); // read between the leave and the rejoin
    await waitUntil(() => target.sent.length === 2, "both lists");

    assert.deepEqual(target.lists(), [[ann], [bob, ann]]);
  });

  it("reads only once the store has written this process's own entries back", async () => {
    const { store, reads, answer } = heldStore();
    let settle!: () => void;
    store.settled = () => new Promise((resolve) => (settle = resolve));
    const target = new RecordingTarget();
    new RosterRefresh(store, target, noErrors).refresh(["r"]);

    await sleep(50);
    assert.deepEqual(reads, [], "no read while the store is re-asserting");
    settle();
    await waitUntil(() => reads.length === 1, "the read after the re-assert");
    answer([ann]);
    await waitUntil(() => target.sent.length === 1, "the list");
  });

  it("keeps at most 32 reads out, and skips rooms with no members here", async () => {
    const { store, reads, answer } = heldStore();
    const target = new RecordingTarget((room) => room !== "room7");
    const rooms = Array.from({ length: 100 }, (_, i) => `room${i}`);
    new RosterRefresh(store, target, noErrors).refresh(rooms);

    await waitUntil(() => reads.length === 32, "the first 32 reads");
    await sleep(50);
    assert.equal(reads.length, 32, "no more until one answers");
    for (let answered = 0; answered < 99; answered++) {
      await waitUntil(() => reads.length > answered, `read ${answered + 1}`);
      answer([ann]);
    }
    await waitUntil(() => target.sent.length === 99, "99 lists");
    assert.deepEqual(reads, rooms.filter((room) => room !== "room7"));
  });

  it("retries a failed read, backing off, while the room has members; reports at most one failure a second", async () => {
    const { store, reads, answer, fail } = heldStore();
    const wanted = new Set(["r", "gone"]);
    const target = new RecordingTarget((room) => wanted.has(room));
    const errors: unknown[] = [];
    new RosterRefresh(store, target, (err) => errors.push(err)).refresh(["r", "gone"]);

    await waitUntil(() => reads.length === 2, "both reads");
    fail(new Error("redis down"));
    fail(new Error("redis down"));
    await sleep(20);
    assert.equal(errors.length, 1, "two failures together, one report");
    assert.equal(target.sent.length, 0);
    wanted.delete("gone"); // its last member left: nobody to send a list to
    await waitUntil(() => reads.length === 3, "the first retry, after a second", 2000);
    assert.equal(reads[2], "r");
    const failedAgainAt = Date.now();
    fail(new Error("still down"));
    await waitUntil(() => reads.length === 4, "the second retry", 4000);
    const waited = Date.now() - failedAgainAt;
    assert.ok(waited >= 1800, `the second retry waited twice as long: ${waited} ms`);
    assert.equal(errors.length, 2, "a second report, a second later");
    answer([ann]);
    await waitUntil(() => target.sent.length === 1, "the list, at the third try");
    assert.equal(target.sent[0]!.room, "r");
    assert.deepEqual(reads, ["r", "gone", "r", "r"], "no retry for the room nobody is in");
  });
});
