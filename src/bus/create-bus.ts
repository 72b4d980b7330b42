import type { Logger } from "pino";
import type { ChatOptions } from "../config.js";
import type { Broker } from "./broker.js";
import { MemoryBroker } from "./broker-memory.js";
import { RedisBroker } from "./broker-redis.js";
import type { PresenceStore } from "./presence.js";
import { MemoryPresence } from "./presence-memory.js";
import { presenceInstanceId, RedisPresence } from "./presence-redis.js";
import { RedisConnection } from "./redis-connection.js";
import { RedisKeys } from "./redis-keys.js";

export interface Bus {
  broker: Broker;
  presence: PresenceStore;
  /** Closes what the broker and presence share (the Redis connections). */
  close(): Promise<void>;
}

/** The in-memory bus unless REDIS_URL is set. */
export async function createBus(options: ChatOptions, nodeId: string, logger: Logger): Promise<Bus> {
  if (!options.redisUrl) {
    return {
      broker: new MemoryBroker({ historyLimit: options.historyLimit, historyTtlMs: options.historyTtl }),
      presence: new MemoryPresence(),
      close: async () => {},
    };
  }
  const redis = new RedisConnection({ url: options.redisUrl, mode: options.redisMode, logger, commandTimeoutMs: options.redisTimeout, name: `roomcast-${nodeId}` });
  await redis.connect(options.redisUrl);
  const keys = new RedisKeys(options.redisPrefix);
  const presence = new RedisPresence(redis, keys, { instanceId: presenceInstanceId(nodeId), presenceTimeoutMs: options.presenceTimeout, logger });
  await presence.start();
  return {
    broker: new RedisBroker(redis, keys, {
      historyLimit: options.historyLimit,
      historyTtlMs: options.historyTtl,
      // A quarter of the command timeout: a publish admitted then still has most of it to finish.
      maxPublishWaitMs: Math.max(50, options.redisTimeout / 4),
      logger,
    }),
    presence,
    close: () => redis.close(),
  };
}
