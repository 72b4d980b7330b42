import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryPresence } from "../src/bus/presence-memory.js";
import type { Gateway } from "../src/chat/gateway.js";
import { RosterRefresh } from "../src/chat/roster-refresh.js";
import type { Member, MembersEvent, PresenceEvent } from "../src/protocol.js";

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
}

const ann: Member = { id: "a", name: "ann" };
const bob: Member = { id: "b", name: "bob" };
const cat: Member = { id: "c", name: "cat" };
const presence = (event: "join" | "leave", member: Member, room = "r"): PresenceEvent => ({ room, event, member });

/**
 * The store read and the live presence events come over different connections, so the order in
 * which a process sees them is not the order in which the store applied them. The read is held
 * open here to put events on either side of it on demand.
 */
describe("RosterRefresh: the member list after missed presence events", () => {
  it("sends the store's members, with the events that arrived during the read applied on top", async () => {
    const store = new MemoryPresence();
    let answer!: (members: Member[]) => void;
    store.members = () => new Promise((resolve) => (answer = resolve));
    const gateway = new RecordingGateway();
    const roster = new RosterRefresh(store, gateway, (err) => assert.fail(String(err)));

    roster.observe(presence("leave", ann)); // before the read: already in what it returns
    const done = roster.refresh("r");
    roster.observe(presence("leave", bob)); // applied after the read saw bob
    roster.observe(presence("join", cat));
    roster.observe(presence("join", bob, "other")); // another room's
    answer([ann, bob]); // the store still held bob and not yet cat when it was read
    await done;
    roster.observe(presence("leave", cat)); // after the answer: delivered live, as any event

    assert.deepEqual(gateway.broadcasts, [{ room: "r", event: "members", payload: { room: "r", members: [ann, cat] } satisfies MembersEvent }]);
  });

  it("lets a user's last event win when both of a leave and a rejoin come during the read", async () => {
    const store = new MemoryPresence();
    let answer!: (members: Member[]) => void;
    store.members = () => new Promise((resolve) => (answer = resolve));
    const gateway = new RecordingGateway();
    const roster = new RosterRefresh(store, gateway, (err) => assert.fail(String(err)));

    const first = roster.refresh("r");
    const answerFirst = answer;
    roster.observe(presence("leave", ann));
    const second = roster.refresh("r"); // a second resubscribe while the first read is out
    roster.observe(presence("join", ann));
    answerFirst([]); // read before ann's rejoin reached the store
    answer([bob]); // read between the leave and the rejoin
    await Promise.all([first, second]);

    assert.deepEqual(
      gateway.broadcasts.map((b) => (b.payload as MembersEvent).members),
      [[ann], [bob, ann]],
    );
  });

  it("reports a failed read and sends nothing", async () => {
    const store = new MemoryPresence();
    store.members = () => Promise.reject(new Error("redis down"));
    const gateway = new RecordingGateway();
    const errors: unknown[] = [];
    await new RosterRefresh(store, gateway, (err) => errors.push(err)).refresh("r");
    assert.equal(errors.length, 1);
    assert.deepEqual(gateway.broadcasts, []);
  });
});
