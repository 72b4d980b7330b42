/**
 * The load generator: a separate process, driven by the orchestrator over IPC (see GeneratorCommand
 * and GeneratorReport in ../lib/generator-protocol.ts). It holds the client connections, sends chat
 * messages at a steady total rate, and measures on its one clock:
 * - latency: each message's text carries its id and send time ("~ID~MICROS~xxx"), read back from
 *   every delivery, the sender's own included;
 * - loss: every message of the measured window is expected once by each member of its room;
 *   after a drain, expected minus received (and duplicates, received more than once).
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import type { ConnectCommand, GeneratorCommand, GeneratorReport, RunCommand, RunResult } from "../lib/generator-protocol.js";
import { WireClient } from "./wire-client.js";

const MARK = Buffer.from('"text":"~');
const TILDE = 0x7e;
const TICK_MS = 2;
const LOOP_RESOLUTION_MS = 5;

interface Member {
  client: WireClient;
  /** Ack id -> message id of its messages still waiting for an ack. */
  awaiting: Map<number, number>;
  room: string;
  /** Members of its room: how many deliveries each of its messages should make. */
  roomSize: number;
}

const members: Member[] = [];
let nextMessageId = 0;
/** Deliveries per message id, and deliveries each one should make; grown as needed. */
let received = new Uint8Array(1 << 16);
let expected = new Uint8Array(1 << 16);
/** Per message id: 0 no ack yet, 1 acked ok, 2 acked with an error. */
let acked = new Uint8Array(1 << 16);
const memberOf = new Map<WireClient, Member>();
let windowStartId = Number.MAX_SAFE_INTEGER;
let windowEndId = Number.MAX_SAFE_INTEGER;
let latencies: number[] = [];
let deliveries = 0;
let otherEvents = 0;
let acksOk = 0;
let acksFailed = 0;
const ackErrors = new Map<string, number>();
let closedConnections = 0;
const closeReasons = new Map<string, number>();
let stopping = false;

const send = (report: GeneratorReport): void => {
  process.send?.(report);
};
const nowUs = (): number => Math.round(performance.now() * 1000);
const tally = (map: Map<string, number>, key: string): void => {
  map.set(key, (map.get(key) ?? 0) + 1);
};

const handlers = {
  onEvent(frame: Buffer): void {
    const at = frame.indexOf(MARK, 8);
    if (at < 0) {
      otherEvents++;
      return;
    }
    let i = at + MARK.length;
    let id = 0;
    for (let c = frame[i]!; c !== TILDE && i < frame.length; c = frame[++i]!) id = id * 10 + (c - 0x30);
    let sentAt = 0;
    for (let c = frame[++i]!; c !== TILDE && i < frame.length; c = frame[++i]!) sentAt = sentAt * 10 + (c - 0x30);
    deliveries++;
    if (id < received.length && received[id]! < 255) received[id]!++;
    if (id >= windowStartId && id < windowEndId) latencies.push(nowUs() - sentAt);
  },
  onSendAck(ok: boolean, frame: Buffer, client: WireClient, ackId: number): void {
    const member = memberOf.get(client);
    const messageId = member?.awaiting.get(ackId);
    if (messageId !== undefined) {
      member!.awaiting.delete(ackId);
      acked[messageId] = ok ? 1 : 2;
    }
    if (ok) {
      acksOk++;
      return;
    }
    acksFailed++;
    tally(ackErrors, /"code":"([a-z_]+)"/.exec(frame.toString())?.[1] ?? "unknown");
  },
  onClose(reason: string): void {
    if (stopping) return;
    closedConnections++;
    tally(closeReasons, reason);
  },
};

async function connectAll(cmd: ConnectCommand): Promise<void> {
  const started = performance.now();
  const roomSizes = new Map<string, number>();
  for (const plan of cmd.clients) roomSizes.set(plan.room, (roomSizes.get(plan.room) ?? 0) + 1);
  for (const [room, size] of Object.entries(cmd.roomSizes ?? {})) roomSizes.set(room, size);
  const errors = new Map<string, number>();
  let next = 0;
  let done = 0;
  let failed = 0;
  const progress = setInterval(() => send({ type: "progress", phase: "connect", done, failed, total: cmd.clients.length }), 1000);
  const worker = async (): Promise<void> => {
    while (next < cmd.clients.length && !stopping) {
      const index = next++;
      const plan = cmd.clients[index]!;
      const client = new WireClient(cmd.targets[plan.target]!, cmd.namespace, { name: `b${cmd.idBase + index}` }, handlers);
      try {
        await client.connect(cmd.timeoutMs);
        const ack = await client.request("join", { room: plan.room }, cmd.timeoutMs);
        if (!ack.includes('"ok":true')) throw new Error(`join refused: ${ack.slice(0, 120)}`);
        const member = { client, awaiting: new Map<number, number>(), room: plan.room, roomSize: roomSizes.get(plan.room)! };
        members.push(member);
        memberOf.set(client, member);
      } catch (err) {
        failed++;
        client.close();
        tally(errors, (err as Error).message.slice(0, 120));
      }
      done++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(cmd.concurrency, cmd.clients.length) }, worker));
  clearInterval(progress);
  send({ type: "connected", connected: members.length, failed, errors: Object.fromEntries(errors), ms: Math.round(performance.now() - started) });
}

function grow(id: number): void {
  if (id < received.length) return;
  const size = Math.max(received.length * 2, id + 1);
  const r = new Uint8Array(size);
  r.set(received);
  received = r;
  const e = new Uint8Array(size);
  e.set(expected);
  expected = e;
  const a = new Uint8Array(size);
  a.set(acked);
  acked = a;
}

