import type { IdleFigures, TrafficFigures } from "./figures.js";
import { GeneratorHandle } from "./generator-handle.js";
import type { ClientPlan, RunResult } from "./generator-protocol.js";
import { machineSample, procSample, sleep } from "./processes.js";
import { BenchRedis } from "./redis-server.js";
import { RedisTap } from "./redis-tap.js";
import { Cluster, usesRedis, type SystemName } from "./systems.js";
import { fmt, log, status } from "./ui.js";

export const NAMESPACE = "/chat";

/** Where each room's members connect: room r's member m goes to process placement(r, m). */
export interface Layout {
  k: number;
  rooms: number;
  roomSize: number;
  placement: (room: number, member: number, k: number) => number;
}

export interface TrafficSpec {
  scenario: string;
  layout: Layout;
  warmupMs: number;
  measureMs: number;
  drainMs: number;
  textBytes: number;
  /** Send a clientMsgId with every message. */
  clientMsgId?: boolean;
  /** Pause after the servers start and after the clients joined (subscriptions settle). */
  settleMs: number;
  /** A window during which other work used more cores than this is measured again, once per retry. */
  noiseLimit?: number;
  retries?: number;
  /** Count what each process receives from Redis (fanout-scale). */
  tap?: boolean;
  cpuProfDir?: string;
}

/** Members alternate between processes: a room of 2 has one member on each of two processes. */
export const alternate = (_room: number, member: number, k: number): number => member % k;
/** Each room on two of three processes, the pair rotating with the room. */
export const pairOfThree = (room: number, member: number, k: number): number => (k < 3 ? member % k : (room + (member % 2)) % 3);

export function plan(layout: Layout, k: number): ClientPlan[] {
  const clients: ClientPlan[] = [];
  for (let r = 0; r < layout.rooms; r++) {
    for (let m = 0; m < layout.roomSize; m++) clients.push({ target: layout.placement(r, m, k) % k, room: `r${r}` });
  }
  return clients;
}

/** The processes a room's members are on. */
function roomProcesses(layout: Layout, k: number): Set<number>[] {
  return Array.from({ length: layout.rooms }, (_, r) => new Set(Array.from({ length: layout.roomSize }, (_, m) => layout.placement(r, m, k) % k)));
}

interface Sample {
  at: number;
  monoUs: number;
  servers: Array<{ cpuUs: number; rssBytes: number; syscalls: number; wakeups: number }>;
  redisCpuUs: number | null;
  machine: { busyUs: number; totalUs: number };
  orchestratorCpuUs: number;
  generatorCpuUs: number;
  pushes: number[];
}

/**
 * Runs one system through a traffic scenario: Redis, K servers, one generator, the clients
 * connected and joined; then one measured window per rate (saturate steps through several on the
 * same connections). `keepGoing` decides after each window whether to step up.
 */
