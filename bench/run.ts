/**
 * npm run bench [-- --quick] [-- --help]: roomcast against the Socket.IO peers, same load, same run.
 * Starts its own redis-server, K server processes per system and a load generator process; prints
 * progress; writes bench/results/<date>.json, .md and the saturate chart (.svg); stops everything
 * it started, also on Ctrl-C. docs/benchmark.md explains the scenarios and figures.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { BenchResults, SaturateFigures, ScenarioResult, TrafficFigures } from "./lib/figures.js";
import { killAllNow, stopAll } from "./lib/processes.js";
import { topSelfTime } from "./lib/profile.js";
import { latencyChart, markdown, targets } from "./lib/report.js";
import { alternate, combineRuns, pairOfThree, runIdle, runTraffic, type Layout, type TrafficSpec } from "./lib/scenarios.js";
import { SYSTEMS, usesRedis, type SystemName } from "./lib/systems.js";
import { fmt, log } from "./lib/ui.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SCENARIOS = ["dm", "group", "saturate", "fanout-scale", "idle"] as const;
type Scenario = (typeof SCENARIOS)[number];

const HELP = `npm run bench [-- options]

  --quick                 small and short, for CI (under 2 minutes with the build)
  --scenarios LIST        ${SCENARIOS.join(",")} (default: all)
  --systems LIST          ${SYSTEMS.join(",")} (default: all)
  --warmup S --measure S  seconds of warm-up and of measured window per run (saturate: per step)
  --dm-rooms N            rooms of 2 in dm and saturate (500; quick 100)
  --dm-rate R             messages/s per client in dm (2)
  --group-rooms N --group-size N --group-rate R   (50, 20, 1; quick 10 rooms)
  --saturate-rates LIST   messages/s per client for each saturate step (2,4,6,8,10,12,13,14,15,16,18,20,22,24,26,29,32,36,40; quick 4,16)
  --fanout-rooms N        rooms of 4 in fanout-scale, each on two of three processes (300; quick 60)
  --idle-connections N    (20000; quick 1000)
  --text-bytes N          length of each message's text (64)
  --client-msg-id         send a clientMsgId with every message (roomcast then stores a dedupe key per message)
  --repeat N              runs of dm and group per system, interleaved; figures are medians, losses sums (3; quick 1)
  --retries N             re-run a single run or a saturate step when others' CPU passed --noise-limit (1; quick 0)
  --noise-limit CORES     (0.25)
  --cpu-prof              one extra roomcast dm run with node --cpu-prof; top self-time functions in the report
  --cpu-prof-scenario S   profile group's layout and rate instead of dm's
  --out DIR               where results go (bench/results)
  --no-docs               do not update docs/benchmark.md (a full run with every scenario does)
  --max-minutes M         stop everything after this long (30; quick 5)`;

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    scenarios: { type: "string" },
    systems: { type: "string" },
    warmup: { type: "string" },
    measure: { type: "string" },
    "dm-rooms": { type: "string" },
    "dm-rate": { type: "string" },
    "group-rooms": { type: "string" },
    "group-size": { type: "string" },
    "group-rate": { type: "string" },
    "saturate-rates": { type: "string" },
    "fanout-rooms": { type: "string" },
    "idle-connections": { type: "string" },
    "text-bytes": { type: "string" },
    "client-msg-id": { type: "boolean", default: false },
    retries: { type: "string" },
    repeat: { type: "string" },
    "noise-limit": { type: "string" },
    "cpu-prof": { type: "boolean", default: false },
    "cpu-prof-scenario": { type: "string" },
    out: { type: "string" },
    "no-docs": { type: "boolean", default: false },
    "max-minutes": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});
if (flags.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}

const quick = flags.quick!;
const num = (name: keyof typeof flags, fallback: number, min = Number.MIN_VALUE): number => {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number >= ${min === Number.MIN_VALUE ? "0 (not 0)" : min}, got ${String(raw)}`);
  return n;
};
const list = <T extends string>(raw: string | undefined, allowed: readonly T[]): T[] => {
  if (!raw) return [...allowed];
  const items = raw.split(",").map((s) => s.trim()) as T[];
  for (const item of items) if (!allowed.includes(item)) throw new Error(`unknown ${item}; expected one of ${allowed.join(", ")}`);
  return items;
};

const scenarios = list<Scenario>(flags.scenarios, SCENARIOS);
const systems = list<SystemName>(flags.systems, SYSTEMS);
const sec = (name: "warmup" | "measure", full: number, short: number): number => num(name, quick ? short : full) * 1000;
const textBytes = num("text-bytes", 64);
const retries = num("retries", quick ? 0 : 1, 0) | 0;
const repeat = num("repeat", quick ? 1 : 3, 1) | 0;
const noiseLimit = num("noise-limit", 0.25);
const dmRooms = num("dm-rooms", quick ? 100 : 500);
const dm: Layout = { k: 2, rooms: dmRooms, roomSize: 2, placement: alternate };
const group: Layout = { k: 2, rooms: num("group-rooms", quick ? 10 : 50), roomSize: num("group-size", 20), placement: alternate };
const fanout: Layout = { k: 3, rooms: num("fanout-rooms", quick ? 60 : 300), roomSize: 4, placement: pairOfThree };
const saturateRates = (flags["saturate-rates"] ?? (quick ? "4,16" : "2,4,6,8,10,12,13,14,15,16,18,20,22,24,26,29,32,36,40")).split(",").map(Number);
const idleConnections = num("idle-connections", quick ? 1000 : 20_000);
const outDir = flags.out ?? join(ROOT, "bench", "results");
const maxMs = num("max-minutes", quick ? 5 : 30) * 60_000;

const spec = (scenario: string, layout: Layout, warmup: [number, number], measure: [number, number], extra: Partial<TrafficSpec> = {}): TrafficSpec => ({
  scenario,
  layout,
  warmupMs: sec("warmup", ...warmup),
  measureMs: sec("measure", ...measure),
  drainMs: quick ? 2000 : 5000,
  settleMs: quick ? 200 : 500,
  textBytes,
  clientMsgId: flags["client-msg-id"]!,
  ...extra,
});

// ------------------------------------------------------------------------------------ lifecycle

let interrupted = false;
const onSignal = (signal: string): void => {
  if (interrupted) return;
  interrupted = true;
  log(`\nbench: ${signal}, stopping everything it started`);
  void stopAll().finally(() => process.exit(130));
};
process.once("SIGINT", () => onSignal("SIGINT"));
process.once("SIGTERM", () => onSignal("SIGTERM"));
process.once("exit", killAllNow);
const watchdog = setTimeout(() => onSignal(`time limit of ${maxMs / 60_000} min`), maxMs);
watchdog.unref(); // must not keep the process alive

// ------------------------------------------------------------------------------------ scenarios

async function forEachSystem<T>(scenario: ScenarioResult<T>, run: (system: SystemName) => Promise<T>, only: (s: SystemName) => boolean = () => true): Promise<void> {
  for (const system of systems.filter(only)) {
    if (interrupted) return;
    try {
      scenario.systems[system] = await run(system);
    } catch (err) {
      if (interrupted) return;
      const message = err instanceof Error ? err.message : String(err);
      scenario.errors[system] = message;
      log(`${scenario.name} · ${system}: FAILED: ${message.slice(0, 2000)}`);
    }
  }
}

/**
 * Rounds of one run per system (interleaved, so that a noisy minute hits every system alike); each
 * system's row is the median of its runs. A single run is repeated instead when other work took
 * more than noiseLimit cores during it, keeping the quieter.
 */
