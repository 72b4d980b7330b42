import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { ChatMessage } from "../src/protocol.js";
import { TestClient } from "./helpers/client.js";
import { range, serverFixture, UNLIMITED_RATE } from "./helpers/fixture.js";
import { startServer } from "./helpers/server.js";

const seqs = (messages: ChatMessage[]): number[] => messages.map((m) => m.seq);

async function fill(client: TestClient, room: string, count: number): Promise<void> {
  // In batches: a few hundred acks in flight at once is plenty and keeps the event loop responsive.
  for (let start = 0; start < count; start += 200) {
    const batch = range(start + 1, Math.min(count, start + 200));
    await Promise.all(batch.map((n) => client.sendOk(room, `m${n}`)));
  }
}

async function historyOk(client: TestClient, room: string, extra: Record<string, unknown> = {}): Promise<ChatMessage[]> {
  const ack = await client.history(room, extra);
  if (!ack.ok) throw new Error(`history failed: ${ack.error.code} ${ack.error.message}`);
  return ack.messages;
}

describe("history paging", () => {
  const fx = serverFixture(UNLIMITED_RATE);

  it("pages back with before and limit: default 50, max 100, oldest first", async () => {
    const ann = await fx.connect("ann");
    await ann.joinOk("paging");
    await fill(ann, "paging", 230);

    assert.deepEqual(seqs(await historyOk(ann, "paging")), range(181, 230), "default: the newest 50");
    assert.deepEqual(seqs(await historyOk(ann, "paging", { limit: 100 })), range(131, 230), "limit 100");
    assert.deepEqual(seqs(await historyOk(ann, "paging", { before: 131, limit: 100 })), range(31, 130), "the page before");
    assert.deepEqual(seqs(await historyOk(ann, "paging", { before: 31, limit: 100 })), range(1, 30), "the first page is short");
    assert.deepEqual(seqs(await historyOk(ann, "paging", { before: 1 })), [], "nothing before seq 1");
    assert.deepEqual(seqs(await historyOk(ann, "paging", { before: 100, limit: 3 })), [97, 98, 99]);
    assert.deepEqual(seqs(await historyOk(ann, "paging", { before: 10_000, limit: 2 })), [229, 230], "before past head");

    const page = await historyOk(ann, "paging", { before: 3, limit: 1 });
    assert.deepEqual(page, [{ room: "paging", seq: 2, ts: page[0]!.ts, from: ann.hello!.user, text: "m2" }]);
  });

  it("refuses limits outside 1..100", async () => {
    const ann = await fx.connect("ann");
    await ann.joinOk("paging-limits");
    for (const limit of [0, 101, -1, 1.5, "10"]) {
      const ack = await ann.history("paging-limits", { limit });
      assert.equal(!ack.ok && ack.error.code, "bad_request", `limit ${JSON.stringify(limit)}`);
    }
  });

  it("answers a new room with head 0 and no messages", async () => {
    const ann = await fx.connect("ann");
    const joined = await ann.joinOk("paging-empty");
    assert.equal(joined.head, 0);
    assert.deepEqual(joined.messages, []);
    assert.deepEqual(await historyOk(ann, "paging-empty"), []);
  });
});

describe("HISTORY_LIMIT", () => {
  const fx = serverFixture({ ...UNLIMITED_RATE, historyLimit: 10 });

  it("keeps only the newest historyLimit messages of a room", async () => {
    const ann = await fx.connect("ann");
    await ann.joinOk("trim");
    await fill(ann, "trim", 300); // past the broker's trimming slack, so the array is really cut

    assert.deepEqual(seqs(await historyOk(ann, "trim", { limit: 100 })), range(291, 300));
    assert.deepEqual(seqs(await historyOk(ann, "trim", { before: 295 })), range(291, 294));
    assert.deepEqual(seqs(await historyOk(ann, "trim", { before: 291 })), []);
    const bob = await fx.connect("bob");
    const joined = await bob.joinOk("trim");
    assert.equal(joined.head, 300);
    assert.deepEqual(seqs(joined.messages), range(291, 300));
  });

  it("recovers with recovered false when history no longer reaches back to since", async () => {
    const ann = await fx.connect("ann");
    const first = await ann.joinOk("trim-since");
    await fill(ann, "trim-since", 30);
    const bob = await fx.connect("bob");
    const joined = await bob.joinOk("trim-since", { since: 2, epoch: first.epoch });
    assert.equal(joined.recovered, false);
    assert.equal(joined.head, 30);
    assert.deepEqual(seqs(joined.messages), range(21, 30), "what is left after since");
  });
});

