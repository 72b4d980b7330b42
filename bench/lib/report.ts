import type { BenchResults, IdleFigures, SaturateFigures, ScenarioResult, TrafficFigures } from "./figures.js";
import { SYSTEMS, SYSTEM_LABELS, type SystemName } from "./systems.js";
import { fmt } from "./ui.js";

const PEERS: SystemName[] = ["classic", "sharded", "plain"];
/**
 * The peers issue 4's latency and knee goals name: what a user would run instead to scale out
 * (Socket.IO with the Redis adapter, classic and sharded). The plain single process cannot scale
 * out; it is shown beside them as the floor, not as a peer to beat.
 */
const SCALE_OUT_PEERS: SystemName[] = ["classic", "sharded"];
const COLORS: Record<SystemName, string> = { roomcast: "#d62728", classic: "#1f77b4", sharded: "#2ca02c", plain: "#7f7f7f" };

const row = (cells: Array<string | number>): string => `| ${cells.join(" | ")} |`;
const header = (cells: string[]): string => `${row(cells)}\n${row(cells.map((c) => (c === "system" || c === "target" || c === "peer" ? "---" : "---:")))}`;
const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : a / b;
const lossCell = (f: TrafficFigures): string => {
  const a = f.windowAcks;
  const extra = [
    f.duplicates ? `${fmt.int(f.duplicates)} dup` : "",
    a.failed ? `${fmt.int(a.failed)} error acks ${JSON.stringify(f.ackErrors)}` : "",
    a.unacked ? `${fmt.int(a.unacked)} unacked` : "",
    a.ackedOkButLost ? `**${fmt.int(a.ackedOkButLost)} acked ok but lost**` : "",
    a.failedButDelivered ? `${fmt.int(a.failedButDelivered)} delivered despite an error ack` : "",
    f.closedConnections ? `${f.closedConnections} closed` : "",
  ].filter(Boolean);
  return `${fmt.int(f.lost)}${extra.length ? ` (${extra.join(", ")})` : ""}`;
};

function trafficTable(scenario: ScenarioResult<TrafficFigures>): string {
  const lines = [
    header(["system", "procs", "offered deliveries/s", "deliveries/s", "p50 ms", "p99 ms", "max ms", "lost", "server CPU us/delivery", "server cores", "server syscalls/delivery", "server wake-ups/delivery", "Redis CPU us/msg", "RSS MB per process", "RSS KB/conn", "generator cores", "others' cores"]),
  ];
  for (const system of SYSTEMS) {
    const f = scenario.systems[system];
    if (!f) {
      if (scenario.errors[system]) lines.push(row([system, "failed: " + scenario.errors[system]!.split("\n")[0]!.slice(0, 160), ...Array<string>(15).fill("")]));
      continue;
    }
    lines.push(
      row([
        system,
        f.processes,
        fmt.int(f.offeredDeliveriesPerSec),
        fmt.int(f.deliveriesPerSec),
        fmt.ms(f.latencyMs.p50),
        fmt.ms(f.latencyMs.p99),
        fmt.ms(f.latencyMs.max),
        lossCell(f),
        fmt.num(f.serverCpuUsPerDelivery),
        fmt.num(f.serverCpuCores, 2),
        fmt.num(f.serverSyscallsPerDelivery, 2),
        fmt.num(f.serverWakeupsPerDelivery, 2),
        fmt.num(f.redisCpuUsPerMessage),
        f.rssMBPerProcess.map((m) => fmt.num(m, 0)).join(" + "),
        fmt.num(f.rssKBPerConnection),
        fmt.num(f.generatorCpuCores, 2),
        fmt.num(f.otherCpuCores, 2),
      ]),
    );
  }
  const repeated = SYSTEMS.filter((sys) => (scenario.systems[sys]?.runs ?? 1) > 1);
  if (repeated.length > 0) {
    lines.push("", `Figures above are medians of ${scenario.systems[repeated[0]!]!.runs} runs per system (rounds interleaved); lost is the sum. Each run:`, "", header(["system", "server CPU us/delivery", "p50 ms", "p99 ms", "Redis CPU us/msg", "lost", "others' cores"]));
    for (const sys of repeated) {
      const runs = scenario.systems[sys]!.perRun ?? [];
      const col = (pick: (r: (typeof runs)[number]) => string): string => runs.map(pick).join(" / ");
      lines.push(row([sys, col((r) => fmt.num(r.serverCpuUsPerDelivery)), col((r) => fmt.ms(r.p50)), col((r) => fmt.ms(r.p99)), col((r) => fmt.num(r.redisCpuUsPerMessage)), col((r) => fmt.int(r.lost)), col((r) => fmt.num(r.otherCpuCores, 2))]));
    }
  }
  const rc = scenario.systems.roomcast;
  if (rc) {
    lines.push("", `Ratios roomcast / peer (below 1 is better for roomcast, except deliveries/s):`, "", header(["peer", "server CPU per delivery", "p50", "p99", "Redis CPU per message", "RSS per connection", "deliveries/s"]));
    for (const peer of PEERS) {
      const p = scenario.systems[peer];
      if (!p) continue;
      lines.push(
        row([
          peer,
          fmt.ratio(ratio(rc.serverCpuUsPerDelivery, p.serverCpuUsPerDelivery)),
          fmt.ratio(ratio(rc.latencyMs.p50, p.latencyMs.p50)),
          fmt.ratio(ratio(rc.latencyMs.p99, p.latencyMs.p99)),
          fmt.ratio(ratio(rc.redisCpuUsPerMessage, p.redisCpuUsPerMessage)),
          fmt.ratio(ratio(rc.rssKBPerConnection, p.rssKBPerConnection)),
          fmt.ratio(ratio(rc.deliveriesPerSec, p.deliveriesPerSec)),
        ]),
      );
    }
  }
  return lines.join("\n");
}