/** Warm-up, measured window, drain: the window's figures are reported once the drain is over. */
async function run(cmd: RunCommand): Promise<void> {
  const senders = members.filter((m) => cmd.senderRooms === undefined || cmd.senderRooms.includes(m.room));
  const pad = "x".repeat(Math.max(0, cmd.textBytes - 24));
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  let cursor = 0;
  let sent = 0;
  let unsent = 0;
  let windowSent = 0;
  const start = performance.now();
  const windowAt = start + cmd.warmupMs;
  const endAt = windowAt + cmd.measureMs;
  let inWindow = false;
  let cpu0 = process.cpuUsage();
  let deliveries0 = 0;
  let windowStartMs = 0;
  latencies = [];
  windowStartId = Number.MAX_SAFE_INTEGER;
  windowEndId = Number.MAX_SAFE_INTEGER;
  const maxPerTick = Math.max(20, Math.ceil((cmd.rate * TICK_MS * 5) / 1000));

  const progress = setInterval(() => send({ type: "progress", phase: inWindow ? "measure" : "warmup", done: sent, failed: unsent, total: deliveries }), 1000);
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      if (!inWindow && now >= windowAt) {
        inWindow = true;
        windowStartId = nextMessageId;
        cpu0 = process.cpuUsage();
        deliveries0 = deliveries;
        windowStartMs = now;
        windowSent = sent;
        acksOk = 0;
        acksFailed = 0;
        ackErrors.clear();
        loop.enable();
        send({ type: "window", edge: "start" });
      }
      if (now >= endAt || stopping) {
        clearInterval(tick);
        resolve();
        return;
      }
      const due = Math.min(maxPerTick, Math.floor(((now - start) * cmd.rate) / 1000) - sent - unsent);
      for (let k = 0; k < due && senders.length > 0; k++) {
        const member = senders[cursor++ % senders.length]!;
        const id = nextMessageId;
        grow(id);
        const ackId = member.client.sendMessage(member.room, `~${id}~${nowUs()}~${pad}`, cmd.clientMsgId ? `c${id}` : undefined);
        if (ackId >= 0) {
          member.awaiting.set(ackId, id);
          nextMessageId++;
          expected[id] = member.roomSize;
          sent++;
        } else unsent++;
      }
    }, TICK_MS);
  });
  windowEndId = nextMessageId;
  const windowMs = performance.now() - windowStartMs;
  const cpu = process.cpuUsage(cpu0);
  const windowDeliveries = deliveries - deliveries0;
  windowSent = sent - windowSent;
  loop.disable();
  send({ type: "window", edge: "end" });
  clearInterval(progress);

  // Drain: wait until every message of the window made all its deliveries, or give up.
  const missing = (): number => {
    let n = 0;
    for (let id = windowStartId; id < windowEndId; id++) n += Math.max(0, expected[id]! - received[id]!);
    return n;
  };
  const drainUntil = performance.now() + cmd.drainMs;
  while (performance.now() < drainUntil && missing() > 0 && !stopping) await new Promise((r) => setTimeout(r, 50));
  let duplicates = 0;
  let expectedTotal = 0;
  let ackedOkButLost = 0;
  let failedButDelivered = 0;
  let failed = 0;
  let unacked = 0;
  for (let id = windowStartId; id < windowEndId; id++) {
    expectedTotal += expected[id]!;
    duplicates += Math.max(0, received[id]! - expected[id]!);
    const state = acked[id]!;
    if (state === 0) unacked++;
    else if (state === 2) {
      failed++;
      if (received[id]! > 0) failedButDelivered++;
    } else if (received[id]! < expected[id]!) ackedOkButLost++;
  }
  // Acks still awaited belong to messages already counted as unacked.
  for (const m of members) m.awaiting.clear();
  const sorted = Float64Array.from(latencies).sort();
  const pct = (p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! / 1000 : NaN);
  const result: RunResult = {
    offeredRate: cmd.rate,
    windowMs,
    sent: windowSent,
    unsent,
    sentPerSec: (windowSent * 1000) / windowMs,
    deliveries: windowDeliveries,
    deliveriesPerSec: (windowDeliveries * 1000) / windowMs,
    expected: expectedTotal,
    lost: missing(),
    duplicates,
    latencyMs: {
      samples: sorted.length,
      p50: pct(0.5),
      p90: pct(0.9),
      p99: pct(0.99),
      p999: pct(0.999),
      max: sorted.length ? sorted[sorted.length - 1]! / 1000 : NaN,
      mean: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length / 1000 : NaN,
    },
    generatorCpuShare: (cpu.user + cpu.system) / 1000 / windowMs,
    // The histogram records whole timer intervals: the delay is what passes the resolution.
    generatorLoopDelayP99Ms: Math.max(0, loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
    acksOk,
    acksFailed,
    windowAcks: { failed, unacked, ackedOkButLost, failedButDelivered },
    ackErrors: Object.fromEntries(ackErrors),
    closedConnections,
    closeReasons: Object.fromEntries(closeReasons),
    otherEvents,
  };
  send({ type: "result", result });
}

process.on("message", (msg: GeneratorCommand) => {
  const fail = (err: unknown): void => send({ type: "error", message: err instanceof Error ? err.stack ?? err.message : String(err) });
  if (msg.cmd === "connect") connectAll(msg).catch(fail);
  else if (msg.cmd === "run") run(msg).catch(fail);
  else if (msg.cmd === "status") {
    send({ type: "status", open: members.filter((m) => m.client.isOpen).length, closed: closedConnections, rssBytes: process.memoryUsage().rss });
  } else if (msg.cmd === "close") {
    stopping = true;
    for (const m of members) m.client.close();
    setTimeout(() => process.exit(0), 100).unref();
  }
});
// The orchestrator is gone (killed or crashed): never outlive it.
process.on("disconnect", () => process.exit(0));
send({ type: "ready" });
