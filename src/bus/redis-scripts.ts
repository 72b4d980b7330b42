import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { RedisConnection } from "./redis-connection.js";

// Lua lives in its own files (src/bus/lua); the build copies them next to the compiled code.
const LUA_DIR = new URL("./lua/", import.meta.url);

/**
 * A Lua script run by EVALSHA, falling back to EVAL when Redis lost its script cache (a restart).
 * `constants` replace `__NAME__` placeholders in the source: a value fixed for the process costs
 * nothing per call as a constant, where an argument is one more Lua string per call.
 */
export class RedisScript {
  private readonly source: string;
  private readonly sha: string;

  constructor(
    readonly name: string,
    constants: Record<string, number> = {},
  ) {
    let source = readFileSync(new URL(`${name}.lua`, LUA_DIR), "utf8");
    for (const [key, value] of Object.entries(constants)) {
      if (!Number.isSafeInteger(value)) throw new Error(`${name}.lua: ${key} must be an integer, not ${value}`);
      source = source.replaceAll(`__${key}__`, String(value));
    }
    const missing = /__[A-Z_]+__/.exec(source);
    if (missing) throw new Error(`${name}.lua: no value for ${missing[0]}`);
    this.source = source;
    this.sha = createHash("sha1").update(this.source).digest("hex");
  }

  /** Every key must share the first one's slot (a room's keys do: hash tag {room}). */
  async run<T>(redis: RedisConnection, keys: string[], args: Array<string | number>): Promise<T> {
    const tail = [String(keys.length), ...keys, ...args.map(String)];
    try {
      return await redis.send<T>(keys[0]!, ["EVALSHA", this.sha, ...tail]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return await redis.send<T>(keys[0]!, ["EVAL", this.source, ...tail]);
    }
  }
}

/** Scripts without constants; publish.lua and history.lua are built per broker (RedisBroker). */
export const SCRIPTS = {
  presenceAdd: new RedisScript("presence-add"),
  presenceRemove: new RedisScript("presence-remove"),
  claimNode: new RedisScript("claim-node"),
  heartbeat: new RedisScript("heartbeat"),
};

/** Bounds a one-off wait (connecting); commands use RedisConnection.bounded. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis ${what} timed out after ${ms} ms`)), ms);
    timer.unref(); // must not keep the process alive
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
