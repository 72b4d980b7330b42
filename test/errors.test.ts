import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ERROR_CATALOGUE } from "../src/errors.js";
import { ERROR_CODES } from "../src/protocol.js";

const PROTOCOL_DOC = fileURLToPath(new URL("../../docs/protocol.md", import.meta.url));

/** The codes in the first column of the table in docs/protocol.md's "## Errors" section: rows like "| `bad_request` | ... |". */
function documentedCodes(): string[] {
  const text = readFileSync(PROTOCOL_DOC, "utf8");
  const section = /^## Errors\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(text);
  assert.ok(section, "docs/protocol.md has an ## Errors section");
  return [...section[1]!.matchAll(/^\|\s*`([a-z_]+)`\s*\|/gm)].map((m) => m[1]!);
}

describe("the error catalogue", () => {
  it("has a meaning for every protocol error code, and no other", () => {
    assert.deepEqual(Object.keys(ERROR_CATALOGUE).sort(), [...ERROR_CODES].sort());
    for (const [code, meaning] of Object.entries(ERROR_CATALOGUE)) assert.ok(meaning.length > 10, code);
  });

  it("is documented in docs/protocol.md, one row per code, and the table has no unknown code", () => {
    const documented = documentedCodes();
    assert.equal(new Set(documented).size, documented.length, "each code once");
    assert.deepEqual([...documented].sort(), [...ERROR_CODES].sort());
  });
});