function saturateTables(scenario: ScenarioResult<SaturateFigures>, chartFile: string | undefined): string {
  const lines = [header(["system", "knee: deliveries/s with p99 < 50 ms", "highest with p99 < 500 ms", "most achieved", "stopped because"])];
  for (const system of SYSTEMS) {
    const s = scenario.systems[system];
    if (!s) {
      if (scenario.errors[system]) lines.push(row([system, "failed: " + scenario.errors[system]!.split("\n")[0]!.slice(0, 160), "", "", ""]));
      continue;
    }
    lines.push(row([system, fmt.int(s.knee50), fmt.int(s.knee500), fmt.int(Math.max(0, ...s.steps.map((f) => f.deliveriesPerSec))), s.stoppedBecause]));
  }
  const rc = scenario.systems.roomcast;
  const bestPeer = Math.max(0, ...SCALE_OUT_PEERS.map((p) => scenario.systems[p]?.knee50 ?? 0));
  const plain = scenario.systems.plain?.knee50;
  if (rc && bestPeer > 0) lines.push("", `Knee ratio roomcast / best scale-out peer (classic, sharded): ${fmt.ratio(rc.knee50 / bestPeer)}${rc && plain ? `; roomcast / plain single process: ${fmt.ratio(rc.knee50 / plain)}` : ""}`);
  if (chartFile) lines.push("", `![latency against offered load](${chartFile})`);
  lines.push("", "Steps:", "", header(["system", "offered deliveries/s", "deliveries/s", "p50 ms", "p99 ms", "max ms", "lost", "server CPU us/delivery", "server cores", "Redis cores", "generator cores", "generator loop delay p99 ms", "others' cores"]));
  for (const system of SYSTEMS) {
    for (const f of scenario.systems[system]?.steps ?? []) {
      lines.push(
        row([
          system,
          fmt.int(f.offeredDeliveriesPerSec),
          fmt.int(f.deliveriesPerSec),
          fmt.ms(f.latencyMs.p50),
          fmt.ms(f.latencyMs.p99),
          fmt.ms(f.latencyMs.max),
          lossCell(f),
          fmt.num(f.serverCpuUsPerDelivery),
          fmt.num(f.serverCpuCores, 2),
          fmt.num(f.redisCpuCores, 2),
          fmt.num(f.generatorCpuCores, 2),
          fmt.ms(f.generatorLoopDelayP99Ms),
          fmt.num(f.otherCpuCores, 2),
        ]),
      );
    }
  }
  return lines.join("\n");
}