export async function runTraffic(
  system: SystemName,
  spec: TrafficSpec,
  rates: number[],
  keepGoing: (figures: TrafficFigures[]) => boolean = () => true,
): Promise<TrafficFigures[]> {
  const k = system === "plain" ? 1 : spec.layout.k;
  const label = `${spec.scenario} · ${system}`;
  const redis = usesRedis(system) ? await BenchRedis.start() : undefined;
  const taps: RedisTap[] = [];
  let cluster: Cluster | undefined;
  let generator: GeneratorHandle | undefined;
  try {
    if (spec.tap && redis) for (let i = 0; i < k; i++) taps.push(await RedisTap.start(redis.port));
    status(`${label}: starting ${k} process${k > 1 ? "es" : ""}`);
    cluster = await Cluster.start(system, k, { redisUrl: (i) => taps[i]?.url ?? redis!.url, ...(spec.cpuProfDir && { cpuProfDir: spec.cpuProfDir }) });
    await sleep(spec.settleMs);
    const baseline = cluster.sample();
    generator = await GeneratorHandle.start();
    const clients = plan(spec.layout, k);
    generator.onProgress = (p) => status(`${label}: connecting ${fmt.int(p.done)}/${fmt.int(p.total)}${p.failed ? `, ${p.failed} failed` : ""}`);
    const connected = await generator.connect({ targets: cluster.urls, namespace: NAMESPACE, clients, idBase: 0, concurrency: 100, timeoutMs: 10_000 }, 180_000);
    if (connected.failed > 0) throw new Error(`${connected.failed} of ${clients.length} clients failed to connect or join: ${JSON.stringify(connected.errors)}`);
    log(`${label}: ${fmt.int(connected.connected)} clients on ${k} process${k > 1 ? "es" : ""}, connected and joined in ${fmt.num(connected.ms / 1000)} s`);
    // Let subscriptions settle (the adapters subscribe without waiting for Redis to confirm).
    await sleep(spec.settleMs);

    const results: TrafficFigures[] = [];
    for (const ratePerClient of rates) {
      let figures = await measure(system, spec, cluster, generator, redis, taps, baseline, clients.length, ratePerClient * clients.length, k);
      // A noisy step is measured again, unless it is plainly overloaded (a backlog would only grow).
      for (let retry = 0; retry < (spec.retries ?? 0) && figures.otherCpuCores > (spec.noiseLimit ?? Infinity) && figures.latencyMs.p99 < 500; retry++) {
        log(`${label}: others used ${fmt.num(figures.otherCpuCores, 2)} cores during the window; measuring this step again`);
        const again = await measure(system, spec, cluster, generator, redis, taps, baseline, clients.length, ratePerClient * clients.length, k);
        if (again.otherCpuCores < figures.otherCpuCores) figures = again;
      }
      results.push(figures);
      const { latencyMs: l } = figures;
      log(
        `${label}: ${fmt.int(figures.offeredDeliveriesPerSec)} offered -> ${fmt.int(figures.deliveriesPerSec)} deliveries/s, ` +
          `p50 ${fmt.ms(l.p50)} p99 ${fmt.ms(l.p99)} max ${fmt.ms(l.max)} ms, lost ${fmt.int(figures.lost)}, ` +
          `server ${fmt.num(figures.serverCpuUsPerDelivery)} us/delivery, generator ${fmt.num(figures.generatorCpuCores, 2)} cores, others ${fmt.num(figures.otherCpuCores, 2)} cores` +
          (figures.amplification !== undefined ? `, amplification ${fmt.num(figures.amplification, 2)}` : ""),
      );
      if (cluster.exitedEarly()) throw new Error(`a server process exited: ${cluster.outputs().join("\n")}`);
      if (!keepGoing(results)) break;
    }
    const warnings = cluster.outputs();
    // roomcast logs at warn level: show the last line of each process, the rest is in its output.
    if (warnings.length > 0) log(`${label}: server output (last line per process):\n${warnings.map((w) => `  ${w.split("\n").at(-1)!.slice(0, 400)}`).join("\n")}`);
    return results;
  } finally {
    status(`${label}: stopping`);
    await generator?.close();
    await cluster?.stop();
    for (const tap of taps) await tap.close();
    await redis?.stop();
  }
}

