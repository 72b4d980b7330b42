import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { StreamObserver } from "./chat/local-room.js";
import type { ErrorCode } from "./protocol.js";

/** Prometheus metrics of one server instance (its own registry, so several can share a process). */
export class Metrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({ name: "roomcast_connections", help: "Open chat connections", registers: [this.registry] });
  /** Set by the server: how many rooms this process serves. Read at scrape time only. */
  roomCount: () => number = () => 0;
  readonly rooms: Gauge = new Gauge({
    name: "roomcast_local_rooms",
    help: "Rooms this process serves (subscribed)",
    registers: [this.registry],
    collect: (): void => this.rooms.set(this.roomCount()),
  });
  readonly messages = new Counter({ name: "roomcast_messages_sent_total", help: "Messages accepted and published", registers: [this.registry] });
  readonly rejected = new Counter({
    name: "roomcast_rejected_total",
    help: "Client events answered with an error, by code",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  readonly busErrors = new Counter({
    name: "roomcast_bus_errors_total",
    help: "Failed bus operations, by operation",
    labelNames: ["op"] as const,
    registers: [this.registry],
  });
  readonly slowConsumers = new Counter({
    name: "roomcast_slow_consumers_total",
    help: "Connections closed because their write buffer passed MAX_BUFFERED_PACKETS",
    registers: [this.registry],
  });

  /** What a sender waits for: from its message event to the ack (validation, Redis round trip). */
  readonly messageAck = new Histogram({
    name: "roomcast_message_ack_seconds",
    help: "Time from a message event to its ok ack (the publish round trip)",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  // Redis pub/sub is at-most-once: these say how often this process's live stream missed
  // messages and whether history closed the gap. Each process serving a room counts for itself.
  readonly recovered = new Counter({
    name: "roomcast_stream_recovered_messages_total",
    help: "Messages this process delivered from history rather than by pub/sub: pub/sub skipped them, or a catch-up after a reconnect read them first",
    registers: [this.registry],
  });
  readonly lost = new Counter({
    name: "roomcast_stream_lost_messages_total",
    help: "Messages this process's stream skipped that history no longer held: its members in the room, if any, saw a jump in seq",
    registers: [this.registry],
  });
  readonly restarts = new Counter({
    name: "roomcast_room_restarts_total",
    help: "Times a room's sequence started over on this process (Redis lost its data, or it expired while the room was quiet) and its members were sent to reconnect",
    registers: [this.registry],
  });
  /** The chat domain's rooms report to these counters. */
  readonly streams: StreamObserver = {
    recovered: (count) => this.recovered.inc(count),
    lost: (count) => this.lost.inc(count),
    restarted: () => this.restarts.inc(),
  };

  constructor(options: { processMetrics: boolean }) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  reject(code: ErrorCode): void {
    this.rejected.inc({ code });
  }
}