function fanoutTable(scenario: ScenarioResult<TrafficFigures>): string {
  const lines = [header(["system", "received from Redis per message sent, per process", "amplification", "subscriptions per process (channels/patterns/shard channels)", "deliveries/s", "p99 ms", "lost", "Redis CPU us/msg"])];
  for (const system of SYSTEMS) {
    const f = scenario.systems[system];
    if (!f) {
      if (scenario.errors[system]) lines.push(row([system, "failed: " + scenario.errors[system]!.split("\n")[0]!.slice(0, 160), "", "", "", "", "", ""]));
      continue;
    }
    lines.push(
      row([
        system,
        (f.receivedPerMessage ?? []).map((n) => fmt.num(n, 2)).join(" / "),
        fmt.num(f.amplification, 2),
        (f.subscriptions ?? []).map((s) => `${s.sub}/${s.psub}/${s.ssub}`).join(", "),
        fmt.int(f.deliveriesPerSec),
        fmt.ms(f.latencyMs.p99),
        lossCell(f),
        fmt.num(f.redisCpuUsPerMessage),
      ]),
    );
  }
  return lines.join("\n");
}

function idleTable(scenario: ScenarioResult<IdleFigures>): string {
  const lines = [header(["system", "connections", "connect s", "RSS MB per process", "RSS KB/conn", "Redis KB/conn", "idle server CPU, % of a core", "still open", "others' cores"])];
  for (const system of SYSTEMS) {
    const f = scenario.systems[system];
    if (!f) {
      if (scenario.errors[system]) lines.push(row([system, "failed: " + scenario.errors[system]!.split("\n")[0]!.slice(0, 160), "", "", "", "", "", "", ""]));
      continue;
    }
    lines.push(
      row([
        system,
        fmt.int(f.connections) + (f.failed ? ` (${f.failed} failed)` : ""),
        fmt.num(f.connectMs / 1000),
        f.rssMBPerProcess.map((m) => fmt.num(m, 0)).join(" + "),
        fmt.num(f.rssKBPerConnection),
        fmt.num(f.redisKBPerConnection),
        fmt.num(f.idleCpuCores * 100),
        fmt.int(f.stillOpen),
        fmt.num(f.otherCpuCores, 2),
      ]),
    );
  }
  const rc = scenario.systems.roomcast;
  if (rc) {
    const ratios = PEERS.filter((p) => scenario.systems[p]).map((p) => `${p} ${fmt.ratio(ratio(rc.rssKBPerConnection, scenario.systems[p]!.rssKBPerConnection))}`);
    lines.push("", `Memory per connection, roomcast / peer: ${ratios.join(", ")}`);
  }
  return lines.join("\n");
}

export interface TargetRow {
  target: string;
  value: string;
  goal: string;
  met: boolean | null;
}