async function measure(
  system: SystemName,
  spec: TrafficSpec,
  cluster: Cluster,
  generator: GeneratorHandle,
  redis: BenchRedis | undefined,
  taps: RedisTap[],
  baseline: Array<{ rssBytes: number }>,
  connections: number,
  rate: number,
  k: number,
): Promise<TrafficFigures> {
  const label = `${spec.scenario} · ${system}`;
  const take = async (): Promise<Sample> => ({
    at: performance.now(),
    monoUs: Number(process.hrtime.bigint() / 1000n),
    servers: cluster.sample(),
    machine: machineSample(),
    orchestratorCpuUs: process.cpuUsage().user + process.cpuUsage().system,
    generatorCpuUs: procCpu(generator.pid),
    redisCpuUs: redis ? await redis.cpuUs() : null,
    pushes: taps.map((t) => t.pushes),
  });
  const samples: Promise<Sample>[] = [];
  generator.onWindow = (edge) => {
    samples.push(take());
    status(`${label}: ${edge === "start" ? `measuring ${spec.measureMs / 1000} s` : "draining"}`);
  };
  generator.onProgress = (p) => status(`${label}: ${p.phase} at ${fmt.int(rate)} msg/s, ${fmt.int(p.done)} sent, ${fmt.int(p.total)} delivered`);
  const result: RunResult = await generator.run({
    rate,
    warmupMs: spec.warmupMs,
    measureMs: spec.measureMs,
    drainMs: spec.drainMs,
    textBytes: spec.textBytes,
    ...(spec.clientMsgId && { clientMsgId: true }),
  });
  if (samples.length < 2) throw new Error("the generator did not report its window");
  const [s0, s1] = (await Promise.all(samples)) as [Sample, Sample];
  const windowS = (s1.at - s0.at) / 1000;
  const serverCpuUs = s1.servers.reduce((sum, s, i) => sum + s.cpuUs - s0.servers[i]!.cpuUs, 0);
  const redisCpuUs = s1.redisCpuUs !== null && s0.redisCpuUs !== null ? s1.redisCpuUs - s0.redisCpuUs : null;
  const busyUs = s1.machine.busyUs - s0.machine.busyUs;
  const ours = serverCpuUs + (redisCpuUs ?? 0) + (s1.generatorCpuUs - s0.generatorCpuUs) + (s1.orchestratorCpuUs - s0.orchestratorCpuUs);
  const rssNow = s1.servers.reduce((sum, s) => sum + s.rssBytes, 0);
  const rssBefore = baseline.reduce((sum, s) => sum + s.rssBytes, 0);
  const figures: TrafficFigures = {
    system,
    processes: k,
    connections,
    offeredMsgPerSec: rate,
    offeredDeliveriesPerSec: rate * spec.layout.roomSize,
    sentPerSec: result.sentPerSec,
    deliveriesPerSec: result.deliveriesPerSec,
    latencyMs: result.latencyMs,
    expected: result.expected,
    lost: result.lost,
    duplicates: result.duplicates,
    ackErrors: result.ackErrors,
    windowAcks: result.windowAcks,
    closedConnections: result.closedConnections,
    serverCpuUsPerDelivery: serverCpuUs / Math.max(1, result.deliveries),
    serverCpuCores: serverCpuUs / 1e6 / windowS,
    serverSyscallsPerDelivery: s1.servers.reduce((sum, s, i) => sum + s.syscalls - s0.servers[i]!.syscalls, 0) / Math.max(1, result.deliveries),
    serverWakeupsPerDelivery: s1.servers.reduce((sum, s, i) => sum + s.wakeups - s0.servers[i]!.wakeups, 0) / Math.max(1, result.deliveries),
    redisCpuUsPerMessage: redisCpuUs === null ? null : redisCpuUs / Math.max(1, result.sent),
    redisCpuCores: redisCpuUs === null ? null : redisCpuUs / 1e6 / windowS,
    rssMBPerProcess: s1.servers.map((s) => s.rssBytes / 2 ** 20),
    rssKBPerConnection: (rssNow - rssBefore) / 1024 / connections,
    generatorCpuCores: result.generatorCpuShare,
    generatorLoopDelayP99Ms: result.generatorLoopDelayP99Ms,
    machineBusyCores: busyUs / 1e6 / windowS,
    otherCpuCores: Math.max(0, (busyUs - ours) / 1e6 / windowS),
    windowMs: s1.at - s0.at,
    windowMonoUs: [s0.monoUs, s1.monoUs],
    raw: result,
  };
  if (taps.length > 0 && redis) {
    const received = s1.pushes.map((p, i) => p - s0.pushes[i]!);
    figures.receivedPerMessage = received.map((n) => n / Math.max(1, result.sent));
    // Needed: one receipt per process that has members in the message's room (sender's own included).
    const perRoom = roomProcesses(spec.layout, k);
    const neededPerMessage = perRoom.reduce((sum, set) => sum + set.size, 0) / perRoom.length;
    figures.amplification = received.reduce((a, b) => a + b, 0) / Math.max(1, result.sent) / neededPerMessage;
    const subs = await redis.clientSubscriptions();
    figures.subscriptions = taps.map((tap) => {
      const ports = new Set(tap.upstreamPorts());
      return subs.filter((s) => ports.has(s.port)).reduce((acc, s) => ({ sub: acc.sub + s.sub, psub: acc.psub + s.psub, ssub: acc.ssub + s.ssub }), { sub: 0, psub: 0, ssub: 0 });
    });
  }
  return figures;
}

function procCpu(pid: number): number {
  try {
    return procSample(pid).cpuUs;
  } catch {
    return 0; // already exited
  }
}

/**
 * Idle: many connections, each in one room (rooms of 2 on two processes), no traffic. Memory per
 * connection from RSS before and after; CPU of the servers while nothing happens.
 */
