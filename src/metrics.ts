import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
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

  constructor(options: { processMetrics: boolean }) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  reject(code: ErrorCode): void {
    this.rejected.inc({ code });
  }
}
