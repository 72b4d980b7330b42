import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as ws from "ws";
import { textFrame } from "../src/transport/direct/wire-packets.js";

type FrameFn = (data: Buffer, options: Record<string, boolean | number>) => Buffer[];
// ws exports Sender; its typings do not declare it.
const wsFrame = (ws as unknown as { Sender: { frame: FrameFn } }).Sender.frame;

describe("direct transport frames", () => {
  it("are byte for byte what ws builds, across the three length encodings and multi-byte text", () => {
    for (const bytes of [0, 1, 125, 126, 127, 65_535, 65_536, 70_001]) {
      const text = "é".repeat(Math.floor(bytes / 2)) + (bytes % 2 ? "a" : "");
      const [header, payload] = wsFrame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false });
      assert.deepEqual(textFrame(text), Buffer.concat([header!, payload!]), `${bytes} bytes`);
    }
  });
});
