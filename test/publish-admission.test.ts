import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PublishAdmission } from "../src/bus/publish-admission.js";

// A pure function of the clock it is given: no network here, so explicit times stand in for waiting.
describe("PublishAdmission", () => {
  it("admits while the oldest in flight has waited at most maxWait, and again once it is done", () => {
    const admission = new PublishAdmission(500, 100);
    const first = admission.admit(1000)!;
    assert.ok(first);
    const second = admission.admit(1400)!;
    assert.ok(admission.admit(1500), "the oldest has waited exactly 500 ms");
    assert.equal(admission.admit(1501), undefined, "the oldest has waited 501 ms");
    admission.done(first);
    assert.ok(admission.admit(1600), "now the oldest is the second, 200 ms old");
    admission.done(second);
  });

  it("bounds how many wait, whatever their age", () => {
    const admission = new PublishAdmission(60_000, 3);
    const tickets = [admission.admit(0)!, admission.admit(0)!, admission.admit(0)!];
    assert.equal(admission.admit(1), undefined);
    admission.done(tickets[1]!); // done out of order: still three counted until the head is done
    assert.equal(admission.admit(1), undefined);
    admission.done(tickets[0]!);
    assert.ok(admission.admit(1));
  });

  it("forgets finished tickets, so a long run does not grow its queue", () => {
    const admission = new PublishAdmission(500, 10);
    for (let i = 0; i < 100_000; i++) admission.done(admission.admit(i)!);
    assert.equal((admission as unknown as { waiting: unknown[] }).waiting.length, 0);
  });
});