/** Issue 4's goals, checked against this run's figures. */
export function targets(results: BenchResults): TargetRow[] {
  const out: TargetRow[] = [];
  const check = (target: string, value: number | null, goal: number, goalText: string, lower = true): void => {
    out.push({ target, value: value === null ? "-" : fmt.ratio(value), goal: goalText, met: value === null ? null : lower ? value <= goal : value >= goal });
  };
  const reference = (target: string, value: number | null): void => {
    if (value !== null) out.push({ target, value: fmt.ratio(value), goal: "(reference)", met: null });
  };
  for (const name of ["dm", "group"] as const) {
    const s = results[name];
    const rc = s?.systems.roomcast;
    if (!s || !rc) continue;
    check(`${name}: server CPU/delivery vs classic`, ratio(rc.serverCpuUsPerDelivery, s.systems.classic?.serverCpuUsPerDelivery), 0.5, "<= 0.5x");
    check(`${name}: server CPU/delivery vs sharded`, ratio(rc.serverCpuUsPerDelivery, s.systems.sharded?.serverCpuUsPerDelivery), 0.6, "<= 0.6x");
    const bestP99 = Math.min(...SCALE_OUT_PEERS.map((p) => s.systems[p]?.latencyMs.p99 ?? Infinity));
    check(`${name}: p99 vs best peer's (classic, sharded)`, Number.isFinite(bestP99) ? ratio(rc.latencyMs.p99, bestP99) : null, 1, "<= 1.0x");
    reference(`${name}: p99 vs plain single process`, ratio(rc.latencyMs.p99, s.systems.plain?.latencyMs.p99));
    check(`${name}: Redis CPU/message vs classic`, ratio(rc.redisCpuUsPerMessage, s.systems.classic?.redisCpuUsPerMessage), 1.5, "<= 1.5x");
  }
  const sat = results.saturate;
  if (sat?.systems.roomcast) {
    const best = Math.max(0, ...SCALE_OUT_PEERS.map((p) => sat.systems[p]?.knee50 ?? 0));
    check("saturate: knee vs best peer's (classic, sharded)", best > 0 ? sat.systems.roomcast.knee50 / best : null, 1.5, ">= 1.5x", false);
    const plain = sat.systems.plain?.knee50;
    reference("saturate: knee vs plain single process", plain ? sat.systems.roomcast.knee50 / plain : null);
  }
  const fan = results.fanout?.systems.roomcast;
  if (fan?.amplification !== undefined) out.push({ target: "fanout-scale: amplification", value: fmt.num(fan.amplification, 2), goal: "1.00", met: Math.abs(fan.amplification - 1) < 0.005 });
  const idle = results.idle;
  if (idle?.systems.roomcast) {
    const peers = PEERS.map((p) => idle.systems[p]?.rssKBPerConnection).filter((v): v is number => v !== undefined && v > 0);
    check("idle: memory per connection vs Socket.IO's (lowest peer)", peers.length ? idle.systems.roomcast.rssKBPerConnection / Math.min(...peers) : null, 0.7, "<= 0.7x");
  }
  const lost = (["dm", "group", "fanout"] as const).map((n) => results[n]?.systems.roomcast?.lost ?? 0).reduce((a, b) => a + b, 0);
  const satLost = (results.saturate?.systems.roomcast?.steps ?? []).filter((f) => f.latencyMs.p99 < 500).reduce((a, f) => a + f.lost, 0);
  out.push({ target: "zero loss (dm, group, fanout-scale; saturate steps under 500 ms p99)", value: fmt.int(lost + satLost), goal: "0", met: lost + satLost === 0 });
  return out;
}

export function markdown(results: BenchResults, chartFile: string | undefined): string {
  const m = results.machine;
  const parts = [
    `# roomcast benchmark, ${results.date}${results.quick ? " (--quick)" : ""}`,
    "",
    `roomcast at commit ${results.source.commit}${results.source.srcDirty ? " with uncommitted changes in src/" : ""}. ` +
      `${m.cpus} cores (${m.model}), Node ${m.node}, Redis ${m.redis}; load average at start ${m.loadAverageAtStart.map((n) => n.toFixed(2)).join(" ")}; ${fmt.int(results.durationSec)} s in all. ` +
      `Servers, Redis and the generator share the machine. "others' cores" is CPU that no process of the bench used during the window (other work on the machine): a window with much of it is noisy.`,
    "",
    `Systems: ${SYSTEMS.map((s) => `**${s}**: ${SYSTEM_LABELS[s]}`).join("; ")}.`,
  ];
  for (const [name, scenario] of [["dm", results.dm], ["group", results.group]] as const) {
    if (scenario) parts.push("", `## ${name}: ${scenario.description}`, "", trafficTable(scenario));
  }
  if (results.saturate) parts.push("", `## saturate: ${results.saturate.description}`, "", saturateTables(results.saturate, chartFile));
  if (results.fanout) parts.push("", `## fanout-scale: ${results.fanout.description}`, "", fanoutTable(results.fanout));
  if (results.idle) parts.push("", `## idle: ${results.idle.description}`, "", idleTable(results.idle));
  const t = targets(results);
  if (t.length) {
    parts.push("", "## Targets (issue 4)", "", header(["target", "roomcast", "goal", "met"]));
    for (const r of t) parts.push(row([r.target, r.value, r.goal, r.met === null ? "-" : r.met ? "yes" : "**no**"]));
  }
  if (results.profile) {
    const p = results.profile;
    const run = p.run ? ` That run: ${fmt.int(p.run.deliveriesPerSec)} deliveries/s, ${fmt.num(p.run.serverCpuUsPerDelivery)} us/delivery under the profiler.` : "";
    parts.push(
      "",
      `## CPU profile of roomcast (${p.scenario ?? "dm"}, --cpu-prof)`,
      "",
      `Self time of both processes, ${p.windowOnly ? "measured window only" : "whole process lifetime (startup and shutdown included)"}, idle left out.${run} Profiles (not committed): ${p.files.join(", ")}`,
      "",
      header(["self ms", "share", "function", "where"]),
    );
    for (const f of results.profile.top) parts.push(row([fmt.num(f.selfMs, 0), `${fmt.num(f.share * 100)}%`, `\`${f.fn}\``, f.where]));
  }
  return `${parts.join("\n")}\n`;
}

