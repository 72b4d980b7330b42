import type { Logger } from "pino";
import type { ChatOptions } from "../config.js";
import type { Broker } from "./broker.js";
import { MemoryBroker } from "./broker-memory.js";
import type { PresenceStore } from "./presence.js";
import { MemoryPresence } from "./presence-memory.js";

export interface Bus {
  broker: Broker;
  presence: PresenceStore;
}

/** The in-memory bus unless REDIS_URL is set. */
export async function createBus(options: ChatOptions, _nodeId: string, _logger: Logger): Promise<Bus> {
  if (options.redisUrl) throw new Error("REDIS_URL is not supported yet");
  return {
    broker: new MemoryBroker({ historyLimit: options.historyLimit, historyTtlMs: options.historyTtl }),
    presence: new MemoryPresence(),
  };
}