export async function runIdle(system: SystemName, connections: number, settleMs: number, windowMs: number): Promise<IdleFigures> {
  // Two processes for every system, plain included (two independent ones: there is no traffic to
  // share): one process may hold at most 20,000 file descriptors on this machine.
  const k = 2;
  const label = `idle · ${system}`;
  const redis = usesRedis(system) ? await BenchRedis.start() : undefined;
  let cluster: Cluster | undefined;
  const generators: GeneratorHandle[] = [];
  try {
    status(`${label}: starting ${k} processes`);
    cluster = await Cluster.start(system, k, { redisUrl: () => redis!.url });
    await sleep(Math.min(1000, settleMs));
    const baseline = cluster.sample();
    const redisMem0 = redis ? await redis.usedMemory() : 0;
    const layout: Layout = { k, rooms: Math.ceil(connections / 2), roomSize: 2, placement: alternate };
    const clients = plan(layout, k).slice(0, connections);
    // A generator process holds at most 10,000 connections (the same file descriptor limit).
    const perGenerator = 10_000;
    const parts = Math.ceil(clients.length / perGenerator);
    const progress = new Array<number>(parts).fill(0);
    for (let g = 0; g < parts; g++) generators.push(await GeneratorHandle.start());
    const roomSizes: Record<string, number> = {};
    for (const c of clients) roomSizes[c.room] = (roomSizes[c.room] ?? 0) + 1;
    const started = performance.now();
    const results = await Promise.all(
      generators.map((generator, g) => {
        generator.onProgress = (p) => {
          progress[g] = p.done;
          status(`${label}: connecting ${fmt.int(progress.reduce((a, b) => a + b, 0))}/${fmt.int(clients.length)}`);
        };
        const part = clients.slice(g * perGenerator, (g + 1) * perGenerator);
        return generator.connect({ targets: cluster!.urls, namespace: NAMESPACE, clients: part, roomSizes, idBase: g * perGenerator, concurrency: 200, timeoutMs: 20_000 }, 600_000);
      }),
    );
    const connectMs = performance.now() - started;
    const failed = results.reduce((sum, r) => sum + r.failed, 0);
    const errors = results.map((r) => r.errors).filter((e) => Object.keys(e).length > 0);
    log(`${label}: ${fmt.int(clients.length - failed)} connections in ${fmt.num(connectMs / 1000)} s${failed ? `, ${failed} failed: ${JSON.stringify(errors).slice(0, 300)}` : ""}`);
    status(`${label}: settling`);
    await sleep(settleMs);
    const s0 = { at: performance.now(), servers: cluster.sample(), machine: machineSample(), gen: generators.map((g) => procCpu(g.pid)) };
    status(`${label}: idle for ${windowMs / 1000} s`);
    await sleep(windowMs);
    const s1 = { at: performance.now(), servers: cluster.sample(), machine: machineSample(), gen: generators.map((g) => procCpu(g.pid)) };
    const open = (await Promise.all(generators.map((g) => g.status()))).reduce((sum, s) => sum + s.open, 0);
    const windowS = (s1.at - s0.at) / 1000;
    const serverCpuUs = s1.servers.reduce((sum, s, i) => sum + s.cpuUs - s0.servers[i]!.cpuUs, 0);
    const genCpuUs = s1.gen.reduce((sum, c, i) => sum + c - s0.gen[i]!, 0);
    const busyUs = s1.machine.busyUs - s0.machine.busyUs;
    const connected = clients.length - failed;
    const rssDelta = s1.servers.reduce((sum, s) => sum + s.rssBytes, 0) - baseline.reduce((sum, s) => sum + s.rssBytes, 0);
    const figures: IdleFigures = {
      system,
      processes: k,
      connections: connected,
      failed,
      connectMs,
      stillOpen: open,
      rssMBPerProcess: s1.servers.map((s) => s.rssBytes / 2 ** 20),
      rssKBPerConnection: rssDelta / 1024 / Math.max(1, connected),
      redisKBPerConnection: redis ? ((await redis.usedMemory()) - redisMem0) / 1024 / Math.max(1, connected) : null,
      idleCpuCores: serverCpuUs / 1e6 / windowS,
      idleCpuUsPerConnectionPerSec: serverCpuUs / windowS / Math.max(1, connected),
      otherCpuCores: Math.max(0, (busyUs - serverCpuUs - genCpuUs) / 1e6 / windowS),
      windowMs: s1.at - s0.at,
    };
    log(
      `${label}: ${fmt.num(figures.rssKBPerConnection)} KB/connection, RSS ${figures.rssMBPerProcess.map((m) => fmt.num(m, 0)).join(" + ")} MB, ` +
        `idle CPU ${fmt.num(figures.idleCpuCores * 100)}% of a core, ${open} still open`,
    );
    return figures;
  } finally {
    status(`${label}: stopping`);
    for (const generator of generators) await generator.close();
    await cluster?.stop();
    await redis?.stop();
  }
}