/** Latency (p50 dashed, p99 solid, log scale) against offered deliveries/s, one colour per system. */
export function latencyChart(saturate: ScenarioResult<SaturateFigures>): string {
  const W = 820;
  const H = 460;
  const pad = { left: 70, right: 230, top: 40, bottom: 56 };
  const plotW = W - pad.left - pad.right;
  const plotH = H - pad.top - pad.bottom;
  const all = SYSTEMS.flatMap((s) => saturate.systems[s]?.steps ?? []);
  const xMax = niceCeil(Math.max(1000, ...all.map((f) => f.offeredDeliveriesPerSec)));
  const yMin = 0.1;
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(1000, ...all.map((f) => f.latencyMs.p99).filter(Number.isFinite))));
  const x = (v: number): number => pad.left + (v / xMax) * plotW;
  const y = (ms: number): number => pad.top + plotH - ((Math.log10(Math.max(yMin, ms)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * plotH;
  const el: string[] = [];
  el.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  el.push(`<text x="${pad.left}" y="22" font-size="15" font-weight="bold">Latency against offered load (dm, stepped up): p99 solid, p50 dashed</text>`);
  for (let d = Math.log10(yMin); d <= Math.log10(yMax) + 1e-9; d++) {
    const v = 10 ** d;
    el.push(`<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    el.push(`<text x="${pad.left - 8}" y="${y(v) + 4}" font-size="11" text-anchor="end">${v >= 1 ? v.toFixed(0) : v.toFixed(1)}</text>`);
  }
  for (const limit of [50, 500]) {
    el.push(`<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${y(limit)}" y2="${y(limit)}" stroke="#999" stroke-dasharray="2,3"/>`);
    el.push(`<text x="${pad.left + plotW - 4}" y="${y(limit) - 4}" font-size="10" text-anchor="end" fill="#666">${limit} ms</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const v = (xMax * i) / 5;
    el.push(`<line x1="${x(v)}" x2="${x(v)}" y1="${pad.top}" y2="${pad.top + plotH}" stroke="#eee"/>`);
    el.push(`<text x="${x(v)}" y="${pad.top + plotH + 18}" font-size="11" text-anchor="middle">${fmt.int(v)}</text>`);
  }
  el.push(`<rect x="${pad.left}" y="${pad.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  el.push(`<text x="${pad.left + plotW / 2}" y="${H - 14}" font-size="12" text-anchor="middle">offered deliveries per second</text>`);
  el.push(`<text transform="translate(18 ${pad.top + plotH / 2}) rotate(-90)" font-size="12" text-anchor="middle">latency, ms (log scale)</text>`);
  let legendY = pad.top + 10;
  for (const system of SYSTEMS) {
    const steps = saturate.systems[system]?.steps ?? [];
    if (steps.length === 0) continue;
    const color = COLORS[system];
    for (const [key, dash] of [["p99", ""], ["p50", ' stroke-dasharray="6,4"']] as const) {
      const points = steps.filter((f) => Number.isFinite(f.latencyMs[key])).map((f) => `${x(f.offeredDeliveriesPerSec).toFixed(1)},${y(f.latencyMs[key]).toFixed(1)}`);
      el.push(`<polyline points="${points.join(" ")}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
      for (const p of points) {
        const [px, py] = p.split(",");
        el.push(`<circle cx="${px}" cy="${py}" r="${key === "p99" ? 3 : 2}" fill="${color}"/>`);
      }
    }
    el.push(`<line x1="${pad.left + plotW + 16}" x2="${pad.left + plotW + 40}" y1="${legendY}" y2="${legendY}" stroke="${color}" stroke-width="3"/>`);
    el.push(`<text x="${pad.left + plotW + 46}" y="${legendY + 4}" font-size="12">${system} (knee ${fmt.int(saturate.systems[system]!.knee50)}/s)</text>`);
    legendY += 22;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">\n${el.join("\n")}\n</svg>\n`;
}

function niceCeil(v: number): number {
  const step = 10 ** Math.floor(Math.log10(v));
  return Math.ceil(v / (step / 2)) * (step / 2);
}