describe("recovery with since", () => {
  const fx = serverFixture(UNLIMITED_RATE);

  it("gives exactly the missed messages and recovered true", async () => {
    const ann = await fx.connect("ann");
    const joined = await ann.joinOk("recover");
    await fill(ann, "recover", 7);
    const bob = await fx.connect("bob");
    await bob.joinOk("recover");
    await bob.sendOk("recover", "bob was here");
    await ann.until(() => ann.messagesIn("recover").length === 8, "ann has 8");
    const lastSeen = ann.messagesIn("recover").at(-1)!.seq;
    ann.close();

    await fill(bob, "recover", 5);
    const again = await fx.connect("ann");
    const back = await again.joinOk("recover", { since: lastSeen, epoch: joined.epoch });
    assert.equal(back.recovered, true);
    assert.equal(back.head, 13);
    assert.equal(back.epoch, joined.epoch);
    assert.deepEqual(seqs(back.messages), range(9, 13));
    assert.deepEqual(back.messages.map((m) => m.from.name), ["bob", "bob", "bob", "bob", "bob"]);

    // Nothing missed at all: recovered, no messages.
    const cat = await fx.connect("cat");
    const upToDate = await cat.joinOk("recover", { since: 13, epoch: joined.epoch });
    assert.equal(upToDate.recovered, true);
    assert.deepEqual(upToDate.messages, []);

    // since 0 is "seen nothing yet": everything retained, whatever the epoch.
    const dan = await fx.connect("dan");
    const all = await dan.joinOk("recover", { since: 0, epoch: "some-other-epoch" });
    assert.equal(all.recovered, true);
    assert.deepEqual(seqs(all.messages), range(1, 13));
  });

  it("leaves recovered out of a join without since", async () => {
    const ann = await fx.connect("ann");
    const joined = await ann.joinOk("recover-plain");
    assert.equal("recovered" in joined, false);
  });

  it("answers recovered false, with the newest messages, when since is past the head", async () => {
    const ann = await fx.connect("ann");
    const joined = await ann.joinOk("recover-ahead");
    await fill(ann, "recover-ahead", 3);
    const bob = await fx.connect("bob");
    for (const extra of [{ since: 4 }, { since: 100, epoch: joined.epoch }]) {
      const ack = await bob.joinOk("recover-ahead", extra);
      assert.equal(ack.recovered, false, JSON.stringify(extra));
      assert.equal(ack.head, 3);
      assert.deepEqual(seqs(ack.messages), [1, 2, 3]);
    }
  });

  it("answers recovered false when more than 1000 messages were missed, with the newest 1000", async () => {
    const srv = await startServer({ ...UNLIMITED_RATE, historyLimit: 2000 });
    after(() => srv.close());
    const ann = await TestClient.connect(srv.url, { name: "ann" });
    try {
      const joined = await ann.joinOk("recover-many");
      await fill(ann, "recover-many", 1105);
      const bob = await TestClient.connect(srv.url, { name: "bob" });
      try {
        const ack = await bob.joinOk("recover-many", { since: 100, epoch: joined.epoch });
        assert.equal(ack.recovered, false);
        assert.deepEqual(seqs(ack.messages), range(106, 1105));
        const exact = await bob.joinOk("recover-many", { since: 105, epoch: joined.epoch });
        assert.equal(exact.recovered, true, "exactly 1000 missed still recovers");
        assert.deepEqual(seqs(exact.messages), range(106, 1105));
      } finally {
        bob.close();
      }
    } finally {
      ann.close();
    }
  });

  it("answers recovered false with an epoch from an earlier life of the room (a restarted server)", async () => {
    const first = await startServer(UNLIMITED_RATE);
    const ann = await TestClient.connect(first.url, { name: "ann" });
    const joined = await ann.joinOk("restart");
    await fill(ann, "restart", 5);
    ann.close();
    await first.close();

    const second = await startServer(UNLIMITED_RATE);
    after(() => second.close());
    const bob = await TestClient.connect(second.url, { name: "bob" });
    try {
      const fresh = await bob.joinOk("restart");
      assert.notEqual(fresh.epoch, joined.epoch, "a new process starts a new epoch");
      await fill(bob, "restart", 8); // the new life's head passes the old since
      const again = await TestClient.connect(second.url, { name: "ann" });
      try {
        const ack = await again.joinOk("restart", { since: 5, epoch: joined.epoch });
        assert.equal(ack.recovered, false);
        assert.equal(ack.epoch, fresh.epoch);
        assert.deepEqual(seqs(ack.messages), range(1, 8), "the newest messages of the new life");
      } finally {
        again.close();
      }
    } finally {
      bob.close();
    }
  });
});
