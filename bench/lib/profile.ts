import { readFileSync } from "node:fs";

interface CpuProfile {
  startTime: number;
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Top self-time functions over V8 .cpuprofile files (node --cpu-prof), idle time left out. With a
 * window (monotonic clock, us: the clock V8 stamps samples with), only the samples inside it.
 */
export function topSelfTime(
  files: string[],
  root: string,
  count = 20,
  window?: [number, number],
): Array<{ selfMs: number; share: number; fn: string; where: string }> {
  const self = new Map<string, { us: number; fn: string; where: string }>();
  let total = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
    let at = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      const frame = byId.get(profile.samples[i]!);
      const us = profile.timeDeltas[i] ?? 0;
      at += us;
      if (window && (at < window[0] || at > window[1])) continue;
      if (!frame || frame.functionName === "(idle)") continue;
      const url = frame.url.replace(/^file:\/\//, "").replace(root, "").replace(/^\//, "");
      const where = url ? `${url.replace(/^.*node_modules\//, "")}:${frame.lineNumber + 1}` : "";
      const fn = frame.functionName || "(anonymous)";
      const key = `${fn}|${where}`;
      const entry = self.get(key) ?? { us: 0, fn, where };
      entry.us += us;
      self.set(key, entry);
      total += us;
    }
  }
  return [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, count)
    .map((e) => ({ selfMs: e.us / 1000, share: e.us / Math.max(1, total), fn: e.fn, where: e.where }));
}
