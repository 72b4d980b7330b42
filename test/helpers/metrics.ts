import assert from "node:assert/strict";

/** A metric's value (one without labels) on a server's /metrics. */
export async function metricValue(serverUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${serverUrl}/metrics`)).text();
  const value = new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1];
  assert.ok(value !== undefined, `${name} on /metrics`);
  return Number(value);
}