const median = (values: number[]): number => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** Several runs of one system as one row: each figure the median over the runs, losses summed. */
export function combineRuns(runs: TrafficFigures[]): TrafficFigures {
  if (runs.length === 1) return runs[0]!;
  const byCpu = [...runs].sort((a, b) => a.serverCpuUsPerDelivery - b.serverCpuUsPerDelivery);
  const base = byCpu[byCpu.length >> 1]!;
  const m = (pick: (f: TrafficFigures) => number | null | undefined): number => median(runs.map((f) => pick(f) ?? NaN));
  const nullable = (pick: (f: TrafficFigures) => number | null): number | null => (runs.every((f) => pick(f) === null) ? null : m(pick));
  const ackErrors: Record<string, number> = {};
  for (const f of runs) for (const [code, n] of Object.entries(f.ackErrors)) ackErrors[code] = (ackErrors[code] ?? 0) + n;
  return {
    ...base,
    sentPerSec: m((f) => f.sentPerSec),
    deliveriesPerSec: m((f) => f.deliveriesPerSec),
    latencyMs: {
      samples: runs.reduce((sum, f) => sum + f.latencyMs.samples, 0),
      p50: m((f) => f.latencyMs.p50),
      p90: m((f) => f.latencyMs.p90),
      p99: m((f) => f.latencyMs.p99),
      p999: m((f) => f.latencyMs.p999),
      max: m((f) => f.latencyMs.max),
      mean: m((f) => f.latencyMs.mean),
    },
    expected: runs.reduce((sum, f) => sum + f.expected, 0),
    lost: runs.reduce((sum, f) => sum + f.lost, 0),
    duplicates: runs.reduce((sum, f) => sum + f.duplicates, 0),
    ackErrors,
    windowAcks: {
      failed: runs.reduce((sum, f) => sum + f.windowAcks.failed, 0),
      unacked: runs.reduce((sum, f) => sum + f.windowAcks.unacked, 0),
      ackedOkButLost: runs.reduce((sum, f) => sum + f.windowAcks.ackedOkButLost, 0),
      failedButDelivered: runs.reduce((sum, f) => sum + f.windowAcks.failedButDelivered, 0),
    },
    closedConnections: runs.reduce((sum, f) => sum + f.closedConnections, 0),
    serverCpuUsPerDelivery: m((f) => f.serverCpuUsPerDelivery),
    serverCpuCores: m((f) => f.serverCpuCores),
    serverSyscallsPerDelivery: m((f) => f.serverSyscallsPerDelivery),
    serverWakeupsPerDelivery: m((f) => f.serverWakeupsPerDelivery),
    redisCpuUsPerMessage: nullable((f) => f.redisCpuUsPerMessage),
    redisCpuCores: nullable((f) => f.redisCpuCores),
    rssKBPerConnection: m((f) => f.rssKBPerConnection),
    generatorCpuCores: m((f) => f.generatorCpuCores),
    generatorLoopDelayP99Ms: m((f) => f.generatorLoopDelayP99Ms),
    machineBusyCores: m((f) => f.machineBusyCores),
    otherCpuCores: m((f) => f.otherCpuCores),
    runs: runs.length,
    perRun: runs.map((f) => ({
      serverCpuUsPerDelivery: f.serverCpuUsPerDelivery,
      p50: f.latencyMs.p50,
      p99: f.latencyMs.p99,
      redisCpuUsPerMessage: f.redisCpuUsPerMessage,
      lost: f.lost,
      otherCpuCores: f.otherCpuCores,
    })),
  };
}