async function rounds(scenario: ScenarioResult<TrafficFigures>, s: TrafficSpec, rate: number, count: number, only: (s: SystemName) => boolean = () => true): Promise<void> {
  const runs = new Map<SystemName, TrafficFigures[]>();
  for (let round = 0; round < count && !interrupted; round++) {
    if (count > 1) log(`${scenario.name}: round ${round + 1} of ${count}`);
    await forEachSystem(
      scenario,
      async (system) => {
        const figures = await steady(system, s, rate, count > 1 ? 0 : retries);
        runs.set(system, [...(runs.get(system) ?? []), figures]);
        return combineRuns(runs.get(system)!);
      },
      (system) => only(system) && !scenario.errors[system],
    );
  }
}

async function steady(system: SystemName, s: TrafficSpec, rate: number, retries: number): Promise<TrafficFigures> {
  let best: TrafficFigures | undefined;
  for (let attempt = 0; attempt <= retries && !interrupted; attempt++) {
    const [figures] = await runTraffic(system, s, [rate]);
    if (!best || figures!.otherCpuCores < best.otherCpuCores) best = figures!;
    if (best.otherCpuCores <= noiseLimit) break;
    if (attempt < retries) log(`${s.scenario} · ${system}: others used ${fmt.num(figures!.otherCpuCores, 2)} cores during the window; running it again`);
  }
  return best!;
}

