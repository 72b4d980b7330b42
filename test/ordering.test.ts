import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Ack, JoinResult } from "../src/protocol.js";
import { waitUntil, type TestClient } from "./helpers/client.js";
import { range, redisServerPair, singleServerPair, UNLIMITED_RATE, type PairFixture } from "./helpers/fixture.js";

/** Joins and notes how many of the room's messages had arrived when the ack did (it must be none). */
function joinMarked(client: TestClient, room: string, extra: Record<string, unknown> = {}): Promise<{ ack: JoinResult; before: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no join ack for ${room}`)), 5000);
    client.socket.emit("join", { room, ...extra }, (ack: Ack<JoinResult>) => {
      clearTimeout(timer);
      if (!ack.ok) reject(new Error(`join failed: ${ack.error.code}`));
      else resolve({ ack, before: client.messagesIn(room).length });
    });
  });
}

/** Senders that each send one message after another until stopped. */
function startFlow(senders: TestClient[], room: string) {
  let running = true;
  const seqs: number[] = [];
  const loops = senders.map(async (sender, i) => {
    for (let n = 0; running; n++) seqs.push((await sender.sendOk(room, `s${i}-${n}`)).seq);
  });
  return {
    count: () => seqs.length,
    /** Lets at least `n` more messages through. */
    async advance(n: number) {
      const target = seqs.length + n;
      await waitUntil(() => seqs.length >= target, `${n} more messages`);
    },
    /** Stops sending and returns the last seq. */
    async stop(): Promise<number> {
      running = false;
      await Promise.all(loops);
      return Math.max(...seqs);
    },
  };
}

const seqsOf = (client: TestClient, room: string): number[] => client.messagesIn(room).map((m) => m.seq);

/**
 * Senders connect to server 0, joiners and listeners to server 1. With the memory bus that is one
 * server; over Redis the joiners' process receives the flow through pub/sub while it joins, so
 * the joining buffer and the catching-up state are really exercised.
 */
function orderingSuite(label: string, pair: (options: object) => PairFixture): void {
describe(`ordering and the join handover (${label})`, () => {
  const fx = pair({ ...UNLIMITED_RATE, historyLimit: 5000 });

  it("numbers a room's messages 1..N without gaps, in one order for every member, with senders sending at once", async () => {
    const room = "order";
    const senders = await Promise.all(range(1, 5).map((i) => fx.connect(`sender${i}`, 0)));
    const listeners = await Promise.all(range(1, 2).map((i) => fx.connect(`listener${i}`, 1)));
    const everyone = [...senders, ...listeners];
    for (const c of everyone) await c.joinOk(room);

    const perSender = 40;
    const acks = await Promise.all(senders.flatMap((s, i) => range(1, perSender).map((n) => s.sendOk(room, `${i}:${n}`))));
    const total = senders.length * perSender;
    assert.deepEqual(acks.map((a) => a.seq).sort((a, b) => a - b), range(1, total), "acks carry every seq once");

    for (const c of everyone) await c.until(() => c.messagesIn(room).length >= total, `${c.hello!.user.name} gets all`);
    const reference = everyone[0]!.messagesIn(room);
    assert.deepEqual(reference.map((m) => m.seq), range(1, total));
    for (const c of everyone) {
      assert.deepEqual(c.messagesIn(room), reference, `${c.hello!.user.name} sees the same messages in the same order`);
    }
    // Each ack names the message the members got under that seq.
    const bySeq = new Map(reference.map((m) => [m.seq, m]));
    for (const ack of acks) assert.equal(bySeq.get(ack.seq)!.ts, ack.ts);
  });

  it("hands over exactly on join: after the ack, every message with seq > head, live, once each, while others send", async () => {
    const room = "handover";
    const senders = await Promise.all(range(1, 3).map((i) => fx.connect(`flow${i}`, 0)));
    for (const s of senders) await s.joinOk(room);
    const flow = startFlow(senders, room);

    const joins: Array<{ client: TestClient; ack: JoinResult; before: number }> = [];
    for (let i = 0; i < 8; i++) {
      await flow.advance(15);
      const client = await fx.connect(`joiner${i}`, 1);
      joins.push({ client, ...(await joinMarked(client, room)) });
    }
    await flow.advance(15);
    const last = await flow.stop();

    assert.ok(joins.some((j) => j.ack.head > 0 && j.ack.head < last - 15), "joins happened during the flow");
    for (const { client, ack, before } of joins) {
      const name = client.hello!.user.name;
      assert.equal(before, 0, `${name}: nothing live before the ack`);
      assert.deepEqual(
        ack.messages.map((m) => m.seq),
        range(Math.max(1, ack.head - 49), ack.head),
        `${name}: the ack holds the newest 50 messages up to head`,
      );
      assert.ok(ack.members.some((m) => m.id === client.id), `${name}: members include the joiner`);
      await client.until(() => seqsOf(client, room).at(-1) === last, `${name} reaches seq ${last}`);
      assert.deepEqual(seqsOf(client, room), range(ack.head + 1, last), `${name}: live from head + 1, no gap, no duplicate`);
    }
  });

  it("hands over exactly on a join with since: the missed messages in the ack, then live from head + 1", async () => {
    const room = "handover-since";
    const senders = await Promise.all(range(1, 3).map((i) => fx.connect(`flow${i}`, 0)));
    for (const s of senders) await s.joinOk(room);
    const flow = startFlow(senders, room);

    const rejoins: Array<{ client: TestClient; since: number; ack: JoinResult; before: number }> = [];
    for (let i = 0; i < 5; i++) {
      await flow.advance(10);
      // A client that saw part of the room, then lost its connection while the room went on.
      const first = await fx.connect(`dropper${i}`, 1);
      const { ack: firstAck } = await joinMarked(first, room);
      await flow.advance(10);
      await first.until(() => first.messagesIn(room).length > 0, "a live message");
      first.close();
      const since = seqsOf(first, room).at(-1)!;
      await flow.advance(10);

      const again = await fx.connect(`dropper${i}`, 1);
      rejoins.push({ client: again, since, ...(await joinMarked(again, room, { since, epoch: firstAck.epoch })) });
    }
    await flow.advance(10);
    const last = await flow.stop();

    for (const { client, since, ack, before } of rejoins) {
      const name = client.hello!.user.name;
      assert.equal(before, 0, `${name}: nothing live before the ack`);
      assert.equal(ack.recovered, true, `${name}: recovered`);
      assert.ok(ack.head > since, `${name}: messages were missed`);
      assert.deepEqual(ack.messages.map((m) => m.seq), range(since + 1, ack.head), `${name}: exactly the missed messages`);
      await client.until(() => seqsOf(client, room).at(-1) === last, `${name} reaches seq ${last}`);
      assert.deepEqual(seqsOf(client, room), range(ack.head + 1, last), `${name}: live from head + 1, no gap, no duplicate`);
    }
  });
});
}

orderingSuite("memory", singleServerPair);
orderingSuite("redis", redisServerPair);