const describeTraffic = (layout: Layout, rate: number, what: string): string =>
  `${what}: ${fmt.int(layout.rooms)} rooms of ${layout.roomSize} members on ${layout.k} processes, ${rate} message(s)/s per client, ${fmt.int(layout.rooms * layout.roomSize * rate)} messages/s, ${fmt.int(layout.rooms * layout.roomSize * rate * layout.roomSize)} deliveries/s offered`;

function saturateFigures(system: SystemName, steps: TrafficFigures[], stoppedBecause: string): SaturateFigures {
  const under = (ms: number): number => Math.max(0, ...steps.filter((f) => f.latencyMs.p99 < ms && f.lost === 0).map((f) => f.deliveriesPerSec));
  return { system, steps, knee50: under(50), knee500: under(500), stoppedBecause };
}

async function main(): Promise<void> {
  const started = Date.now();
  const date = new Date().toISOString().slice(0, 16).replace(/[:T]/g, (c) => (c === "T" ? "-" : ""));
  const stamp = `${date}${quick ? "-quick" : ""}`;
  mkdirSync(outDir, { recursive: true });
  const redisVersion = /v=(\S+)/.exec(spawnSync("redis-server", ["--version"]).stdout?.toString() ?? "")?.[1] ?? "?";
  const results: BenchResults = {
    date: new Date().toISOString(),
    quick,
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "?", node: process.version, redis: redisVersion, loadAverageAtStart: loadavg() },
    source: {
      commit: spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).stdout?.toString().trim() || "?",
      srcDirty: (spawnSync("git", ["status", "--porcelain", "--", "src"], { cwd: ROOT }).stdout?.toString().trim() ?? "") !== "",
    },
    options: { scenarios, systems, dm, group, fanout, saturateRates, idleConnections, textBytes, clientMsgId: flags["client-msg-id"], retries, repeat, noiseLimit, warmupMs: sec("warmup", 3, 0.5), measureMs: sec("measure", 10, 1.5) },
    durationSec: 0,
  };
  log(`bench: ${scenarios.join(", ")} against ${systems.join(", ")}${quick ? " (quick)" : ""}; load average ${loadavg().map((n) => n.toFixed(2)).join(" ")}`);
  if (loadavg()[0]! > 1.5) log(`bench: the machine is busy already (load ${loadavg()[0]!.toFixed(1)}); figures will be noisy`);

  const dmRate = num("dm-rate", 2);
  const groupRate = num("group-rate", 1);
  if (scenarios.includes("dm")) {
    const s = spec("dm", dm, [3, 0.5], [10, 1.5]);
    results.dm = { name: "dm", description: describeTraffic(dm, dmRate, "direct messages"), params: { ...s, layout: dm, rate: dmRate }, systems: {}, errors: {} };
    await rounds(results.dm, s, dmRate, repeat);
  }
  if (scenarios.includes("group") && !interrupted) {
    const s = spec("group", group, [3, 0.5], [10, 1.5]);
    results.group = { name: "group", description: describeTraffic(group, groupRate, "group chat"), params: { ...s, layout: group, rate: groupRate }, systems: {}, errors: {} };
    await rounds(results.group, s, groupRate, repeat);
  }
  if (scenarios.includes("fanout-scale") && !interrupted) {
    const s = spec("fanout-scale", fanout, [3, 0.5], [8, 1.5], { tap: true });
    results.fanout = {
      name: "fanout-scale",
      description: `${describeTraffic(fanout, 1, "three processes")}; each room's members are on two of the three. Each process's Redis connections pass through a counting proxy.`,
      params: { ...s, layout: fanout, rate: 1 },
      systems: {},
      errors: {},
    };
    await rounds(results.fanout, s, 1, 1, usesRedis);
  }
  if (scenarios.includes("idle") && !interrupted) {
    results.idle = {
      name: "idle",
      description: `${fmt.int(idleConnections)} connections on 2 processes, each in one room of 2 (members on both processes), no traffic. The plain peer runs as 2 independent processes here: one process may hold at most 20,000 file descriptors on this machine.`,
      params: { connections: idleConnections },
      systems: {},
      errors: {},
    };
    await forEachSystem(results.idle, (system) => runIdle(system, idleConnections, quick ? 500 : 5000, quick ? 1000 : 8000));
  }
  if (scenarios.includes("saturate") && !interrupted) {
    const s = spec("saturate", dm, [2, 0.5], [5, 1.5], { drainMs: quick ? 2000 : 3000, retries, noiseLimit });
    results.saturate = {
      name: "saturate",
      description: `dm's layout (${fmt.int(dm.rooms)} rooms of 2 on 2 processes) with the rate per client stepped through ${saturateRates.join(", ")} messages/s, until deliveries/s stop growing or p99 passes 500 ms. Knee: the highest deliveries/s with p99 under 50 ms (and no loss).`,
      params: { ...s, rates: saturateRates },
      systems: {},
      errors: {},
    };
    await forEachSystem(results.saturate, async (system) => {
      let stoppedBecause = "last step";
      const steps = await runTraffic(system, s, saturateRates, (done) => {
        const last = done.at(-1)!;
        const before = done.at(-2);
        if (last.latencyMs.p99 > 500) stoppedBecause = "p99 over 500 ms";
        else if (before && last.deliveriesPerSec < before.deliveriesPerSec * 1.05) stoppedBecause = "deliveries/s stopped growing";
        else if (last.lost > last.expected * 0.01) stoppedBecause = "losing messages";
        else if (last.sentPerSec < last.offeredMsgPerSec * 0.9) stoppedBecause = "the generator could not send faster";
        else return true;
        return false;
      });
      return saturateFigures(system, steps, stoppedBecause);
    });
  }
  if (flags["cpu-prof"] && !interrupted && systems.includes("roomcast")) {
    const dir = join(outDir, `${stamp}-profile`);
    mkdirSync(dir, { recursive: true });
    const profiled = flags["cpu-prof-scenario"] === "group" ? "group" : "dm";
    log(`profile: one more roomcast ${profiled} run with --cpu-prof (not in the tables: profiling slows it)`);
    const [layout, rate] = profiled === "group" ? [group, groupRate] : [dm, dmRate];
    const [run] = await runTraffic("roomcast", spec(`${profiled}-profile`, layout, [3, 0.5], [10, 1.5], { cpuProfDir: dir }), [rate]);
    const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile")).map((f) => join(dir, f));
    // The measured window only: startup, joins and shutdown are not what a message costs.
    let top = run ? topSelfTime(files, ROOT, 20, run.windowMonoUs) : [];
    const windowOnly = top.length > 0;
    if (!windowOnly) top = topSelfTime(files, ROOT, 20);
    results.profile = { scenario: profiled, files: files.map((f) => f.replace(ROOT, "")), windowOnly, top, ...(run && { run }) };
  }

  results.durationSec = (Date.now() - started) / 1000;
  const chartFile = results.saturate ? `${stamp}-saturate.svg` : undefined;
  if (results.saturate && chartFile) writeFileSync(join(outDir, chartFile), latencyChart(results.saturate));
  writeFileSync(join(outDir, `${stamp}.json`), `${JSON.stringify(results, null, 1)}\n`);
  const md = markdown(results, chartFile);
  writeFileSync(join(outDir, `${stamp}.md`), md);
  log(`\n${md}`);
  log(`bench: wrote ${join(outDir, stamp)}.{json,md}${chartFile ? ` and ${chartFile}` : ""} in ${fmt.num(results.durationSec / 60)} min`);
  const complete = SCENARIOS.every((s) => scenarios.includes(s)) && systems.length === SYSTEMS.length;
  if (!quick && complete && !flags["no-docs"] && !interrupted) updateDocs(md, stamp, chartFile);
  const unmet = targets(results).filter((t) => t.met === false).length;
  if (unmet > 0) log(`bench: ${unmet} of issue 4's targets not met in this run (see the Targets table)`);
  const failures = [results.dm, results.group, results.fanout, results.idle, results.saturate].filter(Boolean).flatMap((s) => Object.keys(s!.errors));
  process.exitCode = failures.length > 0 ? 1 : 0;
}

/** Puts the latest full table and chart into docs/benchmark.md, between its markers. */
function updateDocs(md: string, stamp: string, chartFile: string | undefined): void {
  const file = join(ROOT, "docs", "benchmark.md");
  let doc: string;
  try {
    doc = readFileSync(file, "utf8");
  } catch {
    return;
  }
  const start = "<!-- latest-results:start -->";
  const end = "<!-- latest-results:end -->";
  const a = doc.indexOf(start);
  const b = doc.indexOf(end);
  if (a < 0 || b < a) return;
  const body = md
    .replace(/^# .*\n/, `Run of ${stamp} (\`bench/results/${stamp}.md\`, \`.json\`):\n`)
    .replace(/^## /gm, "### ")
    .replace(/\]\((\S+\.svg)\)/g, (_m, f: string) => `](../bench/results/${f})`);
  writeFileSync(file, `${doc.slice(0, a + start.length)}\n${body}\n${doc.slice(b)}`);
  log(`bench: updated docs/benchmark.md${chartFile ? " and its chart" : ""}`);
}

main()
  .catch((err: unknown) => {
    log(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    clearTimeout(watchdog);
    if (!interrupted) await stopAll();
  });
